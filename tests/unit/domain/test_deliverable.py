"""What may be delivered today, row by row of the table in docs/dispensing.md ("Règles appliquées
avant la délivrance"), each at its boundary: the day before, the day of, the day after. Every case
also checks that the commit (``evaluate_line``) accepts exactly ``max_days`` and refuses one more
day with the same code and a message saying what may be delivered: the view and the commit share
one rule."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from lgo.domain.controlled import Period
from lgo.domain.dispensing import (
    Deliverable,
    InterventionKind,
    LineHistory,
    LineRequest,
    deliverable,
    evaluate_line,
)
from lgo.domain.posology import Posology
from lgo.domain.prescription import Prescription
from lgo.domain.products import RegulatoryList
from lgo.domain.refusals import RefusalCode
from tests.unit.domain.dispensing_factories import line, prescription, product

D = date(2026, 2, 1)  # prescription date
C = RefusalCode


def allowance(
    rx: Prescription,
    today: date,
    history: LineHistory | None = None,
    covered: tuple[Period, ...] = (),
) -> Deliverable:
    return deliverable(rx, rx.lines[0], history or LineHistory(), today, covered)


def commit_codes(
    rx: Prescription,
    today: date,
    days: int,
    history: LineHistory | None = None,
    covered: tuple[Period, ...] = (),
) -> set[RefusalCode]:
    request = LineRequest(line_no=1, kind=InterventionKind.UNCHANGED, days=days)
    decision = evaluate_line(rx, request, history or LineHistory(), today, covered)
    return {r.code for r in decision.refusals}


def assert_commit_agrees(
    rx: Prescription,
    today: date,
    history: LineHistory | None = None,
    covered: tuple[Period, ...] = (),
) -> Deliverable:
    """The commit accepts max_days and refuses max_days + 1, saying what may be delivered."""
    found = allowance(rx, today, history, covered)
    if found.allowed:
        assert commit_codes(rx, today, found.max_days, history, covered) == set()
        request = LineRequest(line_no=1, kind=InterventionKind.UNCHANGED, days=found.max_days + 1)
        refused = evaluate_line(rx, request, history or LineHistory(), today, covered).refusals
        assert refused and all(f"{found.max_days} jour" in r.message for r in refused)
    else:
        assert commit_codes(rx, today, 1, history, covered) == {r.code for r in found.blocking}
        assert all("Rien n'est délivrable" in r.message for r in found.blocking)
    return found


def state(found: Deliverable) -> tuple[bool, int, set[RefusalCode]]:
    return found.allowed, found.max_days, {r.code for r in found.blocking}


# --- R.5132-22: first delivery of a list I/II line within 3 months ---------------------------


@pytest.mark.parametrize("listed", [RegulatoryList.LIST_I, RegulatoryList.LIST_II])
@pytest.mark.parametrize(
    ("today", "expected"),
    [
        (date(2026, 4, 30), (True, 30, set())),
        (date(2026, 5, 1), (True, 30, set())),
        (date(2026, 5, 2), (False, 0, {C.FIRST_DELIVERY_TOO_LATE})),
    ],
)
def test_first_delivery_deadline(listed: RegulatoryList, today: date, expected: object) -> None:
    rx = prescription(line(product(listed), renewals=2))
    found = assert_commit_agrees(rx, today)
    assert state(found) == expected
    assert not found.overridable  # the law gives no exception
    # a renewal is not a first delivery: the 3-month rule no longer applies
    renewal = LineHistory(days_dispensed=30, deliveries=1)
    assert allowance(rx, date(2026, 5, 2), renewal).allowed


# --- R.5132-21: no delivery beyond 12 months of treatment ------------------------------------


@pytest.mark.parametrize(
    ("today", "allowed"),
    [
        (date(2027, 1, 31), True),
        (date(2027, 2, 1), True),
        (date(2027, 2, 2), False),
    ],
)
def test_twelve_month_limit(today: date, allowed: bool) -> None:
    rx = prescription(line(product(RegulatoryList.LIST_I), renewals=12))
    history = LineHistory(days_dispensed=300, deliveries=10)
    found = assert_commit_agrees(rx, today, history)
    assert found.allowed is allowed
    if not allowed:
        assert {r.code for r in found.blocking} == {C.TREATMENT_LIMIT_PASSED}


# --- R.5132-22: renewals (list I only when stated; list II unless forbidden) ----------------


def test_renewals_left_cap_the_delivery_then_nothing_is_left() -> None:
    rx = prescription(line(product(RegulatoryList.LIST_I), renewals=2))  # 3 × 30 days
    for done, max_days in [(59, 30), (60, 30), (61, 29), (89, 1)]:
        found = assert_commit_agrees(rx, D + timedelta(days=done), LineHistory(done, 2))
        assert (found.allowed, found.max_days) == (True, max_days)
    found = assert_commit_agrees(rx, D + timedelta(days=90), LineHistory(90, 3))
    assert state(found) == (False, 0, {C.NOTHING_LEFT})


def test_list_i_without_stated_renewals_or_duration_is_delivered_once() -> None:
    rx = prescription(line(product(RegulatoryList.LIST_I), duration_days=60, duration_stated=False))
    assert allowance(rx, D).allowed
    found = assert_commit_agrees(rx, D + timedelta(days=30), LineHistory(30, 1))
    assert state(found) == (False, 0, {C.NOT_RENEWABLE})


def test_list_ii_renewable_unless_forbidden() -> None:
    allowed = prescription(line(product(RegulatoryList.LIST_II), renewals=1))
    assert allowance(allowed, D + timedelta(days=30), LineHistory(30, 1)).allowed
    forbidden = prescription(
        line(product(RegulatoryList.LIST_II), renewals=1, renewal_forbidden=True)
    )
    found = assert_commit_agrees(forbidden, D + timedelta(days=30), LineHistory(30, 1))
    assert state(found) == (False, 0, {C.NOT_RENEWABLE})


# --- R.5123-2: per-delivery quantity (the only overridable rule) -----------------------------


@pytest.mark.parametrize(("days", "refused"), [(29, False), (30, False), (31, True)])
def test_per_delivery_cap_is_thirty_days_and_overridable(days: int, refused: bool) -> None:
    rx = prescription(line(duration_days=90))
    found = allowance(rx, D)
    assert (found.allowed, found.max_days) == (True, 30)
    assert [limit.code for limit in found.binding()] == [C.PER_DELIVERY_CAP_EXCEEDED]
    request = LineRequest(line_no=1, kind=InterventionKind.UNCHANGED, days=days)
    refusals = evaluate_line(rx, request, LineHistory(), D).refusals
    assert bool(refusals) is refused
    if refused:
        assert [(r.code, r.overridable, r.max_days) for r in refusals] == [
            (C.PER_DELIVERY_CAP_EXCEEDED, True, 30)
        ]


# --- R.5132-33: stupéfiant presented after 3 days: only the duration left to run -----------


def stup(**kwargs: object) -> Prescription:
    return prescription(
        line(product(RegulatoryList.STUPEFIANT, molecule="morphine"), duration_days=28, **kwargs)
    )


@pytest.mark.parametrize(
    ("day", "max_days", "binding"),
    [
        (date(2026, 2, 3), 28, C.CONTROLLED_DURATION_EXCEEDED),  # D+2
        (date(2026, 2, 4), 28, C.CONTROLLED_DURATION_EXCEEDED),  # D+3: still full
        (date(2026, 2, 5), 24, C.PRESENTED_LATE_REDUCED),  # D+4: 4 days elapsed are lost
        (date(2026, 2, 20), 9, C.PRESENTED_LATE_REDUCED),  # D+19
    ],
)
def test_three_day_rule(day: date, max_days: int, binding: RefusalCode) -> None:
    found = assert_commit_agrees(stup(), day)
    assert (found.allowed, found.max_days) == (True, max_days)
    assert binding in {limit.code for limit in found.binding()}


@pytest.mark.parametrize(
    ("day", "allowed"),
    [
        (date(2026, 2, 28), True),
        (date(2026, 3, 1), False),
        (date(2026, 3, 2), False),
    ],
)
def test_late_stupefiant_with_nothing_left_to_run_is_blocked(day: date, allowed: bool) -> None:
    # 28 days written on 1 Feb: 28 Feb is D+27 (1 day left), 1 Mar is D+28 (none).
    found = assert_commit_agrees(stup(), day)
    assert found.allowed is allowed
    if not allowed:
        assert {r.code for r in found.blocking} == {C.PRESENTED_LATE_REDUCED}
        assert not found.overridable


def test_next_fraction_runs_from_the_end_of_the_previous_one() -> None:
    rx = stup(fraction_days=7)
    history = LineHistory(7, 1, last_period=Period.from_days(D, 7))  # 1–7 Feb covered
    for day, max_days in [(date(2026, 2, 9), 7), (date(2026, 2, 10), 7), (date(2026, 2, 11), 3)]:
        found = assert_commit_agrees(rx, day, history)
        assert (found.allowed, found.max_days) == (True, max_days)


# --- R.5132-30: 28 days (or the drug's own limit), fractions ---------------------------------


@pytest.mark.parametrize(("written", "allowed"), [(27, True), (28, True), (29, False)])
def test_stupefiant_duration_limit(written: int, allowed: bool) -> None:
    rx = prescription(line(product(RegulatoryList.STUPEFIANT), duration_days=written))
    found = assert_commit_agrees(rx, D)
    assert found.allowed is allowed
    if allowed:
        assert found.max_days == written
    else:
        assert {r.code for r in found.blocking} == {C.CONTROLLED_DURATION_EXCEEDED}


def test_fraction_caps_each_delivery_unless_single_delivery() -> None:
    fractioned = prescription(
        line(product(RegulatoryList.STUPEFIANT, fraction_days=7), duration_days=28)
    )
    assert assert_commit_agrees(fractioned, D).max_days == 7
    once = prescription(
        line(
            product(RegulatoryList.STUPEFIANT, fraction_days=7),
            duration_days=28,
            single_delivery=True,
        )
    )
    assert assert_commit_agrees(once, D).max_days == 28


# --- R.5132-33: chevauchement --------------------------------------------------------------


@pytest.mark.parametrize(
    ("covered_end", "allowed"),
    [
        (date(2026, 2, 1), False),
        (date(2026, 1, 31), True),
    ],
)
def test_covered_period_blocks_until_its_last_day(covered_end: date, allowed: bool) -> None:
    covered = (Period(date(2026, 1, 5), covered_end),)
    found = assert_commit_agrees(stup(), D, covered=covered)
    assert found.allowed is allowed
    if not allowed:
        assert {r.code for r in found.blocking} == {C.OVERLAP}
    mentioned = assert_commit_agrees(stup(overlap_mention=True), D, covered=covered)
    assert mentioned.allowed


@pytest.mark.parametrize(("starts_in", "max_days"), [(9, 9), (10, 10), (11, 11)])
def test_a_coming_covered_period_caps_today_delivery(starts_in: int, max_days: int) -> None:
    start = D + timedelta(days=starts_in)
    covered = (Period(start, start + timedelta(days=27)),)
    found = assert_commit_agrees(stup(), D, covered=covered)
    assert (found.allowed, found.max_days) == (True, max_days)
    assert [limit.code for limit in found.binding()] == [C.OVERLAP]


def test_every_blocking_rule_names_its_article() -> None:
    late = allowance(prescription(line(product(RegulatoryList.LIST_I))), date(2026, 5, 2))
    assert [(r.code, r.article) for r in late.blocking] == [
        (C.FIRST_DELIVERY_TOO_LATE, "R.5132-22")
    ]
    overlap = allowance(stup(), D, covered=(Period(D, D),))
    assert [r.article for r in overlap.blocking] == ["R.5132-33"]


# --- the pharmacist's daily figure where the dosage defines none ----------------------------


def test_pharmacist_figure_counts_units_only_where_the_dosage_gives_none() -> None:
    as_needed = Posology(as_needed=True, reason="si besoin")
    prn = prescription(line(units_per_day=Decimal(2), posology=as_needed))
    given = LineRequest(
        line_no=1, kind=InterventionKind.UNCHANGED, days=5, units_per_day=Decimal("3.5")
    )
    assert evaluate_line(prn, given, LineHistory(), D).units == 18  # 17.5 rounded up
    silent = LineRequest(line_no=1, kind=InterventionKind.UNCHANGED, days=5)
    assert evaluate_line(prn, silent, LineHistory(), D).units == 10  # the prescribed quantity
    structured = prescription(
        line(
            units_per_day=Decimal(2),
            posology=Posology(units_per_day=Decimal(2), duration_days=30, reason=None),
        )
    )
    assert evaluate_line(structured, given, LineHistory(), D).units == 10
