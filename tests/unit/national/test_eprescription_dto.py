"""E-prescription DTOs and FHIR mapping (no network)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from hwsim.national.context import SimClock, SimState
from hwsim.national.eprescription import outcome, search_bundle, setup
from lgo.domain.posology import UNREADABLE
from lgo.national.eprescription import (
    ExecutionReport,
    Intervention,
    LineExecution,
    LineStatus,
    PrescriptionState,
    execution_bundle,
    normalise_prescription_id,
    outcome_code,
    record_from_bundle,
)
from lgo.national.errors import MalformedResponse, PrescriptionUnknown
from tests.fixtures.national import DEFAULT_FIXTURES_DIR

RPPS = "10999999997"


def sim_at(now: datetime) -> SimState:
    sim = SimState(fixtures_dir=DEFAULT_FIXTURES_DIR, clock=SimClock(now))
    setup(sim)
    return sim


def bundle_for(sim: SimState, pid: str) -> dict[str, Any]:
    return search_bundle(sim.stores["eprescription"].prescriptions.get(pid), sim.clock.today())


def line(**overrides: Any) -> LineExecution:
    values: dict[str, Any] = {
        "line_id": "L-1",
        "intervention": Intervention.UNCHANGED,
        "cip13": "3400999999991",
        "quantity": 1,
        "complete": True,
    }
    values.update(overrides)
    return LineExecution(**values)


def test_every_fixture_maps_to_a_record() -> None:
    sim = sim_at(datetime(2026, 3, 1, 9, 0, tzinfo=UTC))
    for pid in sim.stores["eprescription"].prescriptions:
        record = record_from_bundle(bundle_for(sim, pid), pid)
        assert record.prescription_id == pid and record.lines
        assert all(len(item.cip13 or "") == 13 for item in record.lines)


def test_structured_dosages_are_read_and_the_text_kept_verbatim() -> None:
    sim = sim_at(datetime(2026, 3, 1, 9, 0, tzinfo=UTC))
    pid = "EPTEST0000000000000046"
    morphine, tramadol = record_from_bundle(bundle_for(sim, pid), pid).lines
    assert morphine.dosage_text == "une gélule matin et soir (deux gélules par jour)"
    assert morphine.posology is not None
    assert (morphine.posology.units_per_day, morphine.posology.duration_days) == (2, 28)
    assert tramadol.posology is not None and tramadol.posology.as_needed
    assert (tramadol.posology.units_per_day, tramadol.posology.max_units_per_day) == (None, 4)
    text_only = record_from_bundle(
        bundle_for(sim, "EPTEST0000000000000045"), "EPTEST0000000000000045"
    ).lines[1]
    assert (text_only.dosage_text, text_only.posology) == ("selon le poids, si fièvre", None)


def test_an_unreadable_structured_dosage_keeps_the_line_without_a_figure() -> None:
    sim = sim_at(datetime(2026, 3, 1, 9, 0, tzinfo=UTC))
    pid = "EPTEST0000000000000042"
    bundle = bundle_for(sim, pid)
    request = bundle["entry"][0]["resource"]
    request["dosageInstruction"][0]["timing"]["repeat"]["period"] = 0
    [read] = record_from_bundle(bundle, pid).lines
    assert read.dosage_text == "1 comprimé 3 fois par jour pendant 5 jours"
    assert read.posology is not None
    assert (read.posology.units_per_day, read.posology.reason) == (None, UNREADABLE)


def test_expiry_follows_the_simulator_clock() -> None:
    sim = sim_at(datetime(2026, 3, 1, 9, 0, tzinfo=UTC))
    pid = "EPTEST0000000000000042"  # authored 2 days before load, valid 90 days
    assert record_from_bundle(bundle_for(sim, pid), pid).state is PrescriptionState.OPEN
    sim.clock.advance(100 * 86_400)
    record = record_from_bundle(bundle_for(sim, pid), pid)
    assert record.state is PrescriptionState.EXPIRED
    assert record.lines[0].status is LineStatus.EXPIRED


def test_empty_searchset_is_unknown() -> None:
    sim = sim_at(datetime(2026, 3, 1, tzinfo=UTC))
    with pytest.raises(PrescriptionUnknown):
        record_from_bundle(bundle_for(sim, "NOPE"), "EPTEST0000000000000099")


def test_missing_patient_is_malformed() -> None:
    sim = sim_at(datetime(2026, 3, 1, tzinfo=UTC))
    pid = "EPTEST0000000000000042"
    bundle = bundle_for(sim, pid)
    bundle["entry"] = [e for e in bundle["entry"] if e["resource"]["resourceType"] != "Patient"]
    with pytest.raises(MalformedResponse):
        record_from_bundle(bundle, pid)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (" eptest0000000000000042\r\n", "EPTEST0000000000000042"),
        ("01S2 TBPZ 2JCN ZZYG HZ", "01S2TBPZ2JCNZZYGHZ"),
    ],
)
def test_ids_are_normalised(raw: str, expected: str) -> None:
    assert normalise_prescription_id(raw) == expected


@pytest.mark.parametrize("raw", ["", "SHORT", "X" * 41, "ÉPTEST00000000000042", "EP-TEST-0042"])
def test_bad_ids_are_refused_before_any_call(raw: str) -> None:
    with pytest.raises(PrescriptionUnknown):
        normalise_prescription_id(raw)


@pytest.mark.parametrize(
    "overrides",
    [
        {"intervention": Intervention.NOT_DISPENSED, "quantity": 1, "reason": "rupture"},
        {"intervention": Intervention.NOT_DISPENSED, "quantity": 0, "cip13": None},
        {"intervention": Intervention.MODIFIED, "reason": "posologie"},
        {"intervention": Intervention.SUBSTITUTED, "cip13": None},
        {"cip13": "34009999"},
        {"quantity": 0},
    ],
)
def test_incoherent_line_executions_are_refused(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        line(**overrides)


def test_completeness_codes() -> None:
    assert line().completeness_code == "FFC"
    assert line(complete=False).completeness_code == "FFP"
    assert line(renewal_number=2).completeness_code == "RFC"
    assert line(renewal_number=1, complete=False).completeness_code == "RFP"


def test_execution_bundle_is_valid_fhir_with_every_intervention() -> None:
    report = ExecutionReport(
        prescription_id="eptest0000000000000043",
        idempotency_key="key-12345678",
        dispensed_at=datetime(2026, 3, 1, 10, 0, tzinfo=UTC),
        pharmacist_rpps=RPPS,
        pharmacy_finess="750000000",
        lines=(
            line(line_id="A"),
            line(line_id="B", intervention=Intervention.SUBSTITUTED, cip13="3400999999014"),
            line(
                line_id="C",
                intervention=Intervention.MODIFIED,
                reason="posologie",
                prescriber_agreement_date=date(2026, 3, 1),
            ),
            line(
                line_id="D",
                intervention=Intervention.NOT_DISPENSED,
                cip13=None,
                quantity=0,
                complete=False,
                reason="refus du patient",
            ),
        ),
    )
    bundle = execution_bundle(report)
    assert bundle["identifier"]["value"] == "EPTEST0000000000000043"
    dispenses = [e["resource"] for e in bundle["entry"]]
    assert [d["status"] for d in dispenses] == ["completed"] * 3 + ["declined"]
    assert dispenses[1]["substitution"]["wasSubstituted"] is True
    assert "type" not in dispenses[3]
    intervention = [
        next(x["valueCode"] for x in d["extension"] if x["url"].endswith("/intervention"))
        for d in dispenses
    ]
    assert intervention == ["unchanged", "substituted", "modified", "not-dispensed"]


def test_naive_dispensing_time_is_refused() -> None:
    with pytest.raises(ValidationError):
        ExecutionReport(
            prescription_id="EPTEST0000000000000043",
            idempotency_key="key-12345678",
            dispensed_at=datetime(2026, 3, 1, 10, 0),
            pharmacist_rpps=RPPS,
            lines=(line(),),
        )


def test_outcome_code_reads_the_simulator_refusals() -> None:
    import json

    body = json.loads(bytes(outcome(409, "prescription-expired", "x").body))
    assert outcome_code(body) == "prescription-expired"
    assert outcome_code({"resourceType": "OperationOutcome", "issue": "x"}) is None
    assert outcome_code([1, 2]) is None


def test_exceptional_renewal_needs_no_prescriber_agreement() -> None:
    from lgo.national.eprescription import EXCEPTIONAL_RENEWAL_REASON

    exceptional = line(
        intervention=Intervention.MODIFIED, reason=EXCEPTIONAL_RENEWAL_REASON, renewal_number=12
    )
    assert exceptional.exceptional and exceptional.prescriber_agreement_date is None
    with pytest.raises(ValidationError):  # any other modification still needs the agreement
        line(intervention=Intervention.MODIFIED, reason="posologie")
    with pytest.raises(ValidationError):  # and the exceptional one still needs its motif
        line(intervention=Intervention.MODIFIED)
