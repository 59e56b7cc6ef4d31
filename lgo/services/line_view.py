"""One prescription line as the counter sees it: the prescriber's posology text, what the
structured dosage defines, what may be delivered today and why, and the pack proposal.

``deliverable`` is :func:`lgo.domain.dispensing.deliverable`, the same rule the commit enforces
(``evaluate_line``); the proposal follows its ``max_days`` and is absent when the line is blocked or
when the dosage does not give a daily quantity (the pharmacist gives the figure instead).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from lgo.domain.controlled import Period
from lgo.domain.dispensing import (
    EXCEPTIONAL_DELIVERY_DAYS,
    Deliverable,
    InterventionKind,
    LineHistory,
    LineRequest,
    deliverable,
    exceptional_refusals,
    units_for,
)
from lgo.domain.posology import Posology, display_decimal
from lgo.domain.prescription import Prescription, PrescriptionLine, PrescriptionSource
from lgo.domain.products import cheapest_pack_set
from lgo.domain.refusals import ARTICLES, LIMIT_MESSAGES_FR


@dataclass(frozen=True)
class PosologyFigures:
    """What the structured dosage defines (or the pharmacist typed on a paper line)."""

    units_per_day: str | None
    duration_days: int | None
    as_needed: bool
    max_units_per_day: str | None
    needs_pharmacist_input: bool
    reason: str | None


@dataclass(frozen=True)
class DeliveryReason:
    code: str
    message: str
    article: str | None


@dataclass(frozen=True)
class DeliverableToday:
    """What may be delivered today on the line (the rule the commit enforces)."""

    allowed: bool
    max_days: int
    reasons: list[DeliveryReason]
    overridable: bool


@dataclass(frozen=True)
class ProposedPack:
    cip13: str
    units: int
    count: int


@dataclass(frozen=True)
class ProposedPacks:
    days: int
    price_cents: int
    packs: list[ProposedPack]


@dataclass(frozen=True)
class LineView:
    line_no: int
    designation: str
    product_code: str
    regulatory_list: str
    units_per_day: str | None
    duration_days: int
    renewals: int
    substitutable: bool
    non_substitution_reason: str | None
    days_dispensed: int
    deliveries: int
    remaining_days: int
    posology_text: str
    posology: PosologyFigures
    deliverable: DeliverableToday
    warnings: list[str]
    proposal: ProposedPacks | None


def posology_view(prescription: Prescription, line: PrescriptionLine) -> PosologyFigures:
    """The figures the dosage defines; a typed paper line carries the pharmacist's own figures."""
    posology = line.posology
    if posology is None and prescription.source is PrescriptionSource.PAPER:
        posology = Posology(
            units_per_day=line.units_per_day, duration_days=line.duration_days, reason=None
        )
    posology = posology or Posology()
    return PosologyFigures(
        units_per_day=display_decimal(posology.units_per_day),
        duration_days=posology.duration_days,
        as_needed=posology.as_needed,
        max_units_per_day=display_decimal(posology.max_units_per_day),
        needs_pharmacist_input=posology.needs_pharmacist_input,
        reason=posology.reason,
    )


def deliverable_view(allowance: Deliverable, exceptional: bool = False) -> DeliverableToday:
    if allowance.blocking:
        reasons = [DeliveryReason(r.code.value, r.message, r.article) for r in allowance.blocking]
        if exceptional:
            reasons.append(EXCEPTIONAL_REASON)
    else:
        reasons = [
            DeliveryReason(
                limit.code.value,
                LIMIT_MESSAGES_FR[limit.code].format(days=allowance.max_days),
                ARTICLES.get(limit.code),
            )
            for limit in allowance.binding()
        ]
    return DeliverableToday(allowance.allowed, allowance.max_days, reasons, allowance.overridable)


EXCEPTIONAL_REASON = DeliveryReason(
    "exceptional_dispensation_possible",
    f"Dispensation supplémentaire exceptionnelle possible : {EXCEPTIONAL_DELIVERY_DAYS} "
    "jours au plus (intervention « modification », exceptionnelle), prescripteur à informer.",
    "L.5125-23-1",
)


def _exceptional_possible(
    prescription: Prescription, line: PrescriptionLine, history: LineHistory, today: date
) -> bool:
    """A blocked line of an expired renewable chronic treatment may still get a month (the same
    rule the commit applies to an ``exceptional`` line)."""
    request = LineRequest(line.line_no, InterventionKind.MODIFIED, days=1, exceptional=True)
    return not exceptional_refusals(prescription, line, request, history, today)


def _proposal(
    line: PrescriptionLine, allowance: Deliverable, posology: PosologyFigures
) -> ProposedPacks | None:
    if not allowance.allowed or posology.needs_pharmacist_input or not line.product.packs:
        return None
    days = allowance.max_days
    packs = cheapest_pack_set(line.product.packs, units_for(line, days))
    counts = [ProposedPack(p.pack.cip13, p.pack.units, p.count) for p in packs.lines]
    return ProposedPacks(days, packs.price_cents, counts)


def line_view(
    prescription: Prescription,
    line: PrescriptionLine,
    history: LineHistory,
    today: date,
    covered: Sequence[Period] = (),
) -> LineView:
    allowance = deliverable(prescription, line, history, today, covered)
    posology = posology_view(prescription, line)
    return LineView(
        line_no=line.line_no,
        designation=line.product.name,
        product_code=line.product.code,
        regulatory_list=line.regulatory_list.value,
        # Only what the dosage defines (or the pharmacist typed): never a figure computed from
        # the number of boxes.
        units_per_day=posology.units_per_day,
        duration_days=line.duration_days,
        renewals=line.renewals,
        substitutable=line.substitutable,
        non_substitution_reason=(
            line.non_substitution_reason.value if line.non_substitution_reason else None
        ),
        days_dispensed=history.days_dispensed,
        deliveries=history.deliveries,
        remaining_days=max(line.treatment_days - history.days_dispensed, 0),
        posology_text=line.posology_text,
        posology=posology,
        deliverable=deliverable_view(
            allowance,
            exceptional=bool(allowance.blocking)
            and _exceptional_possible(prescription, line, history, today),
        ),
        warnings=[r.code.value for r in allowance.blocking],
        proposal=_proposal(line, allowance, posology),
    )
