"""Dispensing rules at their date and quantity boundaries (domain.md §9 items 6, 9–16)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from lgo.domain.controlled import Period
from lgo.domain.dispensing import (
    Completeness,
    InterventionKind,
    LineHistory,
    LineRequest,
    evaluate_execution,
    evaluate_line,
)
from lgo.domain.prescription import NonSubstitutionReason
from lgo.domain.products import Pack, PackForm, RegulatoryList
from lgo.domain.refusals import Override, RefusalCode
from lgo.domain.substitution import MTE_PH_MENTION, SubstitutionRecord
from tests.unit.domain.dispensing_factories import (
    PACK_28,
    PACK_30,
    PACK_90,
    cip13,
    line,
    prescription,
    product,
)

D = date(2026, 2, 1)
U = InterventionKind.UNCHANGED


def codes(decision: object) -> set[RefusalCode]:
    return {r.code for r in decision.refusals}  # type: ignore[attr-defined]


def deliver(
    rx: object, today: date, days: int = 30, history: LineHistory | None = None, **kwargs: object
) -> object:
    request = LineRequest(line_no=1, kind=kwargs.pop("kind", U), days=days, **kwargs)  # type: ignore[arg-type]
    return evaluate_line(rx, request, history or LineHistory(), today)  # type: ignore[arg-type]


# --- item 9: lists I/II first delivery within 3 months, 12-month limit, renewals -------------


@pytest.mark.parametrize("regulatory_list", [RegulatoryList.LIST_I, RegulatoryList.LIST_II])
def test_first_delivery_allowed_on_the_three_month_day_and_refused_the_day_after(
    regulatory_list: RegulatoryList,
) -> None:
    rx = prescription(line(product(regulatory_list)))
    assert codes(deliver(rx, date(2026, 5, 1))) == set()
    assert codes(deliver(rx, date(2026, 5, 2))) == {RefusalCode.FIRST_DELIVERY_TOO_LATE}


def test_first_delivery_rule_does_not_apply_to_unlisted_medicines() -> None:
    rx = prescription(line(product(RegulatoryList.NONE)))
    assert codes(deliver(rx, date(2026, 6, 1))) == set()


def test_late_first_delivery_is_never_overridable() -> None:
    # R.5132-22 has no exception: the patient needs a new prescription.
    rx = prescription(line(product(RegulatoryList.LIST_I)))
    refusal = deliver(rx, date(2026, 5, 2)).refusals[0]  # type: ignore[attr-defined]
    assert (refusal.code, refusal.overridable) == (RefusalCode.FIRST_DELIVERY_TOO_LATE, False)
    with pytest.raises(ValueError):
        Override(RefusalCode.FIRST_DELIVERY_TOO_LATE, "Continuité", "10101010109")


def test_per_delivery_cap_override_needs_reason_and_identity_and_is_recorded() -> None:
    rx = prescription(line(duration_days=90))
    override = Override(
        RefusalCode.PER_DELIVERY_CAP_EXCEEDED, "Accord caisse, séjour", "10101010109"
    )
    decision = deliver(rx, D, days=60, override=override)
    assert codes(decision) == set()
    assert decision.overridden == (override,)  # type: ignore[attr-defined]
    with pytest.raises(ValueError):
        Override(RefusalCode.PER_DELIVERY_CAP_EXCEEDED, "  ", "10101010109")
    with pytest.raises(ValueError):
        Override(RefusalCode.OVERLAP, "raison", "10101010109")


def test_renewal_allowed_on_the_twelve_month_day_and_refused_after() -> None:
    rx = prescription(line(product(RegulatoryList.LIST_II), renewals=12))
    history = LineHistory(days_dispensed=300, deliveries=10)
    assert codes(deliver(rx, date(2027, 2, 1), history=history)) == set()
    assert codes(deliver(rx, date(2027, 2, 2), history=history)) == {
        RefusalCode.TREATMENT_LIMIT_PASSED
    }


def test_list_i_renewal_needs_stated_renewals_or_duration() -> None:
    history = LineHistory(days_dispensed=30, deliveries=1)
    unstated = prescription(
        line(product(RegulatoryList.LIST_I), duration_days=60, duration_stated=False)
    )
    assert RefusalCode.NOT_RENEWABLE in codes(deliver(unstated, D + timedelta(30), history=history))
    stated = prescription(line(product(RegulatoryList.LIST_I), renewals=1, duration_stated=False))
    assert codes(deliver(stated, D + timedelta(30), history=history)) == set()


def test_list_ii_renewal_refused_when_expressly_forbidden() -> None:
    history = LineHistory(days_dispensed=30, deliveries=1)
    forbidden = prescription(
        line(product(RegulatoryList.LIST_II), renewals=1, renewal_forbidden=True)
    )
    assert codes(deliver(forbidden, D + timedelta(30), history=history)) == {
        RefusalCode.NOT_RENEWABLE
    }


def test_nothing_left_and_quantity_beyond_remaining_are_refused() -> None:
    rx = prescription(line(renewals=1))
    assert codes(deliver(rx, D, history=LineHistory(days_dispensed=60, deliveries=2))) == {
        RefusalCode.NOTHING_LEFT
    }
    assert codes(deliver(rx, D, days=30, history=LineHistory(days_dispensed=40, deliveries=1))) == {
        RefusalCode.QUANTITY_EXCEEDS_REMAINING
    }


# --- item 10: per-delivery caps ------------------------------------------------------------


@pytest.mark.parametrize(
    ("pack", "contraceptive", "cap"),
    [(PACK_30, False, 30), (PACK_28, False, 28), (PACK_90, False, 90), (PACK_28, True, 84)],
)
def test_per_delivery_cap_boundaries(pack: Pack, contraceptive: bool, cap: int) -> None:
    rx = prescription(line(product(contraceptive=contraceptive), duration_days=30, renewals=11))
    assert codes(deliver(rx, D, days=cap, pack=pack)) == set()
    assert codes(deliver(rx, D, days=cap + 1, pack=pack)) == {RefusalCode.PER_DELIVERY_CAP_EXCEEDED}


# --- item 12: stupéfiants 3-day presentation rule -------------------------------------------


def stup(**kwargs: object) -> object:
    return prescription(
        line(product(RegulatoryList.STUPEFIANT, molecule="morphine"), duration_days=28, **kwargs)
    )


def test_three_day_rule_full_until_d_plus_3_inclusive() -> None:
    rx = stup()
    assert codes(deliver(rx, date(2026, 2, 4), days=28)) == set()
    assert codes(deliver(rx, date(2026, 2, 5), days=28)) == {RefusalCode.PRESENTED_LATE_REDUCED}


@pytest.mark.parametrize(("day", "allowed"), [(5, 24), (6, 23), (10, 19)])
def test_three_day_rule_reduces_by_the_days_elapsed(day: int, allowed: int) -> None:
    rx = stup()
    assert codes(deliver(rx, date(2026, 2, day), days=allowed)) == set()
    assert codes(deliver(rx, date(2026, 2, day), days=allowed + 1)) == {
        RefusalCode.PRESENTED_LATE_REDUCED
    }


def test_three_day_rule_runs_from_the_end_of_the_previous_fraction() -> None:
    rx = stup(fraction_days=7)
    history = LineHistory(days_dispensed=7, deliveries=1, last_period=Period.from_days(D, 7))
    # previous fraction covers 1–7 Feb: full next fraction until 10 Feb inclusive
    assert codes(deliver(rx, date(2026, 2, 10), days=7, history=history)) == set()
    late = deliver(rx, date(2026, 2, 11), days=7, history=history)
    assert codes(late) == {RefusalCode.PRESENTED_LATE_REDUCED}
    assert codes(deliver(rx, date(2026, 2, 11), days=3, history=history)) == set()


# --- item 13: 28 days / own limit, fractions, chevauchement --------------------------------


def test_controlled_duration_limit_28_days_or_own() -> None:
    assert codes(deliver(stup(), D, days=28)) == set()
    too_long = prescription(line(product(RegulatoryList.STUPEFIANT), duration_days=29))
    assert RefusalCode.CONTROLLED_DURATION_EXCEEDED in codes(deliver(too_long, D, days=29))
    own = prescription(
        line(product(RegulatoryList.ASSIMILE, max_duration_days=14), duration_days=14)
    )
    assert codes(deliver(own, D, days=14)) == set()
    own_long = prescription(
        line(product(RegulatoryList.ASSIMILE, max_duration_days=14), duration_days=28)
    )
    assert RefusalCode.CONTROLLED_DURATION_EXCEEDED in codes(deliver(own_long, D, days=14))


def test_fraction_enforced_unless_single_delivery_mention() -> None:
    fractioned = prescription(
        line(product(RegulatoryList.STUPEFIANT, fraction_days=7), duration_days=28)
    )
    assert codes(deliver(fractioned, D, days=7)) == set()
    assert codes(deliver(fractioned, D, days=8)) == {RefusalCode.FRACTION_EXCEEDED}
    once = prescription(
        line(
            product(RegulatoryList.STUPEFIANT, fraction_days=7),
            duration_days=28,
            single_delivery=True,
        )
    )
    assert codes(deliver(once, D, days=28)) == set()


def test_overlap_with_covered_period_blocked_unless_express_mention() -> None:
    covered = [Period(date(2026, 1, 5), date(2026, 2, 1))]
    request = LineRequest(line_no=1, kind=U, days=28)
    overlapping = evaluate_line(stup(), request, LineHistory(), D, covered)
    assert codes(overlapping) == {RefusalCode.OVERLAP}
    adjacent = evaluate_line(stup(), request, LineHistory(), D + timedelta(1), covered)
    assert codes(adjacent) == set()
    mentioned = evaluate_line(stup(overlap_mention=True), request, LineHistory(), D, covered)
    assert codes(mentioned) == set()


# --- item 14: substitution ---------------------------------------------------------------

GENERIC = product(code="60000002", name="FICTIVOL GENERIQUE 10 mg cp")
RECORD = SubstitutionRecord(cip13("2000030"), "FICTIVOL GENERIQUE 10 mg", "comprimé", 30)


def substitute(rx: object, **kwargs: object) -> object:
    values: dict[str, object] = {"delivered_product": GENERIC, "substitution": RECORD}
    values.update(kwargs)
    return deliver(rx, D, kind=InterventionKind.SUBSTITUTED, **values)


@pytest.mark.parametrize("reason", list(NonSubstitutionReason))
def test_justified_non_substitutable_line_cannot_be_substituted(
    reason: NonSubstitutionReason,
) -> None:
    rx = prescription(line(substitutable=False, non_substitution_reason=reason))
    assert codes(substitute(rx)) == {RefusalCode.NON_SUBSTITUTABLE}


def test_unjustified_mention_does_not_bind_but_warns() -> None:
    rx = prescription(line(substitutable=False))
    decision = substitute(rx)
    assert codes(decision) == set()
    assert decision.warnings == ("mention_non_substituable_non_justifiee",)  # type: ignore[attr-defined]


def test_substitution_needs_same_group_and_a_complete_record() -> None:
    rx = prescription(line())
    other = product(code="60000003", generic_group="G-OTHER")
    assert codes(substitute(rx, delivered_product=other)) == {RefusalCode.NOT_SAME_GENERIC_GROUP}
    blank = SubstitutionRecord(cip13("2000030"), "FICTIVOL", "", 30)
    assert codes(substitute(rx, substitution=blank)) == {RefusalCode.SUBSTITUTION_RECORD_INCOMPLETE}
    assert codes(substitute(rx, substitution=None)) == {RefusalCode.SUBSTITUTION_RECORD_INCOMPLETE}
    assert codes(substitute(rx)) == set()


def test_mte_ph_only_for_narrow_margin_molecules() -> None:
    mte = prescription(line(product(molecule="Lévothyroxine sodique")))
    decision = deliver(mte, D, mte_ph=True)
    assert codes(decision) == set()
    assert decision.mentions == (MTE_PH_MENTION,)  # type: ignore[attr-defined]
    assert codes(deliver(prescription(line()), D, mte_ph=True)) == {RefusalCode.MTE_PH_NOT_MTE}


# --- item 15: exceptional dispensation -------------------------------------------------


def chronic(**kwargs: object) -> object:
    # 1 month renewable twice = 3 months: 1 Feb → expires 2 May 2026 (90 days)
    return prescription(line(product(RegulatoryList.LIST_I, **kwargs), renewals=2))


def exceptional(rx: object, today: date, days: int = 30, **kwargs: object) -> object:
    history = kwargs.pop("history", LineHistory(days_dispensed=90, deliveries=3))
    return deliver(
        rx,
        today,
        days=days,
        kind=InterventionKind.MODIFIED,
        exceptional=True,
        history=history,
        **kwargs,
    )


def test_exceptional_allowed_within_one_month_of_expiry_only() -> None:
    rx = chronic()
    assert codes(exceptional(rx, date(2026, 6, 2))) == set()
    assert codes(exceptional(rx, date(2026, 6, 3))) == {RefusalCode.EXCEPTIONAL_NOT_ALLOWED}


def test_exceptional_one_month_at_a_time_three_months_total() -> None:
    rx = chronic()
    assert codes(exceptional(rx, date(2026, 5, 10), days=31)) == {
        RefusalCode.EXCEPTIONAL_NOT_ALLOWED
    }
    used = LineHistory(days_dispensed=150, deliveries=5, exceptional_days=60)
    assert codes(exceptional(rx, date(2026, 7, 1), days=30, history=used)) == set()
    full = LineHistory(days_dispensed=180, deliveries=6, exceptional_days=90)
    assert codes(exceptional(rx, date(2026, 7, 30), days=1, history=full)) == {
        RefusalCode.EXCEPTIONAL_NOT_ALLOWED
    }


def test_exceptional_refused_for_short_or_controlled_or_live_prescriptions() -> None:
    short = prescription(line(product(RegulatoryList.LIST_I), renewals=1))  # 2 months
    assert codes(exceptional(short, date(2026, 4, 5), history=LineHistory(60, 2))) == {
        RefusalCode.EXCEPTIONAL_NOT_ALLOWED
    }
    stup_rx = prescription(line(product(RegulatoryList.STUPEFIANT), duration_days=28, renewals=3))
    assert RefusalCode.EXCEPTIONAL_NOT_ALLOWED in codes(
        exceptional(stup_rx, date(2026, 5, 10), history=LineHistory(112, 4))
    )
    psycho = chronic(limited_duration_psychotropic=True)
    assert codes(exceptional(psycho, date(2026, 5, 10))) == {RefusalCode.EXCEPTIONAL_NOT_ALLOWED}
    live = chronic()
    assert codes(exceptional(live, date(2026, 3, 1), history=LineHistory(30, 1))) == {
        RefusalCode.EXCEPTIONAL_NOT_ALLOWED
    }


# --- item 16: unit dispensing ------------------------------------------------------------


def antibiotic(form: PackForm = PackForm.BLISTER, atc: str = "J01CA04") -> object:
    pack = Pack(cip13("3000012"), units=12, price_cents=300, form=form)
    return prescription(
        line(product(atc=atc, packs=(pack,)), duration_days=6, units_per_day=Decimal(2))
    )


def test_unit_dispensing_only_for_j01_in_blister_or_sachet_dose_with_one_lot() -> None:
    decision = deliver(antibiotic(), D, days=6, unit_dispensing=True, lots=("L123",))
    assert codes(decision) == set()
    assert decision.units == 12  # type: ignore[attr-defined]
    assert (
        codes(
            deliver(antibiotic(PackForm.SACHET_DOSE), D, days=6, unit_dispensing=True, lots=("L1",))
        )
        == set()
    )
    assert codes(
        deliver(antibiotic(PackForm.BOTTLE), D, days=6, unit_dispensing=True, lots=("L1",))
    ) == {RefusalCode.UNIT_DISPENSING_NOT_ALLOWED}
    assert codes(
        deliver(antibiotic(atc="N02BE01"), D, days=6, unit_dispensing=True, lots=("L1",))
    ) == {RefusalCode.UNIT_DISPENSING_NOT_ALLOWED}
    assert codes(deliver(antibiotic(), D, days=6, unit_dispensing=True, lots=("L1", "L2"))) == {
        RefusalCode.UNIT_DISPENSING_MIXED_LOTS
    }


# --- item 6: one intervention per line -----------------------------------------------------


def test_every_line_needs_exactly_one_intervention() -> None:
    rx = prescription(line(line_no=1), line(line_no=2))
    ok = evaluate_execution(
        rx,
        [
            LineRequest(1, U, 30),
            LineRequest(2, InterventionKind.NOT_DISPENSED, not_dispensed_reason="Refus du patient"),
        ],
        {},
        D,
    )
    assert ok.allowed
    missing = evaluate_execution(rx, [LineRequest(1, U, 30)], {}, D)
    assert [(r.code, r.line_no) for r in missing.refusals] == [
        (RefusalCode.MISSING_INTERVENTION, 2)
    ]
    doubled = evaluate_execution(rx, [LineRequest(1, U, 30), LineRequest(1, U, 30)], {}, D)
    assert RefusalCode.DUPLICATE_INTERVENTION in {r.code for r in doubled.refusals}
    unknown = evaluate_execution(rx, [LineRequest(9, U, 30)], {}, D)
    assert RefusalCode.UNKNOWN_LINE in {r.code for r in unknown.refusals}
    assert not unknown.allowed


def test_modification_needs_prescriber_agreement_and_not_dispensed_needs_reason() -> None:
    rx = prescription(line())
    assert codes(
        deliver(rx, D, kind=InterventionKind.MODIFIED, modification_reason="posologie")
    ) == {RefusalCode.MODIFICATION_NEEDS_AGREEMENT}
    agreed = deliver(
        rx,
        D,
        kind=InterventionKind.MODIFIED,
        modification_reason="posologie",
        prescriber_agreement_on=D,
    )
    assert codes(agreed) == set()
    assert codes(deliver(rx, D, days=0, kind=InterventionKind.NOT_DISPENSED)) == {
        RefusalCode.NOT_DISPENSED_NEEDS_REASON
    }


def test_completeness_codes() -> None:
    rx = prescription(line(renewals=1))
    assert deliver(rx, D, days=30).completeness is Completeness.FIRST_PARTIAL  # type: ignore[attr-defined]
    single = prescription(line())
    assert deliver(single, D, days=30).completeness is Completeness.FIRST_COMPLETE  # type: ignore[attr-defined]
    after = LineHistory(days_dispensed=30, deliveries=1)
    assert deliver(rx, D, days=30, history=after).completeness is Completeness.REFILL_COMPLETE  # type: ignore[attr-defined]
    assert deliver(rx, D, days=10, history=after).completeness is Completeness.REFILL_PARTIAL  # type: ignore[attr-defined]
