"""NIR key check (formats.md §1.5): key = 97 − (N13 mod 97), Corsica 2A→19, 2B→18."""

from __future__ import annotations

import re

from stdnum.fr import nir as nir_numbers

_NIR = re.compile(r"^[1-478][0-9]{2}[0-9]{2}(?:[0-9]{2}|2A|2B)[0-9]{6}[0-9]{2}$")


def nir_key(first13: str) -> int:
    """The 2-digit key of a 13-character NIR body (raises ValueError on a malformed body)."""
    body = first13.upper()
    plain = body[:5] + body[7:] if body[5:7] in ("2A", "2B") else body
    if len(body) != 13 or not plain.isascii() or not plain.isdigit():
        raise ValueError("NIR body must be 13 digits")
    return int(nir_numbers.calc_check_digits(body))


def nir_is_valid(nir: str) -> bool:
    """True for a well-formed 15-character NIR whose key matches."""
    if not _NIR.match(nir):
        return False
    return nir_key(nir[:13]) == int(nir[13:])
