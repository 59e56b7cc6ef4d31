"""A prescription line as the counter sees it: the proposal follows what may be delivered today,
no figure is shown where the dosage gives none, a typed paper line shows the pharmacist's own."""

from __future__ import annotations

from dataclasses import asdict, replace
from datetime import date
from decimal import Decimal

from lgo.domain.dispensing import LineHistory
from lgo.domain.posology import AS_NEEDED, Posology
from lgo.domain.prescription import PrescriptionSource
from lgo.domain.products import Pack, RegulatoryList
from lgo.services.line_view import line_view
from tests.unit.domain.dispensing_factories import cip13, line, prescription, product

D = date(2026, 2, 1)
PACK_14 = Pack(cip13("3000014"), units=14, price_cents=900)
READ = Posology(units_per_day=Decimal(2), duration_days=28, reason=None)


def morphine_rx(**kwargs: object) -> object:
    drug = product(RegulatoryList.STUPEFIANT, molecule="morphine", packs=(PACK_14,))
    return prescription(line(drug, units_per_day=Decimal(2), duration_days=28, **kwargs))


def test_proposal_follows_the_days_left_to_run_on_a_late_stupefiant() -> None:
    rx = morphine_rx(posology=READ, posology_text="une gélule matin et soir")
    view = asdict(line_view(rx, rx.lines[0], LineHistory(), date(2026, 2, 11)))  # type: ignore[attr-defined]
    assert view["posology_text"] == "une gélule matin et soir"
    assert view["deliverable"]["max_days"] == 18  # 28 − 10 days elapsed
    assert view["proposal"]["days"] == 18
    assert view["proposal"]["packs"] == [{"cip13": PACK_14.cip13, "units": 14, "count": 3}]  # 36


def test_blocked_line_has_no_proposal_and_says_why() -> None:
    rx = morphine_rx(posology=READ)
    view = asdict(line_view(rx, rx.lines[0], LineHistory(), date(2026, 3, 1)))  # type: ignore[attr-defined]
    assert view["deliverable"]["allowed"] is False
    assert [r["code"] for r in view["deliverable"]["reasons"]] == ["presented_late_reduced"]
    assert view["warnings"] == ["presented_late_reduced"]
    assert view["proposal"] is None


def test_no_daily_figure_means_no_proposal_and_no_units_per_day() -> None:
    as_needed = Posology(
        as_needed=True, max_units_per_day=Decimal(4), duration_days=7, reason=AS_NEEDED
    )
    rx = morphine_rx(posology=as_needed)
    view = asdict(line_view(rx, rx.lines[0], LineHistory(), D))  # type: ignore[attr-defined]
    assert view["units_per_day"] is None  # not the box-derived 2 of the domain line
    assert view["posology"] == {
        "units_per_day": None,
        "duration_days": 7,
        "as_needed": True,
        "max_units_per_day": "4",
        "needs_pharmacist_input": True,
        "reason": AS_NEEDED,
    }
    assert view["proposal"] is None
    assert view["deliverable"]["allowed"] is True


def test_typed_paper_line_shows_the_pharmacists_figures() -> None:
    typed = prescription(line(units_per_day=Decimal("1.5"), duration_days=10))
    rx = replace(typed, source=PrescriptionSource.PAPER)
    view = asdict(line_view(rx, rx.lines[0], LineHistory(), D))
    assert (
        view["posology"]["units_per_day"],
        view["posology"]["duration_days"],
        view["posology"]["needs_pharmacist_input"],
    ) == ("1.5", 10, False)
    assert view["proposal"]["days"] == 10
