"""Outbox worker decisions with a fake e-prescription service (SQLite file as the store)."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from lgo.core.events import EventBus
from lgo.national import eprescription as ep
from lgo.national.errors import (
    MalformedResponse,
    PrescriptionExpired,
    ServiceTimeout,
    ServiceUnavailable,
)
from lgo.services import outbox
from lgo.services.outbox import OutboxPolicy, OutboxWorker, backoff_delay
from lgo.store import migrate
from lgo.store.db import Database
from lgo.store.models.dispensing import OutboxMessage

NOW = datetime(2026, 3, 1, 9, tzinfo=UTC)


class FakeService:
    def __init__(self, *outcomes: Exception | None) -> None:
        self.outcomes = list(outcomes)
        self.keys: list[str] = []
        self.reports: list[ep.ExecutionReport] = []

    def fetch(self, prescription_id: str, *, author_rpps: str) -> ep.PrescriptionRecord:
        raise AssertionError("not used")

    def record_execution(self, report: ep.ExecutionReport) -> ep.ExecutionReceipt:
        self.keys.append(report.idempotency_key)
        self.reports.append(report)
        outcome = self.outcomes.pop(0) if self.outcomes else None
        if outcome is not None:
            raise outcome
        return ep.ExecutionReceipt(
            execution_id="x1",
            prescription_id=report.prescription_id,
            dispense_ids=("d1",),
            replayed=False,
        )


def payload(key: str = "lgo-exec-0001", **changes: Any) -> str:
    data = {
        "prescription_id": "01S2TBPZ2JCNZZYGHZ",
        "idempotency_key": key,
        "dispensed_at": NOW.isoformat(),
        "pharmacist_rpps": "10000000009",
        "pharmacy_finess": "750000000",
        "lines": [
            {
                "line_no": 1,
                "line_id": "L1",
                "intervention": "unchanged",
                "cip13": "3400999999014",
                "quantity": 2,
                "complete": True,
                "renewal_number": 0,
                "reason": None,
                "prescriber_agreement_date": None,
            }
        ],
    }
    data.update(changes)
    return json.dumps(data)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'u.sqlite3'}")
    migrate.upgrade(database)
    yield database
    database.dispose()


def enqueue(db: Database, body: str, key: str = "lgo-exec-0001") -> None:
    with db.uow() as uow:
        uow.session.add(
            OutboxMessage(
                created_at=NOW,
                kind="eprescription.execution",
                idempotency_key=key,
                payload=body,
                status="pending",
                attempts=0,
                next_attempt_at=NOW,
            )
        )
        uow.commit()


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def worker(db: Database, service: FakeService, clock: Clock, **policy: Any) -> OutboxWorker:
    return OutboxWorker(
        db, EventBus(), service, clock=clock, rng=random.Random(7), policy=OutboxPolicy(**policy)
    )


def only(db: Database) -> dict[str, Any]:
    return outbox.list_messages(db)[0]


def test_backoff_doubles_with_jitter_and_caps() -> None:
    policy = OutboxPolicy(base_delay_s=2, max_delay_s=60)
    rng = random.Random(1)
    for attempts, ceiling in [(1, 2), (2, 4), (3, 8), (6, 60), (30, 60)]:
        delay = backoff_delay(attempts, policy, rng)
        assert ceiling / 2 <= delay <= ceiling


@pytest.mark.parametrize(
    "error", [ServiceUnavailable("x"), ServiceTimeout("x"), MalformedResponse("x")]
)
def test_transient_failures_reschedule_with_the_same_key(db: Database, error: Exception) -> None:
    enqueue(db, payload())
    clock, service = Clock(), FakeService(error, error)
    w = worker(db, service, clock)
    assert w.run_once() == 1 and only(db)["status"] == "pending" and w.degraded
    assert w.run_once() == 0  # not due yet
    clock.now += timedelta(minutes=5)
    w.run_once()
    clock.now += timedelta(minutes=5)
    w.run_once()
    assert only(db)["status"] == "delivered" and not w.degraded
    assert service.keys == ["lgo-exec-0001"] * 3
    assert [e.type for e in w.events.recent()] == [
        "outbox.degraded",
        "outbox.delivered",
        "outbox.degraded",
    ]


def test_permanent_refusal_is_failed_with_reason(db: Database) -> None:
    enqueue(db, payload())
    w = worker(db, FakeService(PrescriptionExpired("x")), Clock())
    w.run_once()
    message = only(db)
    assert (message["status"], message["last_error"]) == ("failed", "prescription-expired")
    assert w.events.recent()[-1].type == "outbox.failed"


def test_malformed_payload_is_poison_not_retried(db: Database) -> None:
    enqueue(db, payload(pharmacist_rpps="not-an-rpps"))
    service = FakeService()
    w = worker(db, service, Clock())
    w.run_once()
    assert only(db)["status"] == "failed"
    assert only(db)["last_error"].startswith("invalid_message:")
    assert service.keys == []


def test_too_many_attempts_end_in_failed(db: Database) -> None:
    enqueue(db, payload())
    clock = Clock()
    w = worker(db, FakeService(*[ServiceUnavailable("x")] * 3), clock, max_attempts=3)
    for _ in range(3):
        w.run_once()
        clock.now += timedelta(hours=1)
    assert only(db)["status"] == "failed"
    assert only(db)["last_error"] == "too_many_attempts:national-service-unavailable"


def test_expired_lease_is_reclaimed_after_a_crash(db: Database) -> None:
    enqueue(db, payload())
    clock = Clock()
    crashed = worker(db, FakeService(), clock, lease_s=60)
    assert len(crashed.claim()) == 1  # claimed, then the process died
    assert worker(db, FakeService(), clock).run_once() == 0  # lease still held
    clock.now += timedelta(seconds=61)
    assert worker(db, FakeService(), clock).run_once() == 1
    assert only(db)["status"] == "delivered" and only(db)["attempts"] == 2


def test_retry_only_for_failed_messages(db: Database) -> None:
    enqueue(db, payload())
    from lgo.services.dispensing_errors import OutboxMessageNotFound, OutboxRetryRefused

    with pytest.raises(OutboxRetryRefused):
        outbox.retry(db, only(db)["id"])
    with pytest.raises(OutboxMessageNotFound):
        outbox.retry(db, 999)


def test_other_kinds_are_left_to_their_own_handlers(db: Database) -> None:
    with db.uow() as uow:
        uow.session.add(
            OutboxMessage(
                created_at=NOW,
                kind="dmp.provide",
                idempotency_key="doc-1",
                payload="{}",
                status="pending",
                attempts=0,
                next_attempt_at=NOW,
            )
        )
        uow.commit()
    assert worker(db, FakeService(), Clock()).run_once() == 0
    assert only(db)["status"] == "pending"


class Identity:
    def __init__(self) -> None:
        self.qualified: set[str] = set()

    def qualified_ins(self, patient_id: str) -> tuple[str, str] | None:
        if patient_id in self.qualified:
            return ("299127505699943", "1.2.250.1.213.1.4.10")
        return None


def test_ins_goes_out_only_when_qualified_at_send_time(db: Database) -> None:
    from lgo.services.prescriptions import InMemoryCatalog
    from tests.fixtures.dispensing import (
        LIST_I_PRODUCT,
        dispensation_input,
        dispensing_service,
        make_patient,
        paper,
        pharmacist,
    )

    service = dispensing_service(db, InMemoryCatalog([LIST_I_PRODUCT]))
    identity = Identity()
    patients = [make_patient(db) for _ in range(2)]
    for i, patient in enumerate(patients):
        rx = paper(f"INSCHECK{i:08d}", eprescription=True)
        service.dispense(
            f"ins-key-{i}", dispensation_input(patient, rx), pharmacist(), degraded=False
        )
    identity.qualified.add(patients[1])
    fake = FakeService()
    sender = OutboxWorker(db, EventBus(), fake, identity=identity)
    sender._resolve_line_ids = lambda payload: [  # type: ignore[method-assign]
        {**line, "line_id": "L1"} for line in payload["lines"]
    ]
    assert sender.run_once() == 2
    assert [r.patient_ins for r in fake.reports] == [None, "299127505699943"]
    with db.uow(readonly=True) as uow:  # never stored with the message
        payloads = [m.payload for m in uow.session.query(OutboxMessage).all()]
    assert not any("299127505699943" in p for p in payloads)
