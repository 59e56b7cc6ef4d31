"""GS1 element-string parsing, check digits and expiry dates."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.errors import CodeFormatError
from drivers.scanners.gs1 import GS, ean_check_digit, ean_is_valid, parse_expiry, parse_gs1


def test_formats_md_example() -> None:
    data = parse_gs1(f"01034009999999911727123110TESTLOT1{GS}21SIMSERIAL0000001")
    assert data.gtin == "03400999999991" and data.cip13 == "3400999999991"
    assert data.expiry == dt.date(2027, 12, 31)
    assert (data.batch, data.serial) == ("TESTLOT1", "SIMSERIAL0000001")
    assert not data.expired(dt.date(2027, 12, 31)) and data.expired(dt.date(2028, 1, 1))


def test_non_french_gtin_has_no_cip13() -> None:
    assert parse_gs1("0104006381333931").cip13 is None


def test_check_digits() -> None:
    assert ean_check_digit("340093595583") == 8
    assert ean_is_valid("3400935955838") and not ean_is_valid("3400935955837")


def test_expiry_day_zero_is_end_of_month() -> None:
    assert parse_expiry("240200") == dt.date(2024, 2, 29)
    with pytest.raises(CodeFormatError):
        parse_expiry("240231")


@pytest.mark.parametrize(
    "data",
    ["", GS, "01123", "0103400999999992", f"0103400999999991{GS}0103400999999991", "10" + "X" * 21],
)
def test_malformed(data: str) -> None:
    with pytest.raises(CodeFormatError):
        parse_gs1(data)


@given(st.text(max_size=120))
def test_arbitrary_text_gives_data_or_code_format_error(data: str) -> None:
    try:
        parsed = parse_gs1(data)
    except CodeFormatError:
        return
    assert ean_is_valid(parsed.gtin)


@given(
    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=1, max_size=20),
    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=1, max_size=20),
    st.dates(dt.date(2000, 1, 1), dt.date(2099, 12, 31)),
    st.permutations(["01", "17", "10", "21"]),
)
def test_generated_element_strings_parse_back(
    batch: str, serial: str, expiry: dt.date, order: list[str]
) -> None:
    values = {"01": "03400999999991", "17": expiry.strftime("%y%m%d"), "10": batch, "21": serial}
    payload = "".join(ai + values[ai] + (GS if ai in ("10", "21") else "") for ai in order)
    data = parse_gs1(payload)
    assert (data.gtin, data.batch, data.serial, data.expiry) == (
        "03400999999991",
        batch,
        serial,
        expiry,
    )
