"""The check digits now come from python-stdnum. Before the hand-written versions were removed, both
ran on the same hypothesis corpus: the hand-written algorithms stay here as oracles (NIR key with
Corsica, Luhn for RPPS, EAN-13 for CIP13), so every place that computes a key (domain, drivers,
hw-sim fixtures) is held to the same answers."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from drivers.cps.identity import luhn_is_valid
from drivers.vitale.nir import nir_is_valid
from drivers.vitale.nir import nir_key as driver_nir_key
from hwsim.fixtures import people
from lgo.domain.identity import nir_key as domain_nir_key
from lgo.domain.products import ean13_check_digit, is_valid_cip13
from lgo.domain.professionals import luhn_key, luhn_valid

digits = st.text(alphabet="0123456789", min_size=1, max_size=20)


def oracle_nir_key(first13: str) -> int:
    department = {"2A": "19", "2B": "18"}.get(first13[5:7], first13[5:7])
    return 97 - int(first13[:5] + department + first13[7:]) % 97


def oracle_luhn_valid(number: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(number)):
        value = int(char) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def oracle_ean13(first12: str) -> int:
    return (10 - sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(first12)) % 10) % 10


@st.composite
def nir_bodies(draw: st.DrawFn) -> str:
    head = draw(st.text(alphabet="0123456789", min_size=5, max_size=5))
    department = draw(st.sampled_from(["2A", "2B", "75", "99", "97", "00"]))
    tail = draw(st.text(alphabet="0123456789", min_size=6, max_size=6))
    return head + department + tail


@given(nir_bodies())
def test_nir_keys_agree_with_the_oracle_corsica_included(body: str) -> None:
    expected = oracle_nir_key(body)
    assert domain_nir_key(body) == expected
    assert driver_nir_key(body) == expected
    assert people.nir_key(body) == f"{expected:02d}"


@given(digits)
def test_luhn_agrees_with_the_oracle(number: str) -> None:
    assert luhn_valid(number) is oracle_luhn_valid(number)
    assert luhn_is_valid(number) is oracle_luhn_valid(number)
    key = luhn_key(number)
    assert oracle_luhn_valid(number + key) and people.luhn_key(number) == key


@given(st.text(alphabet="0123456789", min_size=12, max_size=12))
def test_ean13_agrees_with_the_oracle(first12: str) -> None:
    assert ean13_check_digit(first12) == oracle_ean13(first12)


def test_known_answers_and_malformed_input() -> None:
    assert is_valid_cip13("3400930000013") is (oracle_ean13("340093000001") == 3)
    assert nir_is_valid("2850578006048" + f"{oracle_nir_key('2850578006048'):02d}")
    assert not luhn_valid("") and not luhn_valid("１２３") and not luhn_is_valid("12a4")
