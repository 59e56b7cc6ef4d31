"""Dispensing rules: one intervention per line, validity, quantities, caps (pure).

Sources: domain.md §1.1 (interventions), §6.1 (validity, caps, exceptional dispensation, DAU),
§6.2 (substitution), §6.3 (controlled drugs), §9 items 6, 9–16. ``today`` is always a parameter.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from enum import StrEnum

from lgo.domain import controlled
from lgo.domain.controlled import Period
from lgo.domain.prescription import Prescription, PrescriptionLine, add_months
from lgo.domain.products import Pack, Product, RegulatoryList
from lgo.domain.refusals import Override, Refusal, RefusalCode
from lgo.domain.substitution import (
    MTE_PH_MENTION,
    SubstitutionRecord,
    mte_ph_refusals,
    substitution_refusals,
    unjustified_non_substitution,
)

MONTH_CAP_DAYS = 30
FOUR_WEEK_CAP_DAYS = 28
QUARTER_CAP_DAYS = 90
CONTRACEPTIVE_CAP_DAYS = 84
EXCEPTIONAL_DELIVERY_DAYS = 30
EXCEPTIONAL_TOTAL_DAYS = 90

EXCEPTIONAL_CODING = ("modification", "renouvellement", "situation_particuliere")


class InterventionKind(StrEnum):
    UNCHANGED = "unchanged"
    SUBSTITUTED = "substituted"
    MODIFIED = "modified"
    NOT_DISPENSED = "not_dispensed"


class Completeness(StrEnum):
    """JDV_CompletudeDispensation (HL7 ActCode)."""

    FIRST_COMPLETE = "FFC"
    FIRST_PARTIAL = "FFP"
    REFILL_COMPLETE = "RFC"
    REFILL_PARTIAL = "RFP"


@dataclass(frozen=True)
class LineHistory:
    """What was already dispensed on a line (from the store)."""

    days_dispensed: int = 0
    deliveries: int = 0
    last_period: Period | None = None
    exceptional_days: int = 0


@dataclass(frozen=True)
class LineRequest:
    """The pharmacist's intervention on one line."""

    line_no: int
    kind: InterventionKind
    days: int = 0
    pack: Pack | None = None
    delivered_product: Product | None = None
    substitution: SubstitutionRecord | None = None
    modification_reason: str | None = None
    prescriber_agreement_on: date | None = None
    not_dispensed_reason: str | None = None
    exceptional: bool = False
    unit_dispensing: bool = False
    lots: tuple[str, ...] = ()
    mte_ph: bool = False
    override: Override | None = None
    # The pharmacist's daily quantity for a line whose structured dosage gives none (as needed,
    # per kg, text only…). Ignored when the dosage defines one: the prescribed posology counts.
    units_per_day: Decimal | None = None


@dataclass(frozen=True)
class LineDecision:
    line_no: int
    kind: InterventionKind
    days: int
    units: int
    refusals: tuple[Refusal, ...]
    overridden: tuple[Override, ...] = ()
    completeness: Completeness | None = None
    period: Period | None = None
    warnings: tuple[str, ...] = ()
    mentions: tuple[str, ...] = ()

    @property
    def allowed(self) -> bool:
        return not self.refusals


@dataclass(frozen=True)
class ExecutionDecision:
    lines: tuple[LineDecision, ...]
    refusals: tuple[Refusal, ...] = field(default_factory=tuple)

    @property
    def allowed(self) -> bool:
        return not self.refusals and all(d.allowed for d in self.lines)

    def all_refusals(self) -> list[Refusal]:
        return [*self.refusals, *(r for d in self.lines for r in d.refusals)]


def units_for(line: PrescriptionLine, days: int) -> int:
    """Dosage units covering ``days`` of treatment (rounded up: a half tablet is a tablet).
    Rounded to 6 decimals first: 2/7 of a tablet a day for 28 days is 8 tablets, not 9."""
    return math.ceil((line.units_per_day * days).quantize(Decimal("0.000001")))


def pack_days(line: PrescriptionLine, pack: Pack) -> int:
    return math.floor(pack.units / line.units_per_day)


def delivery_cap_days(line: PrescriptionLine, pack: Pack | None) -> int:
    """Per-delivery cap (R5123-2): 30 days or 4 weeks by pack, 3 months for large packs,
    12 weeks for contraceptives."""
    if line.product.contraceptive:
        return CONTRACEPTIVE_CAP_DAYS
    if pack is None:
        return MONTH_CAP_DAYS
    covered = pack_days(line, pack)
    if covered > MONTH_CAP_DAYS + 1:
        return QUARTER_CAP_DAYS
    if covered == FOUR_WEEK_CAP_DAYS:
        return FOUR_WEEK_CAP_DAYS
    return MONTH_CAP_DAYS


def completeness(history: LineHistory, remaining_after: int) -> Completeness:
    first = history.deliveries == 0
    complete = remaining_after <= 0
    if first:
        return Completeness.FIRST_COMPLETE if complete else Completeness.FIRST_PARTIAL
    return Completeness.REFILL_COMPLETE if complete else Completeness.REFILL_PARTIAL


def _validity_refusals(
    prescription: Prescription, line: PrescriptionLine, history: LineHistory, today: date
) -> list[Refusal]:
    refusals: list[Refusal] = []
    listed = line.regulatory_list in (RegulatoryList.LIST_I, RegulatoryList.LIST_II)
    if listed and history.deliveries == 0 and today > prescription.first_delivery_deadline:
        refusals.append(Refusal(RefusalCode.FIRST_DELIVERY_TOO_LATE, line.line_no, 0))
    if line.regulatory_list.goes_to_ordonnancier and today > prescription.treatment_limit:
        refusals.append(Refusal(RefusalCode.TREATMENT_LIMIT_PASSED, line.line_no, 0))
    if history.deliveries > 0 and not line.renewable():
        refusals.append(Refusal(RefusalCode.NOT_RENEWABLE, line.line_no, 0))
    return refusals


@dataclass(frozen=True)
class Limit:
    """A rule that caps the days deliverable today on a line."""

    code: RefusalCode
    days: int


@dataclass(frozen=True)
class Deliverable:
    """What may be handed over today on one line and why. The prescription view shows it and
    the commit enforces it (``evaluate_line`` calls :func:`deliverable`): one rule, one place."""

    line_no: int
    max_days: int
    blocking: tuple[Refusal, ...]
    limits: tuple[Limit, ...]

    @property
    def allowed(self) -> bool:
        return not self.blocking and self.max_days > 0

    @property
    def overridable(self) -> bool:
        return bool(self.blocking) and all(r.overridable for r in self.blocking)

    def binding(self) -> tuple[Limit, ...]:
        """The limits that set ``max_days`` (the reasons the counter shows on an allowed line)."""
        return tuple(limit for limit in self.limits if limit.days == self.max_days)

    def refusals_for(self, days: int) -> list[Refusal]:
        """A request for ``days``: the blocks, else every limit it exceeds, each saying what
        may still be delivered today."""
        if self.blocking:
            return list(self.blocking)
        exceeded = [limit for limit in self.limits if days > limit.days]
        if exceeded and exceeded[0].code is RefusalCode.QUANTITY_EXCEEDS_REMAINING:
            exceeded = exceeded[:1]  # more than prescribed: the other caps add nothing
        return [Refusal(limit.code, self.line_no, self.max_days) for limit in exceeded]


def deliverable(
    prescription: Prescription,
    line: PrescriptionLine,
    history: LineHistory,
    today: date,
    covered: Sequence[Period] = (),
    pack: Pack | None = None,
) -> Deliverable:
    """The most days deliverable today on ``line`` (outside an exceptional dispensation), with
    the rules that block it or cap it. ``pack``: the pack handed over (per-delivery cap); None
    gives the 30-day cap (3 months with a pack lasting more than a month)."""
    blocking = _validity_refusals(prescription, line, history, today)
    remaining = line.treatment_days - history.days_dispensed
    if remaining <= 0:
        blocking.append(Refusal(RefusalCode.NOTHING_LEFT, line.line_no, 0))
    limits = [Limit(RefusalCode.QUANTITY_EXCEEDS_REMAINING, max(remaining, 0))]
    if line.regulatory_list.is_controlled:
        if line.duration_days > controlled.max_duration_days(line):
            blocking.append(Refusal(RefusalCode.CONTROLLED_DURATION_EXCEEDED, line.line_no, 0))
        limits += _controlled_limits(prescription, line, history, today, covered)
    else:
        limits.append(Limit(RefusalCode.PER_DELIVERY_CAP_EXCEEDED, delivery_cap_days(line, pack)))
    exhausted = [
        limit
        for limit in limits
        if limit.days <= 0 and limit.code is not RefusalCode.QUANTITY_EXCEEDS_REMAINING
    ]
    blocking += [Refusal(limit.code, line.line_no, 0) for limit in exhausted]
    max_days = 0 if blocking else min(limit.days for limit in limits)
    return Deliverable(line.line_no, max_days, tuple(dict.fromkeys(blocking)), tuple(limits))


def _controlled_limits(
    prescription: Prescription,
    line: PrescriptionLine,
    history: LineHistory,
    today: date,
    covered: Sequence[Period],
) -> list[Limit]:
    """R.5132-30 (28 days or the drug's own limit, fractions) and R.5132-33 (3-day rule,
    chevauchement) as caps on today's delivery."""
    limit = controlled.max_duration_days(line)
    limits = [Limit(RefusalCode.CONTROLLED_DURATION_EXCEEDED, limit)]
    fraction = controlled.fraction_days(line)
    if fraction is not None:
        limits.append(Limit(RefusalCode.FRACTION_EXCEEDED, fraction))
    reference = history.last_period.end if history.last_period else prescription.prescribed_on
    reduction = controlled.presentation_reduction(reference, today)
    if prescription.surgery_window is not None and history.last_period is None:
        in_window = controlled.surgery_reduction(prescription.surgery_window, today)
        reduction = in_window if in_window is not None else reduction
    if reduction:
        # Presented late: only what is left to run of the treatment or of the fraction.
        remaining = line.treatment_days - history.days_dispensed
        base = min(remaining, limit, fraction if fraction is not None else limit)
        limits.append(Limit(RefusalCode.PRESENTED_LATE_REDUCED, max(base - reduction, 0)))
    free = None if line.overlap_mention else controlled.days_before_overlap(today, covered)
    if free is not None:
        limits.append(Limit(RefusalCode.OVERLAP, free))
    return limits


def exceptional_refusals(
    prescription: Prescription,
    line: PrescriptionLine,
    request: LineRequest,
    history: LineHistory,
    today: date,
) -> list[Refusal]:
    """Dispensation supplémentaire exceptionnelle of an expired renewable prescription."""
    refuse = [Refusal(RefusalCode.EXCEPTIONAL_NOT_ALLOWED, line.line_no)]
    product = line.product
    if product.regulatory_list.is_controlled or product.limited_duration_psychotropic:
        return refuse
    expiry = prescription.expiry(line)
    chronic = expiry >= add_months(prescription.prescribed_on, 3)
    ended = today >= expiry or history.days_dispensed >= line.treatment_days
    if not (chronic and line.renewable() and ended):
        return refuse
    if history.exceptional_days == 0 and today > add_months(expiry, 1):
        return refuse
    if request.days > EXCEPTIONAL_DELIVERY_DAYS:
        return refuse
    if history.exceptional_days + request.days > EXCEPTIONAL_TOTAL_DAYS:
        return refuse
    return []


def _kind_refusals(line: PrescriptionLine, request: LineRequest) -> list[Refusal]:
    if request.kind is InterventionKind.SUBSTITUTED:
        if request.delivered_product is None or request.substitution is None:
            return [Refusal(RefusalCode.SUBSTITUTION_RECORD_INCOMPLETE, line.line_no)]
        return substitution_refusals(line, request.delivered_product, request.substitution)
    agreed = request.prescriber_agreement_on is not None and bool(request.modification_reason)
    if request.kind is InterventionKind.MODIFIED and not request.exceptional and not agreed:
        return [Refusal(RefusalCode.MODIFICATION_NEEDS_AGREEMENT, line.line_no)]
    if request.mte_ph:
        return mte_ph_refusals(line)
    return []


def _unit_dispensing_refusals(line: PrescriptionLine, request: LineRequest) -> list[Refusal]:
    if not request.unit_dispensing:
        return []
    product = request.delivered_product or line.product
    if not product.unit_dispensing_allowed:
        return [Refusal(RefusalCode.UNIT_DISPENSING_NOT_ALLOWED, line.line_no)]
    if len(set(request.lots)) != 1:
        return [Refusal(RefusalCode.UNIT_DISPENSING_MIXED_LOTS, line.line_no)]
    return []


def _apply_override(
    refusals: list[Refusal], override: Override | None
) -> tuple[list[Refusal], tuple[Override, ...]]:
    if override is None:
        return refusals, ()
    kept = [r for r in refusals if not (r.overridable and r.code is override.code)]
    used = (override,) if len(kept) < len(refusals) else ()
    return kept, used


def _counted(
    prescription: Prescription, line: PrescriptionLine, request: LineRequest
) -> PrescriptionLine:
    """The line whose units per day count the units handed over: the pharmacist's figure where
    the dosage defines none, else the prescribed one. A line counted in boxes (pack size unknown,
    ``unit:<n>`` = ``box``) keeps its boxes: a figure in tablets would not fit it."""
    undefined = line.posology is not None and line.posology.units_per_day is None
    in_boxes = prescription.extra.get(f"unit:{line.line_no}") == "box"
    given = request.units_per_day
    if undefined and not in_boxes and given is not None and given > 0:
        return replace(line, units_per_day=given)
    return line


def evaluate_line(
    prescription: Prescription,
    request: LineRequest,
    history: LineHistory,
    today: date,
    covered: Sequence[Period] = (),
) -> LineDecision:
    """Decide one intervention. ``covered``: periods already covered for the same patient and
    substance by other prescriptions (controlled-drug overlap rule)."""
    line = prescription.line(request.line_no)
    if request.kind is InterventionKind.NOT_DISPENSED:
        refusals = (
            []
            if (request.not_dispensed_reason or "").strip()
            else [Refusal(RefusalCode.NOT_DISPENSED_NEEDS_REASON, line.line_no)]
        )
        return LineDecision(line.line_no, request.kind, 0, 0, tuple(refusals))
    refusals = _kind_refusals(line, request) + _unit_dispensing_refusals(line, request)
    if request.exceptional:
        if request.kind is not InterventionKind.MODIFIED:
            refusals.append(Refusal(RefusalCode.EXCEPTIONAL_NOT_ALLOWED, line.line_no))
        refusals += exceptional_refusals(prescription, line, request, history, today)
    else:
        allowance = deliverable(prescription, line, history, today, covered, request.pack)
        refusals += allowance.refusals_for(request.days)
    refusals, overridden = _apply_override(refusals, request.override)
    remaining_after = line.treatment_days - history.days_dispensed - request.days
    warnings = (
        ("mention_non_substituable_non_justifiee",) if unjustified_non_substitution(line) else ()
    )
    mentions = (MTE_PH_MENTION,) if request.mte_ph else ()
    return LineDecision(
        line_no=line.line_no,
        kind=request.kind,
        days=request.days,
        units=units_for(_counted(prescription, line, request), request.days),
        refusals=tuple(dict.fromkeys(refusals)),
        overridden=overridden,
        completeness=completeness(history, remaining_after),
        period=Period.from_days(today, request.days) if request.days > 0 else None,
        warnings=warnings,
        mentions=mentions,
    )


def evaluate_execution(
    prescription: Prescription,
    requests: Iterable[LineRequest],
    histories: Mapping[int, LineHistory],
    today: date,
    covered: Mapping[int, Sequence[Period]] | None = None,
) -> ExecutionDecision:
    """Every line must receive exactly one intervention before the execution is valid."""
    requests = list(requests)
    known = {line.line_no for line in prescription.lines}
    refusals: list[Refusal] = []
    seen: set[int] = set()
    decisions: list[LineDecision] = []
    for request in requests:
        if request.line_no not in known:
            refusals.append(Refusal(RefusalCode.UNKNOWN_LINE, request.line_no))
            continue
        if request.line_no in seen:
            refusals.append(Refusal(RefusalCode.DUPLICATE_INTERVENTION, request.line_no))
            continue
        seen.add(request.line_no)
        history = histories.get(request.line_no, LineHistory())
        periods = (covered or {}).get(request.line_no, ())
        decisions.append(evaluate_line(prescription, request, history, today, periods))
    for missing in sorted(known - seen):
        refusals.append(Refusal(RefusalCode.MISSING_INTERVENTION, missing))
    return ExecutionDecision(tuple(decisions), tuple(refusals))
