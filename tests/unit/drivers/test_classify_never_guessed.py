"""Scanner payloads are never guessed (issue #17 item 6): a broken GS1 code is refused whatever the
AIM prefix, and only a well-formed prescription number, from a typed entry or a QR/DataMatrix, is
taken for an e-prescription id."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.scanners import Classifier, ScanKind
from drivers.scanners.gs1 import ean_check_digit

TODAY = dt.date(2026, 11, 23)
GS = "\x1d"
AIMS = ["", "]d2", "]Q3", "]C1", "]e0", "]Q1", "]d1", "]C0", "]E0", "]Q0"]
classifier = Classifier()


def wrong_gtin(body13: str) -> str:
    return body13 + str((ean_check_digit(body13) + 1) % 10)


@pytest.mark.parametrize("aim", AIMS)
@pytest.mark.parametrize(
    "tail", ["", "17271231", "1727123110TESTLOT1", f"1727123110TESTLOT1{GS}21SERIAL01"]
)
def test_broken_gtin_is_refused_whatever_the_prefix(aim: str, tail: str) -> None:
    payload = f"{aim}01{wrong_gtin('0340099999999')}{tail}"
    result = classifier.classify(payload, TODAY)
    assert result.kind is ScanKind.UNKNOWN
    assert result.reason == "gs1_invalid:GTIN check digit is wrong"


@pytest.mark.parametrize("aim", ["", "]Q1", "]d1", "]d2"])
def test_other_broken_element_strings_are_refused(aim: str) -> None:
    month_13 = "010340099999999117271301"  # expiry month 13
    assert (
        classifier.classify(aim + month_13, TODAY).reason == "gs1_invalid:expiry month out of range"
    )
    truncated = "01034009999999911727"  # AI 17 cut short
    assert classifier.classify(aim + truncated, TODAY).reason == "gs1_invalid:AI 17 is too short"


@pytest.mark.parametrize("aim", AIMS)
def test_a_gtin_cut_short_is_refused_whatever_the_prefix(aim: str) -> None:
    """AI 01 and 13 digits (one digit lost): a broken GS1 code, not a 15-digit prescription."""
    result = classifier.classify(f"{aim}01{'0340099999999'}", TODAY)
    assert result.kind is ScanKind.UNKNOWN
    assert result.reason is not None and result.reason.startswith("gs1_invalid"), result.reason


@given(
    body=st.from_regex(r"\A[0-9]{13}\Z"),
    tail=st.text("0123456789ABCLOT", max_size=30),
    aim=st.sampled_from(AIMS),
)
def test_no_broken_gtin_becomes_an_eprescription(body: str, tail: str, aim: str) -> None:
    result = classifier.classify(f"{aim}01{wrong_gtin(body)}{tail}", TODAY)
    assert result.kind is ScanKind.UNKNOWN
    assert result.reason is not None and result.reason.startswith("gs1_invalid")


@given(digits=st.from_regex(r"\A[0-9]{12,14}\Z"), aim=st.sampled_from(["", "]Q1", "]d1"]))
def test_product_code_shapes_are_never_prescription_numbers(digits: str, aim: str) -> None:
    assert classifier.classify(aim + digits, TODAY).kind is not ScanKind.EPRESCRIPTION


@given(number=st.from_regex(r"\A[A-Z][A-Z0-9]{9,39}\Z"))
def test_a_well_formed_number_is_taken_typed_or_from_a_qr(number: str) -> None:
    for aim in ("", "]Q1", "]d1"):
        result = classifier.classify(aim + number, TODAY)
        if result.kind is ScanKind.APCV:
            continue  # "APCV…" is the apCV token's own shape
        assert result.kind is ScanKind.EPRESCRIPTION, (aim, number, result)
        assert result.fields == {"prescription_id": number}


@pytest.mark.parametrize("aim", ["]E0", "]C0", "]C1", "]d2", "]Q3", "]A0"])
def test_a_number_from_another_symbology_is_not_a_prescription(aim: str) -> None:
    result = classifier.classify(f"{aim}EPTEST0000000000000042", TODAY)
    assert result.kind is ScanKind.UNKNOWN and result.reason is not None


def test_reasons_for_code_shapes() -> None:
    assert classifier.classify("10999999998", TODAY).reason == "rpps_bad_key"
    assert classifier.classify("340093595583", TODAY).reason == "product_code_without_ai"
    assert classifier.classify("03400935955838", TODAY).reason == "product_code_without_ai"
    assert classifier.classify("]E0EPTEST0000000000000042", TODAY).reason == (
        "eprescription_wrong_symbology"
    )
    ok = classifier.classify("]Q1EPTEST0000000000000042", TODAY)
    assert ok.kind is ScanKind.EPRESCRIPTION
