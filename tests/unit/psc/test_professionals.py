"""RPPS Luhn keys and national professional ids (pure domain)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lgo.domain.professionals import (
    IdNatKind,
    idnat_from_rpps,
    is_valid_rpps,
    luhn_key,
    luhn_valid,
    parse_idnat,
)


@pytest.mark.parametrize("rpps", ["10999999997", "10999990012", "10999999989"])
def test_valid_rpps(rpps: str) -> None:
    assert is_valid_rpps(rpps)


@pytest.mark.parametrize(
    "rpps",
    [
        "10999999998",  # wrong key
        "1099999999",  # 10 digits
        "109999999970",  # 12 digits
        "1099999999A",
        "１0999999997",  # full-width digit: isdigit() but not ASCII
        "",
    ],
)
def test_invalid_rpps(rpps: str) -> None:
    assert not is_valid_rpps(rpps)


def test_known_luhn_vector() -> None:
    assert luhn_valid("79927398713")  # the textbook example
    assert not luhn_valid("79927398710")


@given(st.text(alphabet="0123456789", min_size=10, max_size=10))
def test_luhn_key_makes_a_valid_rpps_and_any_other_key_is_wrong(body: str) -> None:
    key = luhn_key(body)
    assert is_valid_rpps(body + key)
    for other in "0123456789":
        if other != key:
            assert not is_valid_rpps(body + other)


@given(st.text(alphabet="0123456789", min_size=10, max_size=10), st.integers(0, 9))
def test_any_single_digit_change_is_caught(body: str, position: int) -> None:
    rpps = body + luhn_key(body)
    changed = str((int(rpps[position]) + 1) % 10)
    assert not is_valid_rpps(rpps[:position] + changed + rpps[position + 1 :])


def test_parse_idnat() -> None:
    parsed = parse_idnat("810999999997")
    assert parsed is not None
    assert parsed.kind is IdNatKind.RPPS and parsed.number == "10999999997"
    assert parsed.idnat == "810999999997"
    adeli = parse_idnat("0751234567")
    assert adeli is not None and adeli.kind is IdNatKind.ADELI
    assert parse_idnat("810999999998") is None  # bad RPPS key
    assert parse_idnat("310999999997") is None  # a structure prefix, not a person
    assert parse_idnat("0") is None


def test_idnat_from_rpps() -> None:
    assert idnat_from_rpps("10999999997") == "810999999997"
    with pytest.raises(ValueError, match="invalid RPPS"):
        idnat_from_rpps("10999999998")
