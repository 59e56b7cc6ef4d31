"""NIR key check (formats.md §1.5): key = 97 − (N13 mod 97), Corsica 2A→19, 2B→18."""

from __future__ import annotations

import re

_NIR = re.compile(r"^[1-478][0-9]{2}[0-9]{2}(?:[0-9]{2}|2A|2B)[0-9]{6}[0-9]{2}$")


def nir_key(first13: str) -> int:
    """The 2-digit key of a 13-character NIR body (raises ValueError on a malformed body)."""
    digits = first13
    if first13[5:7].upper() == "2B":
        digits = first13[:5] + "18" + first13[7:]
    elif first13[5:7].upper() == "2A":
        digits = first13[:5] + "19" + first13[7:]
    if len(digits) != 13 or not digits.isdigit():
        raise ValueError("NIR body must be 13 digits")
    return 97 - int(digits) % 97


def nir_is_valid(nir: str) -> bool:
    """True for a well-formed 15-character NIR whose key matches."""
    if not _NIR.match(nir):
        return False
    return nir_key(nir[:13]) == int(nir[13:])
