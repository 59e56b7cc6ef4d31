"""Outbox against the national simulator over real HTTP: delivery, outage → degraded commit →
service back → execution recorded once, poison messages, the worker thread."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from hwsim.national.eprescription import store_of
from hwsim.national.faults import FaultKind, FaultSpec
from lgo.core.events import EventBus
from lgo.domain.dispensing import InterventionKind, LineRequest
from lgo.domain.prescription import PrescriptionLine
from lgo.domain.products import Product, RegulatoryList
from lgo.national.eprescription import EPrescriptionClient
from lgo.national.transport import RetryPolicy
from lgo.services.dispensing import DispensingService, LineInput
from lgo.services.dispensing_errors import EPrescriptionDown
from lgo.services.local_time import pharmacy_today
from lgo.services.outbox import OutboxPolicy, OutboxWorker
from lgo.services.prescriptions import InMemoryCatalog
from lgo.store.db import Database
from lgo.store.models.dispensing import DispensationRow, OutboxMessage
from tests.fixtures.dispensing import (
    dispensation_input,
    make_patient,
    make_patient_for,
    paper,
    pharmacist,
)
from tests.fixtures.national import NationalSim

pytestmark = pytest.mark.integration
RX_ID = "01S2TBPZ2JCNZZYGHZ"  # simulator fixture: amoxicilline, list I, 2 boxes, 6 days
AMOXICILLINE = "3400999999014"


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def client(national_sim: NationalSim) -> Iterator[EPrescriptionClient]:
    with EPrescriptionClient(
        national_sim.url("/eprescription/fhir"), timeout_s=2, retry=RetryPolicy(attempts=1)
    ) as c:
        yield c


@pytest.fixture
def events() -> EventBus:
    return EventBus()


def typed_copy() -> Any:
    line = PrescriptionLine(
        1, Product(AMOXICILLINE, "AMOXICILLINE TEST 1 g", RegulatoryList.LIST_I), Decimal(2), 6
    )
    return paper(RX_ID, line, prescribed_on=pharmacy_today(), eprescription=True)


def amox_line() -> LineInput:
    return LineInput(LineRequest(1, InterventionKind.UNCHANGED, 6), cip13=AMOXICILLINE, boxes=2)


def statuses(db: Database) -> list[str]:
    with db.uow(readonly=True) as uow:
        return list(uow.session.execute(select(OutboxMessage.status)).scalars())


def test_outage_degraded_commit_then_recorded_once(
    sqlite_db: Database, national_sim: NationalSim, client: EPrescriptionClient, events: EventBus
) -> None:
    clock = Clock()
    service = DispensingService(
        sqlite_db, events, InMemoryCatalog(), eprescription=client, clock=clock
    )
    worker = OutboxWorker(sqlite_db, events, client, clock=clock)
    national_sim.faults.arm(
        FaultSpec(service="eprescription", kind=FaultKind.OUTAGE, duration_s=600)
    )
    with pytest.raises(EPrescriptionDown):  # never loaded and the service is down
        service.load_prescription(RX_ID, author_rpps=pharmacist().rpps)
    patient = make_patient_for(sqlite_db, RX_ID)
    data = dispensation_input(patient, typed_copy(), amox_line())
    result = service.dispense("outage-key-1", data, pharmacist(), degraded=True)
    assert result.body["degraded"] is True and result.body["sync_status"] == "pending_sync"
    assert worker.run_once() == 1
    assert statuses(sqlite_db) == ["pending"] and worker.degraded
    assert [e.data for e in events.recent() if e.type == "outbox.degraded"] == [
        {"active": True, "reason": "national-service-unavailable"}
    ]
    assert worker.run_once() == 0  # backoff: not due yet
    national_sim.faults.clear("eprescription")  # the service comes back
    clock.now += timedelta(minutes=10)
    assert worker.run_once() == 1
    assert statuses(sqlite_db) == ["delivered"] and not worker.degraded
    assert events.recent()[-1].data == {"active": False}
    assert store_of(national_sim.state).executions() == 1
    with sqlite_db.uow(readonly=True) as uow:
        assert uow.session.execute(select(DispensationRow.sync_status)).scalar_one() == "synced"
    # a second worker (another daemon) finds nothing to send again
    assert OutboxWorker(sqlite_db, events, client, clock=clock).run_once() == 0
    posts = [e for e in national_sim.recorder.entries("eprescription") if e.method == "POST"]
    # while down, the worker failed on resolving the typed lines' ids; one execution POST, once
    assert [p.status for p in posts] == [200]


def test_timeout_after_remote_work_is_resent_with_the_same_key(
    sqlite_db: Database, national_sim: NationalSim, client: EPrescriptionClient, events: EventBus
) -> None:
    """The service records the execution but the answer never arrives: the retry carries the
    same Idempotency-Key and the service replays instead of recording twice."""
    clock = Clock()
    service = DispensingService(
        sqlite_db, events, InMemoryCatalog(), eprescription=client, clock=clock
    )
    service.load_prescription(RX_ID, author_rpps=pharmacist().rpps)
    patient = make_patient_for(sqlite_db, RX_ID)
    data = dispensation_input(patient, typed_copy(), amox_line())
    service.dispense("timeout-key-1", data, pharmacist(), degraded=False)
    national_sim.faults.arm(
        FaultSpec(service="eprescription", kind=FaultKind.TIMEOUT, method="POST", delay_s=4)
    )
    worker = OutboxWorker(sqlite_db, events, client, clock=clock)
    assert worker.run_once() == 1
    assert statuses(sqlite_db) == ["pending"]
    clock.now += timedelta(minutes=10)
    assert worker.run_once() == 1
    assert statuses(sqlite_db) == ["delivered"]
    assert store_of(national_sim.state).executions() == 1
    keys = {
        p.headers.get("idempotency-key")
        for p in national_sim.recorder.entries("eprescription")
        if p.method == "POST"
    }
    assert len(keys) == 1
    delivered = [e.data for e in events.recent() if e.type == "outbox.delivered"]
    assert delivered[0]["replayed"] is True


def test_poison_message_fails_with_reason_and_can_be_retried(
    sqlite_db: Database, national_sim: NationalSim, client: EPrescriptionClient, events: EventBus
) -> None:
    service = DispensingService(sqlite_db, events, InMemoryCatalog())
    patient = make_patient(sqlite_db)
    unknown = paper("UNKNOWNRX00000000001", eprescription=True)  # not in the national base
    service.dispense(
        "poison-key-1", dispensation_input(patient, unknown), pharmacist(), degraded=True
    )
    worker = OutboxWorker(sqlite_db, events, client)
    assert worker.run_once() == 1
    assert statuses(sqlite_db) == ["failed"]
    failed = [e.data for e in events.recent() if e.type == "outbox.failed"]
    assert failed[0]["reason"] == "prescription-unknown"
    from lgo.services import outbox

    listed = outbox.list_messages(sqlite_db, "failed")
    assert listed[0]["last_error"] == "prescription-unknown"
    assert outbox.retry(sqlite_db, listed[0]["id"])["status"] == "pending"


def test_worker_thread_delivers_right_after_commit(
    sqlite_db: Database, national_sim: NationalSim, client: EPrescriptionClient
) -> None:
    events = EventBus()
    delivered = threading.Event()
    worker = OutboxWorker(sqlite_db, events, client, policy=OutboxPolicy(idle_poll_s=30))
    original = worker._delivered

    def spy(message: Any, receipt: Any) -> None:
        original(message, receipt)
        delivered.set()

    worker._delivered = spy  # type: ignore[method-assign]
    service = DispensingService(
        sqlite_db, events, InMemoryCatalog(), eprescription=client, on_commit=worker.notify
    )
    service.load_prescription(RX_ID, author_rpps=pharmacist().rpps)
    worker.start()
    try:
        patient = make_patient_for(sqlite_db, RX_ID)
        data = dispensation_input(patient, typed_copy(), amox_line())
        service.dispense("thread-key-1", data, pharmacist(), degraded=False)
        assert delivered.wait(20), "the worker was not woken by the commit"
    finally:
        worker.stop()
    assert store_of(national_sim.state).executions() == 1


def test_eprescription_without_catalogue_counts_boxes(
    sqlite_db: Database, national_sim: NationalSim, client: EPrescriptionClient, events: EventBus
) -> None:
    service = DispensingService(sqlite_db, events, InMemoryCatalog(), eprescription=client)
    view = service.load_prescription("EPTEST0000000000000042", author_rpps=pharmacist().rpps)
    assert view.prescription.extra["unit:1"] == "box"  # paracetamol: 2 boxes for 5 days
    data = dispensation_input(
        make_patient_for(sqlite_db, "EPTEST0000000000000042"),
        view.prescription,
        LineInput(LineRequest(1, InterventionKind.UNCHANGED, 5), cip13="3400999999991"),
    )
    body = service.dispense("boxes-key-1", data, pharmacist(), degraded=False).body
    assert (body["lines"][0]["boxes"], body["lines"][0]["completeness"]) == (2, "FFC")
    assert OutboxWorker(sqlite_db, events, client).run_once() == 1
    assert statuses(sqlite_db) == ["delivered"]
    assert store_of(national_sim.state).executions() == 1


def test_cancelled_prescription_is_refused_at_the_counter(
    sqlite_db: Database, client: EPrescriptionClient, events: EventBus
) -> None:
    from lgo.national.errors import PrescriptionCancelled

    service = DispensingService(sqlite_db, events, InMemoryCatalog(), eprescription=client)
    with pytest.raises(PrescriptionCancelled):
        service.load_prescription("EPTEST0000000000000048", author_rpps=pharmacist().rpps)


def test_national_history_counts_other_pharmacies_deliveries(
    sqlite_db: Database, client: EPrescriptionClient, events: EventBus
) -> None:
    """EPTEST…044: first dispensation done elsewhere: the line is not new to the rules."""
    service = DispensingService(sqlite_db, events, InMemoryCatalog(), eprescription=client)
    view = service.load_prescription("EPTEST0000000000000044", author_rpps=pharmacist().rpps)
    assert view.histories[1].deliveries >= 1
    assert view.histories[1].days_dispensed > 0


def test_partial_deliveries_of_one_renewal_carry_its_number(
    sqlite_db: Database, national_sim: NationalSim, client: EPrescriptionClient, events: EventBus
) -> None:
    """Amoxicilline, 2 boxes, no renewal: one box, then the other (a partial delivery completed
    later) is the same dispensation number 0 for the national base, which accepts both; a line
    not dispensed first does not count as a delivery either."""
    service = DispensingService(sqlite_db, events, InMemoryCatalog(), eprescription=client)
    rx = service.load_prescription(RX_ID, author_rpps=pharmacist().rpps).prescription
    patient = make_patient_for(sqlite_db, RX_ID)
    worker = OutboxWorker(sqlite_db, events, client)
    skipped = LineInput(
        LineRequest(1, InterventionKind.NOT_DISPENSED, 0, not_dispensed_reason="rupture")
    )
    half = LineInput(LineRequest(1, InterventionKind.UNCHANGED, 3), cip13=AMOXICILLINE, boxes=1)
    for key, line in (("skip-1", skipped), ("half-1", half), ("half-2", half)):
        data = dispensation_input(patient, rx, line, tag=key)
        assert service.dispense(key, data, pharmacist(), degraded=False).status_code == 201
        assert worker.run_once() == 1
    assert statuses(sqlite_db) == ["delivered"] * 3
    sent = [
        d.renewal
        for d in store_of(national_sim.state).prescriptions[RX_ID].dispenses
        if d.status == "completed"
    ]
    assert sent == [0, 0]
