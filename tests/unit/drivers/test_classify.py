"""Scanner payload classification (formats.md §7.3 payloads) and its never-raise contract."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.scanners import Classifier, ClassifierConfig, ScanKind, normalise

TODAY = dt.date(2026, 11, 23)
GS = "\x1d"
GS1_BOX = f"01034009999999911727123110TESTLOT1{GS}21SIMSERIAL0000001"
INS_DM = (
    "IS010000000000000000000000S1299127505699943S21.2.250.1.213.1.4.10S3CAMILLE"
    f"{GS}S4TESTNOM{GS}S5FS631-12-1999S775056"
)
classifier = Classifier()


def test_eprescription_id_is_normalised() -> None:
    result = classifier.classify(b"]Q1 eptest 0000 0000 0000 00 42\r\n", TODAY)
    assert result.kind is ScanKind.EPRESCRIPTION
    assert result.aim_id == "]Q1"
    assert result.fields == {"prescription_id": "EPTEST0000000000000042"}


def test_eprescription_pattern_is_configurable() -> None:
    strict = Classifier(ClassifierConfig(eprescription_pattern=r"^EP[0-9A-Z]{20}$"))
    assert strict.classify("EPTEST0000000000000042", TODAY).kind is ScanKind.EPRESCRIPTION
    other = strict.classify("ABCDEFGHIJKLMN", TODAY)
    assert other.kind is ScanKind.UNKNOWN and other.reason == "unrecognised"


def test_apcv_token_keeps_its_case() -> None:
    token = "APCVTEST-3f2a9c0e11d24b6f8a7e5c3d2b1a0f9e-20261123T1200"
    result = classifier.classify(f"]Q1{token}\r", TODAY)
    assert result.kind is ScanKind.APCV and result.fields == {"token": token}


def test_gs1_datamatrix_with_aim_and_gs() -> None:
    result = classifier.classify(f"]d2{GS1_BOX}\r\n".encode(), TODAY)
    assert result.kind is ScanKind.GS1
    assert result.fields == {
        "gtin": "03400999999991",
        "cip13": "3400999999991",
        "expiry": "2027-12-31",
        "expired": "false",
        "batch": "TESTLOT1",
        "serial": "SIMSERIAL0000001",
    }


def test_gs1_without_aim_and_in_other_order_with_leading_fnc1() -> None:
    payload = f"{GS}21SER1{GS}10LOT{GS}172506000103400999999991"
    result = classifier.classify(payload, TODAY)
    assert result.kind is ScanKind.GS1
    assert result.fields["expiry"] == "2025-06-30"  # DD=00: end of month
    assert result.fields["expired"] == "true"


def test_gs1_expiry_is_checked_against_the_given_date() -> None:
    payload = f"]d2010340099999999117261123{GS}10L"
    assert classifier.classify(payload, dt.date(2026, 11, 23)).fields["expired"] == "false"
    assert classifier.classify(payload, dt.date(2026, 11, 24)).fields["expired"] == "true"


@pytest.mark.parametrize(
    ("payload", "reason_prefix"),
    [
        ("]d201034009999999921727123110X", "gs1_invalid"),  # GTIN check digit
        ("]d2010340099999999117271331", "gs1_invalid"),  # month 13
        ("]d29912345", "gs1_invalid"),  # unknown AI
        (f"]d210LOT{GS}21SER", "gs1_invalid"),  # no GTIN
        ("]d201034009999999911727", "gs1_invalid"),  # truncated fixed field
    ],
)
def test_malformed_gs1_is_unknown_with_reason(payload: str, reason_prefix: str) -> None:
    result = classifier.classify(payload, TODAY)
    assert result.kind is ScanKind.UNKNOWN
    assert result.reason is not None and result.reason.startswith(reason_prefix)


def test_ean13_cip_and_its_failures() -> None:
    ok = classifier.classify("]E03400935955838", TODAY)
    assert ok.kind is ScanKind.EAN13_CIP
    assert ok.fields == {"cip13": "3400935955838", "cip7": "3595583"}
    assert classifier.classify("3400935955839", TODAY).reason == "ean13_bad_check_digit"
    assert classifier.classify("4006381333931", TODAY).reason == "ean13_not_cip"


def test_ins_datamatrix_fields() -> None:
    result = classifier.classify(f"]d1{INS_DM}", TODAY)
    assert result.kind is ScanKind.INS_DATAMATRIX
    assert result.fields["ins"] == "299127505699943"
    assert result.fields["oid"] == "1.2.250.1.213.1.4.10"
    assert result.fields["birth_family_name"] == "TESTNOM"
    assert result.fields["birth_date"] == "31-12-1999"
    assert result.fields["birthplace"] == "75056"


def test_ins_datamatrix_malformed() -> None:
    assert classifier.classify("IS01000000000000000000000", TODAY).reason == "ins_bad_header"
    broken = INS_DM.replace("S5F", "S9F")
    assert classifier.classify(broken, TODAY).reason == "ins_unknown_field"


def test_2d_doc_header() -> None:
    result = classifier.classify("]d1DC04FR03AV0112AB12ACB0FRXX\x1eDATA\x1fSIG", TODAY)
    assert result.kind is ScanKind.TWO_D_DOC
    assert result.fields == {"version": "04", "ca_id": "FR03", "cert_id": "AV01", "doc_type": "B0"}


def test_prescriber_barcodes_and_garbage_are_unknown() -> None:
    assert classifier.classify("]C010999999997", TODAY).reason == "prescriber_code128"
    assert classifier.classify("10999999997", TODAY).reason == "rpps_number"
    assert classifier.classify("\r\n", TODAY).reason == "empty"
    assert classifier.classify("a" * 5000, TODAY).reason == "too_long"
    assert classifier.classify("hé?!", TODAY).reason == "unrecognised"
    assert classifier.classify("ABC\x07DEFGHIJKLMN", TODAY).reason == "control_characters"


def test_normalise() -> None:
    assert normalise(b"]Q1 ABC \r\n") == ("]Q1", "ABC")
    assert normalise("no aim") == (None, "no aim")


@given(st.binary(max_size=400))
def test_arbitrary_bytes_never_raise(payload: bytes) -> None:
    result = classifier.classify(payload, TODAY)
    assert result.kind in ScanKind
    assert (result.kind is ScanKind.UNKNOWN) == (result.reason is not None)


@given(st.text(alphabet=st.sampled_from("0123456789]d2Q1EISDC\x1dABZ\r\n "), max_size=80))
def test_code_like_text_never_raises(payload: str) -> None:
    result = classifier.classify(payload, TODAY)
    assert (result.kind is ScanKind.UNKNOWN) == (result.reason is not None)
