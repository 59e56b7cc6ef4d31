"""Professional identifiers: RPPS numbers and national professional ids (idNat_PS).

An RPPS number has 11 digits, the last one a Luhn key over the first ten. The national
professional id used by cards, Pro Santé Connect and the Annuaire Santé is ``8`` + RPPS
(RPPS professions) or ``0`` + ADELI (older professions). Pure functions, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from stdnum import luhn

RPPS_LENGTH = 11
IDNAT_RPPS_PREFIX = "8"
IDNAT_ADELI_PREFIX = "0"
PHARMACIST_PROFESSION = "21"  # TRE_G15 "Pharmacien"


class IdNatKind(StrEnum):
    RPPS = "rpps"
    ADELI = "adeli"


@dataclass(frozen=True, slots=True)
class NationalId:
    """A parsed idNat_PS: the kind of register and the number in it."""

    kind: IdNatKind
    number: str

    @property
    def idnat(self) -> str:
        prefix = IDNAT_RPPS_PREFIX if self.kind is IdNatKind.RPPS else IDNAT_ADELI_PREFIX
        return prefix + self.number


def luhn_valid(digits: str) -> bool:
    """True when ``digits`` (only ASCII digits) ends with a correct Luhn key."""
    return digits.isascii() and digits.isdigit() and luhn.is_valid(digits)


def luhn_key(body: str) -> str:
    """The Luhn check digit to append to ``body`` (ASCII digits)."""
    if not body.isascii() or not body.isdigit():
        raise ValueError("body must be ASCII digits")
    return luhn.calc_check_digit(body)


def is_valid_rpps(rpps: str) -> bool:
    """An RPPS number: exactly 11 ASCII digits with a valid Luhn key."""
    return len(rpps) == RPPS_LENGTH and luhn_valid(rpps)


def parse_idnat(idnat: str) -> NationalId | None:
    """Parse a national professional id; ``None`` when it is not a valid RPPS/ADELI id.

    ADELI numbers (9 characters) carry their own key whose rule is not public: only
    their shape is checked.
    """
    if idnat.startswith(IDNAT_RPPS_PREFIX) and is_valid_rpps(idnat[1:]):
        return NationalId(IdNatKind.RPPS, idnat[1:])
    rest = idnat[1:]
    adeli_shape = len(rest) == 9 and rest.isascii() and rest.isalnum()
    if idnat.startswith(IDNAT_ADELI_PREFIX) and adeli_shape:
        return NationalId(IdNatKind.ADELI, rest)
    return None


def idnat_from_rpps(rpps: str) -> str:
    """The idNat_PS of an RPPS number; raises ``ValueError`` on an invalid number."""
    if not is_valid_rpps(rpps):
        raise ValueError("invalid RPPS number")
    return IDNAT_RPPS_PREFIX + rpps
