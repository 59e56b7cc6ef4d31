"""E-prescription client against the simulator over real HTTP on 127.0.0.1."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from hwsim.national.eprescription import store_of
from hwsim.national.faults import FaultKind, FaultSpec
from lgo.national.eprescription import (
    EPrescriptionClient,
    ExecutionReport,
    Intervention,
    LineExecution,
    LineStatus,
    NonSubstitutableReason,
    PrescriptionState,
    RegulatoryList,
    ensure_dispensable,
)
from lgo.national.errors import (
    IdempotencyConflict,
    PatientMismatch,
    PrescriptionAlreadyDispensed,
    PrescriptionCancelled,
    PrescriptionExpired,
    PrescriptionUnknown,
    RequestRejected,
    ServiceTimeout,
)
from lgo.national.transport import RetryPolicy
from tests.fixtures.national import NationalSim

pytestmark = pytest.mark.integration

RPPS = "10999999997"
SIMPLE = "EPTEST0000000000000042"
MULTI = "EPTEST0000000000000043"
RENEWABLE = "EPTEST0000000000000044"
CHILD = "EPTEST0000000000000045"
CONTROLLED = "EPTEST0000000000000046"
EXPIRED = "EPTEST0000000000000047"
CANCELLED = "EPTEST0000000000000048"
DISPENSED = "EPTEST0000000000000049"


@pytest.fixture
def client(national_sim: NationalSim) -> Iterator[EPrescriptionClient]:
    fast_retry = RetryPolicy(attempts=3, backoff_s=0.01)
    with EPrescriptionClient(
        national_sim.url("/eprescription/fhir"), timeout_s=2.0, retry=fast_retry
    ) as c:
        yield c


def report(prescription_id: str, *lines: LineExecution, key: str | None = None) -> ExecutionReport:
    return ExecutionReport(
        prescription_id=prescription_id,
        idempotency_key=key or f"exec-{uuid.uuid4()}",
        dispensed_at=datetime.now(UTC),
        pharmacist_rpps=RPPS,
        pharmacy_finess="750000000",
        lines=lines,
    )


def unchanged(line_id: str, cip13: str, quantity: int, renewal: int = 0) -> LineExecution:
    return LineExecution(
        line_id=line_id,
        intervention=Intervention.UNCHANGED,
        cip13=cip13,
        quantity=quantity,
        complete=True,
        renewal_number=renewal,
    )


def test_fetch_gives_a_typed_multi_line_prescription(client: EPrescriptionClient) -> None:
    record = client.fetch(MULTI.lower(), author_rpps=RPPS)  # typed ids are normalised

    assert record.prescription_id == MULTI
    assert record.state is PrescriptionState.OPEN
    assert record.prescriber.rpps == "10000000009"
    assert record.patient.family_name == "TESTPATIENT"
    assert record.patient.ins_oid == "1.2.250.1.213.1.4.10"
    assert [line.cip13 for line in record.lines] == [
        "3400999999021",
        "3400999999076",
        "3400999999052",
    ]
    levothyroxine = record.lines[0]
    assert levothyroxine.substitutable is False
    assert levothyroxine.non_substitutable_reason is NonSubstitutableReason.MTE
    assert levothyroxine.renewals_allowed == 5
    assert levothyroxine.treatment_days == 30
    assert levothyroxine.regulatory_list is RegulatoryList.LIST_I
    assert "à jeun" in levothyroxine.dosage_text
    assert record.lines[1].substitutable is True
    assert record.validity_end is not None and record.validity_end > record.authored_on


def test_fetch_reports_every_state(client: EPrescriptionClient) -> None:
    states = {
        pid: client.fetch(pid, author_rpps=RPPS).state
        for pid in (SIMPLE, RENEWABLE, EXPIRED, CANCELLED, DISPENSED)
    }
    assert states == {
        SIMPLE: PrescriptionState.OPEN,
        RENEWABLE: PrescriptionState.PARTIAL,
        EXPIRED: PrescriptionState.EXPIRED,
        CANCELLED: PrescriptionState.CANCELLED,
        DISPENSED: PrescriptionState.COMPLETED,
    }
    with pytest.raises(PrescriptionUnknown):
        client.fetch("EPTEST0000000000009999", author_rpps=RPPS)


def test_ensure_dispensable_maps_states_to_typed_errors(client: EPrescriptionClient) -> None:
    expected = {
        EXPIRED: PrescriptionExpired,
        CANCELLED: PrescriptionCancelled,
        DISPENSED: PrescriptionAlreadyDispensed,
    }
    for pid, error in expected.items():
        with pytest.raises(error):
            ensure_dispensable(client.fetch(pid, author_rpps=RPPS))
    assert ensure_dispensable(client.fetch(SIMPLE, author_rpps=RPPS)).prescription_id == SIMPLE


def test_renewable_line_carries_its_history(client: EPrescriptionClient) -> None:
    line = client.fetch(RENEWABLE, author_rpps=RPPS).lines[0]
    assert line.status is LineStatus.PARTIAL
    assert line.renewals_allowed == 2
    assert sorted((d.renewal_number, d.quantity, d.complete) for d in line.dispensed) == [
        (0, 2, True),
        (1, 1, False),
    ]


def test_controlled_and_child_lines(client: EPrescriptionClient) -> None:
    controlled = client.fetch(CONTROLLED, author_rpps=RPPS)
    assert all(line.controlled for line in controlled.lines)
    assert controlled.lines[0].regulatory_list is RegulatoryList.STUPEFIANT
    child = client.fetch(CHILD, author_rpps=RPPS)
    reasons = [line.non_substitutable_reason for line in child.lines]
    assert reasons == [NonSubstitutableReason.EFG, NonSubstitutableReason.CIF]


def test_execution_is_recorded_and_visible_in_the_recorder(
    client: EPrescriptionClient, national_sim: NationalSim
) -> None:
    execution = report(SIMPLE, unchanged(f"{SIMPLE}-1", "3400999999991", 2))
    receipt = client.record_execution(execution)

    assert receipt.replayed is False and len(receipt.dispense_ids) == 1
    assert client.fetch(SIMPLE, author_rpps=RPPS).state is PrescriptionState.COMPLETED
    recorded = httpx.get(
        national_sim.url("/_sim/recorder"), params={"service": "eprescription", "method": "POST"}
    ).json()
    assert len(recorded) == 1
    assert recorded[0]["idempotency_key"] == execution.idempotency_key
    assert recorded[0]["status"] == 200 and recorded[0]["body_size"] > 0
    assert recorded[0]["request_id"]  # the trace's request id travels in X-Request-ID


def test_every_intervention_kind_is_accepted(client: EPrescriptionClient) -> None:
    record = client.fetch(MULTI, author_rpps=RPPS)
    lines = (
        unchanged(record.lines[0].line_id, "3400999999021", 1),
        LineExecution(
            line_id=record.lines[1].line_id,
            intervention=Intervention.MODIFIED,
            cip13="3400999999076",
            quantity=1,
            complete=True,
            reason="posologie",
            prescriber_agreement_date=datetime.now(UTC).date(),
        ),
        LineExecution(
            line_id=record.lines[2].line_id,
            intervention=Intervention.NOT_DISPENSED,
            quantity=0,
            complete=False,
            reason="refus du patient",
        ),
    )
    receipt = client.record_execution(report(MULTI, *lines))
    assert len(receipt.dispense_ids) == 3
    after = client.fetch(MULTI, author_rpps=RPPS)
    assert [line.status for line in after.lines] == [
        LineStatus.PARTIAL,
        LineStatus.PARTIAL,
        LineStatus.OPEN,
    ]
    assert after.state is PrescriptionState.PARTIAL


def test_same_key_twice_records_once_and_other_body_is_refused(
    client: EPrescriptionClient, national_sim: NationalSim
) -> None:
    first = report(SIMPLE, unchanged(f"{SIMPLE}-1", "3400999999991", 2), key="same-key-0001")
    receipt = client.record_execution(first)
    again = client.record_execution(first)

    assert again.replayed is True and again.execution_id == receipt.execution_id
    assert store_of(national_sim.state).executions() == 1
    other = report(SIMPLE, unchanged(f"{SIMPLE}-1", "3400999999991", 1), key="same-key-0001")
    with pytest.raises(IdempotencyConflict):
        client.record_execution(other)


def test_retry_after_a_timeout_with_the_same_key_records_once(
    national_sim: NationalSim,
) -> None:
    # The service records the execution, then holds its answer past the client's timeout.
    national_sim.faults.arm(
        FaultSpec(service="eprescription", kind=FaultKind.TIMEOUT, method="POST", delay_s=3)
    )
    execution = report(RENEWABLE, unchanged(f"{RENEWABLE}-1", "3400999999083", 2, renewal=2))
    with EPrescriptionClient(
        national_sim.url("/eprescription/fhir"),
        timeout_s=0.5,
        retry=RetryPolicy(attempts=3, backoff_s=0.01),
    ) as client:
        receipt = client.record_execution(execution)

    assert receipt.replayed is True  # the second attempt found the first one's record
    posts = national_sim.recorder.entries("eprescription", "POST")
    assert [p.idempotency_key for p in posts] == [execution.idempotency_key] * 2
    assert store_of(national_sim.state).executions() == 1


def test_outbox_style_retry_after_a_failed_call_records_once(national_sim: NationalSim) -> None:
    national_sim.faults.arm(
        FaultSpec(service="eprescription", kind=FaultKind.TIMEOUT, method="POST", delay_s=3)
    )
    execution = report(SIMPLE, unchanged(f"{SIMPLE}-1", "3400999999991", 2))
    url = national_sim.url("/eprescription/fhir")
    with EPrescriptionClient(url, timeout_s=0.5, retry=RetryPolicy(attempts=1)) as client:
        with pytest.raises(ServiceTimeout):
            client.record_execution(execution)
        receipt = client.record_execution(execution)  # later, as the outbox worker would

    assert receipt.replayed is True
    assert store_of(national_sim.state).executions() == 1


def test_refusals_map_to_typed_errors(client: EPrescriptionClient) -> None:
    cases = {
        EXPIRED: PrescriptionExpired,
        CANCELLED: PrescriptionCancelled,
        DISPENSED: PrescriptionAlreadyDispensed,
        "EPTEST0000000000009999": PrescriptionUnknown,
    }
    for pid, error in cases.items():
        with pytest.raises(error):
            client.record_execution(report(pid, unchanged(f"{pid}-1", "3400999999076", 1)))
    # A renewal already served is refused too.
    with pytest.raises(PrescriptionAlreadyDispensed):
        client.record_execution(
            report(RENEWABLE, unchanged(f"{RENEWABLE}-1", "3400999999083", 2, renewal=0))
        )


def test_renewals_progress_and_stop_at_the_prescribed_number(
    client: EPrescriptionClient,
) -> None:
    line_id = f"{RENEWABLE}-1"
    client.record_execution(report(RENEWABLE, unchanged(line_id, "3400999999083", 1, renewal=1)))
    client.record_execution(report(RENEWABLE, unchanged(line_id, "3400999999083", 2, renewal=2)))
    record = client.fetch(RENEWABLE, author_rpps=RPPS)
    assert record.state is PrescriptionState.COMPLETED
    assert sorted(d.renewal_number for d in record.lines[0].dispensed) == [0, 1, 1, 2]
    with pytest.raises(PrescriptionAlreadyDispensed):
        client.record_execution(report(RENEWABLE, unchanged(line_id, "3400999999083", 2, 2)))


def test_renewal_beyond_the_prescription_is_rejected(client: EPrescriptionClient) -> None:
    with pytest.raises(RequestRejected):
        client.record_execution(
            report(SIMPLE, unchanged(f"{SIMPLE}-1", "3400999999991", 2, renewal=1))
        )


def test_reset_and_clock_controls(national_sim: NationalSim, client: EPrescriptionClient) -> None:
    client.record_execution(report(SIMPLE, unchanged(f"{SIMPLE}-1", "3400999999991", 2)))
    assert httpx.post(national_sim.url("/_sim/reset")).json() == {"reset": True}
    assert client.fetch(SIMPLE, author_rpps=RPPS).state is PrescriptionState.OPEN
    moved = httpx.post(national_sim.url("/_sim/clock"), json={"advance_s": 100 * 86_400})
    assert moved.status_code == 200
    assert client.fetch(SIMPLE, author_rpps=RPPS).state is PrescriptionState.EXPIRED


def test_execution_for_another_patient_is_refused(client: EPrescriptionClient) -> None:
    execution = report(SIMPLE, unchanged(f"{SIMPLE}-1", "3400999999991", 2))
    wrong = execution.model_copy(update={"patient_ins": "185036912345609"})
    with pytest.raises(PatientMismatch):
        client.record_execution(wrong)
    right = execution.model_copy(
        update={"patient_ins": "299127505699943", "patient_ins_oid": "1.2.250.1.213.1.4.10"}
    )
    assert client.record_execution(right).replayed is False
