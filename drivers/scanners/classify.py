"""Turn a raw scanner payload into a typed classification (formats.md §3-§7.3).

Normalisation: AIM symbology identifier (``]xy``) removed and kept, CR/LF and surrounding spaces
stripped. Then, in order: INS DataMatrix (``IS01``), 2D-Doc (``DC02..04``), apCV token, GS1 element
string, EAN-13 (CIP13 when it starts with ``340``), prescriber Code 128, e-prescription id (spaces
removed, upper-cased, configurable pattern), else unknown with a reason code.

Nothing is guessed: a GS1 element string is recognised by its symbology (``]d2``, ``]Q3``, ``]C1``,
``]e0``), a leading FNC1 (GS) or its content (AI ``01`` and 14 digits), and a broken one is refused
(``gs1_invalid:…``) whatever the prefix, never read as something else. An e-prescription id is
taken only from a well-formed number (the configured pattern) that came without a prefix (typed) or
from a QR code / plain DataMatrix (``]Q0``-``]Q2``, ``]d1``), and never from the shape of another
code: digits only of a product code length (12 to 14: UPC, EAN-13, GTIN-14 without AI), AI 01 and
13 digits (a GTIN cut short, refused as GS1) or an RPPS (11 digits).

:func:`classify` never raises: malformed input becomes ``ScanKind.UNKNOWN`` with a reason.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from drivers.errors import CodeFormatError
from drivers.scanners import gs1

MAX_PAYLOAD = 4096
DEFAULT_EPRESCRIPTION_PATTERN = r"^[A-Z0-9]{10,40}$"
DEFAULT_APCV_PATTERN = r"^APCV[A-Za-z0-9._:-]{8,250}$"
_AIM = re.compile(r"^\][A-Za-z][0-9A-Za-z]")
_GS1_AIMS = {"]d2", "]Q3", "]C1", "]e0"}
# Symbologies an e-prescription number may come in (printed QR code, or a plain DataMatrix).
_PRESCRIPTION_AIMS = {"]Q0", "]Q1", "]Q2", "]d1"}
_PRODUCT_CODE_LENGTHS = {12, 13, 14}
_CODE128_AIMS = {"]C0"}
_INS_HEADER = "IS01" + "0" * 22
_INS_MATRICULE = re.compile(r"^[0-9]{5}(?:[0-9]{2}|2A|2B)[0-9]{8}$")
_2DDOC = re.compile(r"^DC0([234])([A-Z0-9]{4})([A-Z0-9]{4})([0-9A-F]{4})([0-9A-F]{4})([A-Z0-9]{2})")


class ScanKind(enum.StrEnum):
    EPRESCRIPTION = "eprescription"
    APCV = "apcv"
    GS1 = "gs1_datamatrix"
    EAN13_CIP = "ean13_cip"
    INS_DATAMATRIX = "ins_datamatrix"
    TWO_D_DOC = "2d_doc"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Classification:
    """``fields`` may hold personal data (INS, names): never log or publish it, only ``kind``."""

    kind: ScanKind
    aim_id: str | None
    fields: Mapping[str, str] = field(default_factory=dict)
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class ClassifierConfig:
    eprescription_pattern: str = DEFAULT_EPRESCRIPTION_PATTERN
    apcv_pattern: str = DEFAULT_APCV_PATTERN


def normalise(payload: bytes | str) -> tuple[str | None, str]:
    """(AIM id or None, text without AIM prefix, CR/LF and surrounding spaces)."""
    text = payload.decode("latin-1") if isinstance(payload, bytes) else payload
    text = text.strip(" \r\n\t")
    aim = None
    if _AIM.match(text):
        aim, text = text[:3], text[3:]
    return aim, text.strip(" \r\n\t")


class Classifier:
    """Configured once (patterns from settings); :meth:`classify` is pure and thread-safe."""

    def __init__(self, config: ClassifierConfig | None = None) -> None:
        config = config or ClassifierConfig()
        self._eprescription = re.compile(config.eprescription_pattern)
        self._apcv = re.compile(config.apcv_pattern)

    def classify(self, payload: bytes | str, today: dt.date) -> Classification:
        try:
            return self._classify(payload, today)
        except Exception as exc:  # the contract is "never raises": report instead
            return Classification(ScanKind.UNKNOWN, None, reason=f"internal:{type(exc).__name__}")

    def _classify(self, payload: bytes | str, today: dt.date) -> Classification:
        if len(payload) > MAX_PAYLOAD:
            return _unknown(None, "too_long")
        aim, text = normalise(payload)
        if not text:
            return _unknown(aim, "empty")
        if text.startswith("IS01"):
            return _ins(aim, text)
        if _2DDOC.match(text):
            return _two_d_doc(aim, text)
        if self._apcv.match(text):
            return Classification(ScanKind.APCV, aim, {"token": text})
        if aim in _GS1_AIMS or text.startswith(gs1.GS) or _looks_gs1(text):
            return _gs1(aim, text, today)  # a broken one is refused here, never read otherwise
        if any(not ch.isprintable() for ch in text):
            return _unknown(aim, "control_characters")
        if len(text) == 13 and text.isdigit():
            return _ean13(aim, text)
        if aim in _CODE128_AIMS and text.isdigit():
            return _unknown(aim, "prescriber_code128")
        if len(text) == 11 and text.isdigit():
            return _unknown(aim, "rpps_number" if _luhn_ok(text) else "rpps_bad_key")
        return self._eprescription_id(aim, text)

    def _eprescription_id(self, aim: str | None, text: str) -> Classification:
        compact = text.replace(" ", "").upper()
        if not self._eprescription.match(compact):
            return _unknown(aim, "unrecognised")
        if aim is not None and aim not in _PRESCRIPTION_AIMS:
            return _unknown(aim, "eprescription_wrong_symbology")
        if compact.isdigit() and len(compact) in _PRODUCT_CODE_LENGTHS:
            return _unknown(aim, "product_code_without_ai")
        return Classification(ScanKind.EPRESCRIPTION, aim, {"prescription_id": compact})


def _unknown(aim: str | None, reason: str) -> Classification:
    return Classification(ScanKind.UNKNOWN, aim, reason=reason)


def _looks_gs1(text: str) -> bool:
    """An element string sent without a GS1 AIM prefix: AI 01 then 14 digits and more data, or
    AI 01 then 13 digits (a GTIN cut short). The GTIN's check digit is not required here: a broken
    one must be refused as GS1, not be taken for an e-prescription number."""
    if not text.startswith("01"):
        return False
    return (len(text) >= 16 and text[2:16].isdigit()) or (len(text) == 15 and text.isdigit())


def _gs1(aim: str | None, text: str, today: dt.date) -> Classification:
    try:
        data = gs1.parse_gs1(text)
    except CodeFormatError as exc:
        return _unknown(aim, f"gs1_invalid:{exc}")
    fields = {"gtin": data.gtin}
    if data.cip13 is not None:
        fields["cip13"] = data.cip13
    if data.expiry is not None:
        fields["expiry"] = data.expiry.isoformat()
        fields["expired"] = "true" if data.expired(today) else "false"
    if data.batch is not None:
        fields["batch"] = data.batch
    if data.serial is not None:
        fields["serial"] = data.serial
    return Classification(ScanKind.GS1, aim, fields)


def _ean13(aim: str | None, text: str) -> Classification:
    if not gs1.ean_is_valid(text):
        return _unknown(aim, "ean13_bad_check_digit")
    if not text.startswith("340"):
        return _unknown(aim, "ean13_not_cip")
    fields = {"cip13": text}
    if text.startswith("34009"):
        fields["cip7"] = text[5:12]
    return Classification(ScanKind.EAN13_CIP, aim, fields)


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


# INS DataMatrix (formats.md §3.3): id → (field name, max length, fixed?)
_INS_FIELDS: dict[str, tuple[str, int, bool]] = {
    "S1": ("ins", 15, True),
    "S2": ("oid", 20, False),
    "S3": ("given_names", 100, False),
    "S4": ("birth_family_name", 100, False),
    "S5": ("sex", 1, True),
    "S6": ("birth_date", 10, True),
    "S7": ("birthplace", 5, True),
}


def _ins(aim: str | None, text: str) -> Classification:
    if not text.startswith(_INS_HEADER):
        return _unknown(aim, "ins_bad_header")
    fields: dict[str, str] = {}
    pos = len(_INS_HEADER)
    while pos < len(text):
        if text[pos] == gs1.GS:
            pos += 1
            continue
        spec = _INS_FIELDS.get(text[pos : pos + 2])
        if spec is None:
            return _unknown(aim, "ins_unknown_field")
        name, size, fixed = spec
        pos += 2
        end = pos + size
        if not fixed:
            gs_at = text.find(gs1.GS, pos, end)
            end = gs_at if gs_at >= 0 else min(end, len(text))
        value = text[pos:end]
        if (fixed and len(value) != size) or not value or name in fields:
            return _unknown(aim, f"ins_bad_field:{name}")
        fields[name] = value
        pos = end
    if not _INS_MATRICULE.match(fields.get("ins", "")):
        return _unknown(aim, "ins_missing_matricule")
    return Classification(ScanKind.INS_DATAMATRIX, aim, fields)


def _two_d_doc(aim: str | None, text: str) -> Classification:
    match = _2DDOC.match(text)
    assert match is not None
    version, ca_id, cert_id, _issue, _signed, doc_type = match.groups()
    fields = {"version": f"0{version}", "ca_id": ca_id, "cert_id": cert_id, "doc_type": doc_type}
    return Classification(ScanKind.TWO_D_DOC, aim, fields)
