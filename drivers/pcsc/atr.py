"""Card recognition by ATR (formats.md §1.1, §2.1).

The ATR only suggests the kind; the Vitale reader confirms a Vitale 2 by selecting its application.
"""

from __future__ import annotations

import enum


class CardKind(enum.StrEnum):
    VITALE_2 = "vitale2"
    VITALE_1 = "vitale1"
    CPS = "cps"
    UNKNOWN = "unknown"
    MUTE = "mute"


def _matches(atr: bytes, pattern: bytes, mask: bytes) -> bool:
    if len(atr) != len(pattern):
        return False
    return all((a & m) == (p & m) for a, p, m in zip(atr, pattern, mask, strict=True))


# Vitale 2: 3B 75 13 00 00 ?? 09 ?A 90 00
_VITALE2 = (bytes.fromhex("3B7513000000090A9000"), bytes.fromhex("FFFFFFFFFF00FF0FFFFF"))
# CPS3 contact, OpenSC mask (formats.md §2.1)
_CPS3 = (
    bytes.fromhex("3BAC00402A00122500648000031000 9000".replace(" ", "")),
    bytes.fromhex("FF00000000FFFFFFFFFFFF000000FFFFFF"),
)
_CPS3_CL = (
    bytes.fromhex("3B8F800100 31B86404B0ECC173940180829000 0E".replace(" ", "")),
    bytes.fromhex("FFFFFFFFFFFFFFFF0000FFC0FFFFFFFFFFFFFF00".replace(" ", "")),
)
_CPS4_EXACT = {
    bytes.fromhex("3B9B188001001225006480040100009044"),
    bytes.fromhex("3B9B188001001225006480000401009044"),
    bytes.fromhex("3BDC18FF0000122500648000040100 9000".replace(" ", "")),
}


def classify_atr(atr: bytes) -> CardKind:
    """The card kind suggested by ``atr`` (empty ATR = mute card)."""
    if not atr:
        return CardKind.MUTE
    if _matches(atr, *_VITALE2):
        return CardKind.VITALE_2
    if atr[:4] == bytes.fromhex("3F652500"):
        return CardKind.VITALE_1
    if _matches(atr, *_CPS3) or _matches(atr, *_CPS3_CL) or atr in _CPS4_EXACT:
        return CardKind.CPS
    return CardKind.UNKNOWN
