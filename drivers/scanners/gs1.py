"""GS1 element strings as a counter scanner delivers them (formats.md §5.2, §6).

FNC1 separators arrive as GS (0x1D). AIs are parsed by table, in any order. A GTIN-14 starting with
``03400`` carries a French CIP13 (``gtin[1:]``). Malformed strings raise :class:`CodeFormatError`.
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass

from drivers.errors import CodeFormatError

GS = "\x1d"

# AI → (fixed length, or None for variable with the max length)
_FIXED: dict[str, int] = {
    "00": 18,
    "01": 14,
    "02": 14,
    "11": 6,
    "12": 6,
    "13": 6,
    "15": 6,
    "16": 6,
    "17": 6,
    "20": 2,
}
_VARIABLE: dict[str, int] = {
    "10": 20,
    "21": 20,
    "22": 20,
    "30": 8,
    "37": 8,
    "240": 30,
    "241": 30,
    "250": 30,
    "710": 20,
    "711": 20,
    "712": 20,
    "713": 20,
    "714": 20,
}


@dataclass(frozen=True, slots=True)
class Gs1Data:
    gtin: str
    expiry: dt.date | None
    expiry_raw: str | None
    batch: str | None
    serial: str | None
    others: tuple[tuple[str, str], ...] = ()

    @property
    def cip13(self) -> str | None:
        return self.gtin[1:] if self.gtin.startswith("03400") else None

    def expired(self, today: dt.date) -> bool:
        return self.expiry is not None and self.expiry < today


def ean_check_digit(body: str) -> int:
    """GS1 mod-10 check digit of ``body`` (weights 3,1,3,… from the right)."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return (10 - total % 10) % 10


def ean_is_valid(code: str) -> bool:
    return len(code) >= 2 and code.isdigit() and ean_check_digit(code[:-1]) == int(code[-1])


def parse_expiry(raw: str) -> dt.date:
    """YYMMDD; DD=00 means the last day of the month. Century: 20YY (medicines)."""
    if len(raw) != 6 or not raw.isdigit():
        raise CodeFormatError("expiry is not YYMMDD")
    year, month, day = 2000 + int(raw[:2]), int(raw[2:4]), int(raw[4:6])
    if not 1 <= month <= 12:
        raise CodeFormatError("expiry month out of range")
    if day == 0:
        day = calendar.monthrange(year, month)[1]
    try:
        return dt.date(year, month, day)
    except ValueError as exc:
        raise CodeFormatError("expiry day out of range") from exc


def _ai_at(data: str, pos: int) -> str | None:
    for size in (2, 3):
        candidate = data[pos : pos + size]
        if candidate in _FIXED or candidate in _VARIABLE:
            return candidate
    return None


def _split_elements(data: str) -> list[tuple[str, str]]:
    elements: list[tuple[str, str]] = []
    pos = 0
    while pos < len(data):
        if data[pos] == GS:
            pos += 1
            continue
        ai = _ai_at(data, pos)
        if ai is None:
            raise CodeFormatError("unknown application identifier")
        pos += len(ai)
        if ai in _FIXED:
            value = data[pos : pos + _FIXED[ai]]
            if len(value) != _FIXED[ai] or GS in value:
                raise CodeFormatError(f"AI {ai} is too short")
        else:
            end = data.find(GS, pos)
            value = data[pos:] if end < 0 else data[pos:end]
            if not value or len(value) > _VARIABLE[ai]:
                raise CodeFormatError(f"AI {ai} has a bad length")
        pos += len(value)
        elements.append((ai, value))
    return elements


def parse_gs1(data: str) -> Gs1Data:
    """Parse an element string (AIM prefix already removed; a leading GS/FNC1 is allowed)."""
    if not data.strip(GS):
        raise CodeFormatError("empty element string")
    if any(not (ch.isprintable() or ch == GS) for ch in data):
        raise CodeFormatError("control characters in element string")
    elements = _split_elements(data)
    seen = [ai for ai, _ in elements]
    if len(set(seen)) != len(seen):
        raise CodeFormatError("repeated application identifier")
    values = dict(elements)
    gtin = values.pop("01", None)
    if gtin is None:
        raise CodeFormatError("no GTIN (AI 01)")
    if not ean_is_valid(gtin):
        raise CodeFormatError("GTIN check digit is wrong")
    expiry_raw = values.pop("17", None)
    return Gs1Data(
        gtin=gtin,
        expiry=parse_expiry(expiry_raw) if expiry_raw is not None else None,
        expiry_raw=expiry_raw,
        batch=values.pop("10", None),
        serial=values.pop("21", None),
        others=tuple(sorted(values.items())),
    )
