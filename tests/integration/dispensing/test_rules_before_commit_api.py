"""Posology and the rules before the commit (issue #17 items 3 and 4), through the daemon's API with
the national simulator on 127.0.0.1: the prescription view returns the prescriber's text verbatim,
the figures its structured dosage defines (none where it defines none), what may be delivered today
and why; the proposal follows it; and the commit refuses a line with the same rule and says what
may be delivered."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hwsim.national.app import reset_state
from lgo.bootstrap.dispensing import part_of
from lgo.core.settings import Settings, load_settings
from lgo.domain.products import Pack, Product, RegulatoryList
from lgo.services.local_time import pharmacy_today
from tests.fixtures.dispensing import make_patient_for, open_pharmacist_session
from tests.fixtures.national import NationalSim

pytestmark = pytest.mark.integration
AMOX = "3400999999014"
MORPHINE = "3400999999069"
LISTED_RX = "01S2TBPZ2JCNZZYGHZ"  # amoxicilline, list I, "1 comprimé matin et soir pendant 6 jours"
NARCOTIC_RX = "EPTEST0000000000000046"  # morphine 28 days (stupéfiant) + tramadol as needed
MULTI_RX = "EPTEST0000000000000043"  # levothyroxine, atorvastatine, cetirizine "si besoin"


@pytest.fixture
def settings(tmp_path: Path, national_sim: NationalSim) -> Settings:
    return load_settings(
        state_dir=tmp_path / "state",
        hardware={"pcsc_enabled": False},
        national={"base_url": national_sim.base_url},
    )


@pytest.fixture
def counter(api: Any, national_sim: NationalSim) -> Any:
    catalog = part_of(api.container).catalog
    catalog.add(
        Product(
            AMOX,
            "AMOXICILLINE TEST 1 g cp B/6",
            RegulatoryList.LIST_I,
            molecule="amoxicilline",
            packs=(Pack(AMOX, 6, 250),),
        )
    )
    catalog.add(
        Product(
            MORPHINE,
            "MORPHINE TEST LP 10 mg gélule B/14",
            RegulatoryList.STUPEFIANT,
            molecule="morphine",
            packs=(Pack(MORPHINE, 14, 900),),
        )
    )
    open_pharmacist_session(api.container)
    yield api
    national_sim.reset()


def written_days_ago(national_sim: NationalSim, days: int) -> None:
    """Move the simulator's clock back so the fixtures (dated from it) are ``days`` older."""
    national_sim.state.clock.freeze(datetime.now(UTC) - timedelta(days=days))
    reset_state(national_sim.state)


def view(counter: Any, prescription_id: str, patient: str | None = None) -> dict[str, Any]:
    params = {"patient_id": patient} if patient else {}
    response = counter.client.get(f"/v1/prescriptions/{prescription_id}", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def commit(
    counter: Any, key: str, patient: str, prescription_id: str, lines: list[dict[str, Any]]
) -> Any:
    body = {
        "patient_id": patient,
        "prescription_id": prescription_id,
        "lines": lines,
        "prescriber_acknowledged": True,
        "patient_address": "1 rue Fictive, 75000 Paris",
        "bearer": {"is_patient": True},
    }  # legal record (R.5132-10, R.5132-35)
    return counter.client.post("/v1/dispensations", json=body, headers={"Idempotency-Key": key})


def test_view_shows_the_text_verbatim_the_structured_figures_and_what_is_deliverable(
    counter: Any,
) -> None:
    line = view(counter, LISTED_RX)["lines"][0]
    assert line["posology_text"] == "1 comprimé matin et soir pendant 6 jours"
    assert line["posology"] == {
        "units_per_day": "2",
        "duration_days": 6,
        "as_needed": False,
        "max_units_per_day": None,
        "needs_pharmacist_input": False,
        "reason": None,
    }
    assert line["units_per_day"] == "2"
    deliverable = line["deliverable"]
    assert (deliverable["allowed"], deliverable["max_days"], deliverable["overridable"]) == (
        True,
        6,
        False,
    )
    assert [r["code"] for r in deliverable["reasons"]] == ["quantity_exceeds_remaining"]
    assert line["proposal"]["days"] == 6
    assert line["proposal"]["packs"] == [{"cip13": AMOX, "units": 6, "count": 2}]


def test_no_figure_is_invented_where_the_dosage_defines_none(counter: Any) -> None:
    levothyroxine, atorvastatine, cetirizine = view(counter, MULTI_RX)["lines"]
    assert levothyroxine["posology_text"] == "1 comprimé le matin à jeun"
    # no bounds in the dosage: the line's stated 30 days complete it
    assert (
        levothyroxine["posology"]["units_per_day"],
        levothyroxine["posology"]["duration_days"],
        levothyroxine["posology"]["needs_pharmacist_input"],
    ) == ("1", 30, False)
    assert cetirizine["posology_text"] == "1 comprimé le soir si besoin"
    assert cetirizine["posology"]["as_needed"] is True
    assert cetirizine["posology"]["units_per_day"] is None
    assert cetirizine["units_per_day"] is None  # not 1/15 of a box any more
    assert cetirizine["posology"]["needs_pharmacist_input"] is True
    assert "si besoin" in cetirizine["posology"]["reason"].lower()
    assert cetirizine["proposal"] is None  # the pharmacist gives the figure
    assert cetirizine["deliverable"]["allowed"] is True
    assert atorvastatine["posology"]["needs_pharmacist_input"] is False


def test_late_stupefiant_is_proposed_and_committed_only_for_the_duration_left(
    counter: Any, national_sim: NationalSim
) -> None:
    written_days_ago(national_sim, 9)  # authored the day before: now 10 days old
    patient = make_patient_for(counter.container.db, NARCOTIC_RX)
    rx = view(counter, NARCOTIC_RX, patient)
    elapsed = (pharmacy_today() - datetime.fromisoformat(rx["prescribed_on"]).date()).days
    assert elapsed > 3
    left = 28 - elapsed
    morphine, tramadol = rx["lines"]
    assert morphine["posology_text"] == "une gélule matin et soir (deux gélules par jour)"
    assert (morphine["posology"]["units_per_day"], morphine["posology"]["duration_days"]) == (
        "2",
        28,
    )
    deliverable = morphine["deliverable"]
    assert (deliverable["allowed"], deliverable["max_days"]) == (True, left)
    assert [(r["code"], r["article"]) for r in deliverable["reasons"]] == [
        ("presented_late_reduced", "R.5132-33")
    ]
    assert morphine["proposal"]["days"] == left
    assert tramadol["posology"]["as_needed"] is True
    assert tramadol["posology"]["max_units_per_day"] == "4"
    assert tramadol["proposal"] is None
    not_dispensed = {
        "line_no": 2,
        "intervention": "not_dispensed",
        "not_dispensed_reason": "Le patient en a encore",
    }
    full = commit(
        counter,
        "late-narcotic-1",
        patient,
        NARCOTIC_RX,
        [{"line_no": 1, "intervention": "unchanged", "days": 28, "cip13": MORPHINE}, not_dispensed],
    )
    assert full.status_code == 422, full.text
    refusal = full.json()["refusals"][0]
    assert (refusal["code"], refusal["max_days"], refusal["article"], refusal["overridable"]) == (
        "presented_late_reduced",
        left,
        "R.5132-33",
        False,
    )
    assert f"Délivrable aujourd'hui : {left} jours au plus." in refusal["message"]
    assert counter.client.get("/v1/dispensations", params={"patient_id": patient}).json() == []
    reduced = commit(
        counter,
        "late-narcotic-2",
        patient,
        NARCOTIC_RX,
        [
            {"line_no": 1, "intervention": "unchanged", "days": left, "cip13": MORPHINE},
            not_dispensed,
        ],
    )
    assert reduced.status_code == 201, reduced.text
    assert reduced.json()["lines"][0]["units"] == 2 * left


def test_blocked_line_has_no_proposal_and_is_refused_at_commit_with_the_same_reason(
    counter: Any, national_sim: NationalSim
) -> None:
    written_days_ago(national_sim, 100)  # list I, never delivered, more than 3 months old
    patient = make_patient_for(counter.container.db, LISTED_RX)
    line = view(counter, LISTED_RX, patient)["lines"][0]
    deliverable = line["deliverable"]
    assert (deliverable["allowed"], deliverable["max_days"], deliverable["overridable"]) == (
        False,
        0,
        False,
    )
    [reason] = deliverable["reasons"]
    assert (reason["code"], reason["article"]) == ("first_delivery_too_late", "R.5132-22")
    assert line["proposal"] is None
    assert line["posology_text"] == "1 comprimé matin et soir pendant 6 jours"
    intervention = {"line_no": 1, "intervention": "unchanged", "days": 6, "cip13": AMOX}
    refused = commit(counter, "late-list-i-1", patient, LISTED_RX, [intervention])
    assert refused.status_code == 422, refused.text
    [refusal] = refused.json()["refusals"]
    assert (refusal["code"], refusal["message"], refusal["overridable"]) == (
        reason["code"],
        reason["message"],
        False,
    )
    # no override for it in the law: the API refuses the attempt and records nothing
    overridden = commit(
        counter,
        "late-list-i-2",
        patient,
        LISTED_RX,
        [
            {
                **intervention,
                "override": {
                    "code": "first_delivery_too_late",
                    "reason": "Continuité du traitement",
                },
            }
        ],
    )
    assert overridden.status_code == 422
    assert counter.client.get("/v1/dispensations", params={"patient_id": patient}).json() == []


def test_expired_renewable_line_is_blocked_and_offers_the_exceptional_dispensation(
    counter: Any, national_sim: NationalSim
) -> None:
    # EPTEST…047: atorvastatine, 30 days × 12, written 400 days before the simulator's today;
    # moved 30 days on, the 12 months ended about 5 days ago: within the month of the exception.
    written_days_ago(national_sim, -30)
    line = view(counter, "EPTEST0000000000000047")["lines"][0]
    deliverable = line["deliverable"]
    assert (deliverable["allowed"], deliverable["max_days"], deliverable["overridable"]) == (
        False,
        0,
        False,
    )
    assert [(r["code"], r["article"]) for r in deliverable["reasons"]] == [
        ("treatment_limit_passed", "R.5132-21"),
        ("exceptional_dispensation_possible", "L.5125-23-1"),
    ]
    assert line["proposal"] is None


def test_period_already_covered_blocks_the_view_and_the_commit_alike(
    counter: Any, national_sim: NationalSim
) -> None:
    """Morphine handed over this morning on a typed paper prescription covers today: the
    e-prescription's morphine line is blocked (chevauchement) in the view and at the commit."""
    patient = make_patient_for(counter.container.db, NARCOTIC_RX)
    paper = {
        "prescribed_on": pharmacy_today().isoformat(),
        "prescriber_rpps": "10000000009",
        "prescriber_name": "TESTMEDECIN DOMINIQUE",
        "prescriber_address": "12 rue des Essais, 75010 PARIS",
        "lines": [
            {
                "designation": "MORPHINE TEST LP 10 mg",
                "cip13": MORPHINE,
                "regulatory_list": "stupefiant",
                "molecule": "morphine",
                "units_per_day": "2",
                "duration_days": 7,
            }
        ],
    }
    first = counter.client.post(
        "/v1/dispensations",
        headers={"Idempotency-Key": "paper-morphine"},
        json={
            "patient_id": patient,
            "paper": paper,
            "prescriber_acknowledged": True,
            "patient_address": "1 rue Fictive, 75000 Paris",
            "bearer": {"is_patient": True},
            "lines": [{"line_no": 1, "intervention": "unchanged", "days": 7, "cip13": MORPHINE}],
        },
    )
    assert first.status_code == 201, first.text
    without_patient = view(counter, NARCOTIC_RX)["lines"][0]["deliverable"]
    assert without_patient["allowed"] is True  # the view cannot know whose periods to count
    morphine = view(counter, NARCOTIC_RX, patient)["lines"][0]
    assert (morphine["deliverable"]["allowed"], morphine["proposal"]) == (False, None)
    [reason] = morphine["deliverable"]["reasons"]
    assert (reason["code"], reason["article"]) == ("overlap", "R.5132-33")
    refused = commit(
        counter,
        "overlap-1",
        patient,
        NARCOTIC_RX,
        [
            {"line_no": 1, "intervention": "unchanged", "days": 7, "cip13": MORPHINE},
            {"line_no": 2, "intervention": "not_dispensed", "not_dispensed_reason": "Non demandé"},
        ],
    )
    assert refused.status_code == 422, refused.text
    assert [(r["code"], r["message"]) for r in refused.json()["refusals"]] == [
        (reason["code"], reason["message"])
    ]
