"""Is a birth date real data? (pure; today is a parameter)

A birth date typed at the counter must be a real calendar date, not in the future and not more
than 150 years ago. An unknown day or month (``00``, or the lunar forms above 12/31 a carte Vitale
uses) is legal only as a card or the INS referential gives it: then it is kept exactly as given
(never "corrected"), and only its year is checked. Messages are French: the pharmacist reads them
next to the field.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Final

MAX_AGE_YEARS: Final = 150
_DIGITS: Final = re.compile(r"^(\d{4})-?(\d{2})-?(\d{2})$")


class BirthDateError(ValueError):
    """The birth date cannot be recorded; the message says why, in French."""


def _is_calendar_form(month: int, day: int) -> bool:
    return 1 <= month <= 12 and 1 <= day <= 31


def check_birth_date(raw: str, today: date, *, lunar_allowed: bool) -> str:
    """The 8-digit ``YYYYMMDD`` text of ``raw`` (``YYYYMMDD`` or ``YYYY-MM-DD``), or
    :class:`BirthDateError`. ``lunar_allowed``: the date comes from a card or the INS."""
    match = _DIGITS.match(raw.strip())
    if match is None:
        raise BirthDateError("date de naissance attendue au format AAAAMMJJ ou AAAA-MM-JJ")
    year, month, day = (int(part) for part in match.groups())
    digits = "".join(match.groups())
    if year > today.year:
        raise BirthDateError("date de naissance dans le futur")
    if year < today.year - MAX_AGE_YEARS:
        raise BirthDateError(f"date de naissance de plus de {MAX_AGE_YEARS} ans")
    if not _is_calendar_form(month, day):
        if not lunar_allowed and month and day:
            # Typed month 13 or day 32: a typo, not an unknown part.
            raise BirthDateError(f"le {day:02d}/{month:02d}/{year} n'existe pas")
        if not lunar_allowed:
            raise BirthDateError(
                "jour ou mois inconnu (00) accepté seulement tel que lu sur la carte Vitale ou "
                "donné par l'INS : saisir une date complète"
            )
        return digits  # lunar: kept as the card gives it
    try:
        real = date(year, month, day)
    except ValueError:
        if lunar_allowed:
            return digits  # a card's form, kept as given
        raise BirthDateError(f"le {day:02d}/{month:02d}/{year} n'existe pas") from None
    if real > today:
        raise BirthDateError("date de naissance dans le futur")
    return digits
