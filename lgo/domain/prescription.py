"""Prescriptions and their lines, as the dispensing rules see them (pure).

A prescription comes from the e-prescription service (mapped by the service layer from the national
DTO) or is typed in from paper. Dates are calendar dates; time is always a parameter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum

from lgo.domain.patient_match import PatientTraits
from lgo.domain.posology import Posology
from lgo.domain.products import Product, RegulatoryList

PRESCRIPTION_ID_RE = re.compile(r"^[0-9A-Z]{10,40}$")

# Lists I/II: first delivery within 3 months of the prescription date; whole treatment within 12.
FIRST_DELIVERY_MONTHS = 3
TREATMENT_LIMIT_MONTHS = 12


class PrescriptionSource(StrEnum):
    EPRESCRIPTION = "eprescription"
    PAPER = "paper"
    # Dispensed under a national protocol (antibiotic after a positive TROD): the pharmacist is
    # the prescriber; nothing is reported to the e-prescription base.
    PROTOCOL = "protocole"


class NonSubstitutionReason(StrEnum):
    """Justifications accepted since 1 Jan 2020 for a "non substituable" mention."""

    MTE = "MTE"  # narrow therapeutic margin
    EFG = "EFG"  # child under 6, no suitable generic form
    CIF = "CIF"  # contraindication to an excipient present in all generics


def add_months(day: date, months: int) -> date:
    """Calendar month arithmetic; the 31st becomes the last day of a shorter month."""
    month_index = day.month - 1 + months
    year = day.year + month_index // 12
    month = month_index % 12 + 1
    for candidate in (day.day, 30, 29, 28):
        try:
            return date(year, month, candidate)
        except ValueError:
            continue
    raise AssertionError("unreachable: every month has 28 days")


def normalise_prescription_id(raw: str) -> str:
    """Normalise a scanned or typed e-prescription id; ValueError when it cannot be one."""
    text = raw.strip()
    if text.startswith("]Q") or text.startswith("]d"):
        text = text[3:]  # AIM symbology identifier (]Q1 QR, ]d2 DataMatrix)
    text = re.sub(r"[\s\r\n-]", "", text).upper()
    if not PRESCRIPTION_ID_RE.fullmatch(text):
        raise ValueError("not an e-prescription id")
    return text


@dataclass(frozen=True)
class PrescriptionLine:
    """One medicine line: what, how much per day, for how long, how many renewals."""

    line_no: int
    product: Product
    units_per_day: Decimal
    duration_days: int
    renewals: int = 0
    # Liste I: renewable only if the prescriber states renewals or the duration.
    duration_stated: bool = True
    # Liste II: renewable unless expressly forbidden.
    renewal_forbidden: bool = False
    substitutable: bool = True
    non_substitution_reason: NonSubstitutionReason | None = None
    # Controlled drugs: "délivrance en une seule fois" lifts the fractionnement.
    single_delivery: bool = False
    fraction_days: int | None = None
    # Controlled drugs: express mention allowing an overlap with a covered period.
    overlap_mention: bool = False
    # The prescriber's posology text, verbatim, and what its structured dosage defines (None: no
    # structured dosage, e.g. a typed paper line). ``units_per_day`` above comes from it when
    # defined; otherwise it is the prescribed quantity spread over the duration (for counting
    # units at commit), never a posology to show.
    posology_text: str = ""
    posology: Posology | None = None

    def __post_init__(self) -> None:
        if self.line_no < 1 or self.duration_days < 1 or self.renewals < 0:
            raise ValueError("line_no and duration_days must be positive, renewals non-negative")
        if self.units_per_day <= 0:
            raise ValueError("units_per_day must be positive")

    @property
    def treatment_days(self) -> int:
        """Total treatment the line covers: the written period times (1 + renewals)."""
        return self.duration_days * (1 + self.renewals)

    @property
    def regulatory_list(self) -> RegulatoryList:
        return self.product.regulatory_list

    def renewable(self) -> bool:
        """Whether more than one delivery may be made on this line (lists I/II rules)."""
        if self.regulatory_list is RegulatoryList.LIST_I:
            return self.renewals > 0 or self.duration_stated
        if self.regulatory_list is RegulatoryList.LIST_II:
            return not self.renewal_forbidden
        return True


@dataclass(frozen=True)
class Prescription:
    prescription_id: str
    source: PrescriptionSource
    prescribed_on: date
    prescriber_rpps: str
    lines: tuple[PrescriptionLine, ...]
    patient_id: str | None = None
    # Planned surgery (décret 2022-972): the 3-day window runs around the intervention instead.
    surgery_window: tuple[date, date] | None = None
    extra: dict[str, str] = field(default_factory=dict)
    # Who the prescription was written for (e-prescription); None for a typed paper copy, which
    # the pharmacist types for the patient at the counter.
    patient: PatientTraits | None = None

    def __post_init__(self) -> None:
        numbers = [line.line_no for line in self.lines]
        if len(set(numbers)) != len(numbers):
            raise ValueError("duplicate line numbers")

    def line(self, line_no: int) -> PrescriptionLine:
        for line in self.lines:
            if line.line_no == line_no:
                return line
        raise KeyError(line_no)

    @property
    def first_delivery_deadline(self) -> date:
        """Last day a list I/II first delivery is allowed (prescription date + 3 months)."""
        return add_months(self.prescribed_on, FIRST_DELIVERY_MONTHS)

    @property
    def treatment_limit(self) -> date:
        """Last day any delivery is allowed on a list I/II line (12 months of treatment)."""
        return add_months(self.prescribed_on, TREATMENT_LIMIT_MONTHS)

    def expiry(self, line: PrescriptionLine) -> date:
        """Day after which the line's treatment period is over (capped at 12 months)."""
        end = self.prescribed_on + timedelta(days=line.treatment_days)
        return min(end, self.treatment_limit)
