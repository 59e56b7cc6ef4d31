"""Typed result of a Vitale 2 read. Values are kept as the card stores them (raw date text)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Beneficiary:
    """One person on the card. ``rank`` is the position on the card, 1 = the holder (assuré).

    The birth rank ("rang de naissance", twins) and qualité live in a protected file that a free
    read cannot open (formats.md §1.4); they come from the rights service, not from here.

    ``birth_date_raw`` is the 8 characters the card holds (``YYYYMMDD``); a "lunar" date (a day or
    month the civil registry does not know, e.g. ``19850000`` or ``19853199``) is kept verbatim and
    :attr:`birth_date` is then None.
    """

    rank: int
    family_name: str
    given_name: str
    birth_date_raw: str
    nir: str

    @property
    def birth_date(self) -> dt.date | None:
        try:
            return dt.date(
                int(self.birth_date_raw[:4]),
                int(self.birth_date_raw[4:6]),
                int(self.birth_date_raw[6:8]),
            )
        except ValueError:
            return None

    @property
    def is_lunar(self) -> bool:
        return self.birth_date is None


@dataclass(frozen=True, slots=True)
class VitaleCard:
    """A Vitale 2 card: its beneficiaries in card order, holder first."""

    beneficiaries: tuple[Beneficiary, ...]
    validity_start_raw: str | None = None
    apdu_count: int = 0

    @property
    def holder(self) -> Beneficiary:
        return self.beneficiaries[0]
