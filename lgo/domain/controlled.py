"""Stupéfiants and assimilés (CSP R5132-29/30/33; domain.md §6.3) (pure).

- duration: at most 28 days, or the drug's own limit (14 or 7 by arrêté);
- 3-day rule: full execution only when presented within 3 calendar days after the prescription date
  (the prescription day is not counted) or after the end of the previous fraction; on day D+k with
  k > 3 the deliverable duration is reduced by k days;
- fractions: each delivery at most the fraction length unless "délivrance en une seule fois";
- chevauchement: no execution over a period already covered, unless expressly mentioned.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

from lgo.domain.prescription import PrescriptionLine

DEFAULT_MAX_DAYS = 28
PRESENTATION_GRACE_DAYS = 3


@dataclass(frozen=True)
class Period:
    """A covered treatment period, both ends inclusive."""

    start: date
    end: date

    @classmethod
    def from_days(cls, start: date, days: int) -> Period:
        return cls(start, start + timedelta(days=days - 1))

    def overlaps(self, other: Period) -> bool:
        return self.start <= other.end and other.start <= self.end


def max_duration_days(line: PrescriptionLine) -> int:
    own = line.product.max_duration_days
    return min(own, DEFAULT_MAX_DAYS) if own is not None else DEFAULT_MAX_DAYS


def fraction_days(line: PrescriptionLine) -> int | None:
    """Days per delivery when fractionnement applies (prescriber's or arrêté's, the stricter)."""
    if line.single_delivery:
        return None
    values = [v for v in (line.fraction_days, line.product.fraction_days) if v is not None]
    return min(values) if values else None


def presentation_reduction(reference: date, presented: date) -> int:
    """Days to remove from the treatment when presented late (0 within D+3 inclusive).

    ``reference`` is the prescription date, or the last day covered by the previous fraction.
    Calendar days, not hours: written on 1 Feb ⇒ full until 4 Feb; 5 Feb removes 4 days.
    """
    elapsed = (presented - reference).days
    return elapsed if elapsed > PRESENTATION_GRACE_DAYS else 0


def surgery_reduction(window: tuple[date, date], presented: date) -> int | None:
    """Planned surgery: full execution from 3 days before the intervention to 3 days after
    discharge (décret 2022-972). None when presented outside that window (normal rule applies)."""
    start, discharge = window
    low = start - timedelta(days=PRESENTATION_GRACE_DAYS)
    high = discharge + timedelta(days=PRESENTATION_GRACE_DAYS)
    return 0 if low <= presented <= high else None


def days_before_overlap(start: date, covered: Iterable[Period]) -> int | None:
    """Days that may be covered from ``start`` before reaching a period already covered for the
    same patient and substance (0 when ``start`` itself is covered; None when nothing is)."""
    gaps = [max((period.start - start).days, 0) for period in covered if period.end >= start]
    return min(gaps) if gaps else None
