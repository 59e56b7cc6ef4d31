"""Delivery queue semantics on real databases (SQLite and PostgreSQL), with fake handlers."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from lgo.documents.errors import DocumentInputError
from lgo.documents.models import Author, Organisation
from lgo.domain.identity import IdentityStatus, with_key
from lgo.national.dmp import DmpAbsent
from lgo.national.errors import ServiceUnavailable
from lgo.services.documents import (
    DELIVERED,
    FAILED,
    KIND_DMP,
    PENDING,
    DeliveryJob,
    DeliveryPolicy,
    DeliveryWorker,
    DocumentService,
    retry_failed,
)
from lgo.services.identity import IdentityService
from lgo.store.db import Database
from lgo.store.models.documents import DocumentDelivery
from tests.fixtures.documents import make_vaccination_note
from tests.integration.documents.test_document_flow import add_patient

pytestmark = pytest.mark.integration
AUTHOR = Author("810000000009", "PHARMACIEN", "TEST")


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 15, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


class Handler:
    """Records calls; raises the queued errors first."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, job: DeliveryJob) -> dict[str, Any]:
        with self.lock:
            self.calls.append(job.key)
            if self.errors:
                raise self.errors.pop(0)
        return {"ok": True}


def queue_documents(db: Database, clock: Clock, count: int) -> list[str]:
    service = DocumentService(
        db, IdentityService(db, insi=None), Organisation("750000000", "P"), clock=clock
    )  # type: ignore[arg-type]
    ids = []
    for index in range(count):
        nir = f"2850375{index:03d}345"
        patient = add_patient(db, IdentityStatus.QUAL, nir=with_key(nir[:13]))
        view = service.vaccination_note(patient, make_vaccination_note().vaccinations, AUTHOR)
        ids.append(view.id)
    return ids


def rows(db: Database) -> list[DocumentDelivery]:
    with db.uow(readonly=True) as uow:
        found = uow.session.query(DocumentDelivery).order_by(DocumentDelivery.id).all()
        uow.session.expunge_all()
        return found


def worker(db: Database, handler: Handler, clock: Clock, **policy: Any) -> DeliveryWorker:
    return DeliveryWorker(
        db,
        {KIND_DMP: handler},
        policy=DeliveryPolicy(**policy),
        clock=clock,
        worker_id=f"w-{uuid.uuid4().hex[:6]}",
    )


def test_concurrent_workers_never_take_the_same_delivery(any_db: Database) -> None:
    clock = Clock()
    queue_documents(any_db, clock, 6)
    handler = Handler()
    workers = [worker(any_db, handler, clock, batch=3) for _ in range(2)]
    claims: list[list[int]] = [[], []]
    barrier = threading.Barrier(2)

    def run(index: int) -> None:
        barrier.wait()
        claims[index] = [c.id for c in workers[index].claim()]

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not set(claims[0]) & set(claims[1])
    assert len(claims[0]) + len(claims[1]) == 6


def test_expired_lease_is_taken_over_and_the_late_worker_changes_nothing(
    sqlite_db: Database,
) -> None:
    clock = Clock()
    queue_documents(sqlite_db, clock, 1)
    handler = Handler()
    crashed = worker(sqlite_db, handler, clock, lease_s=30)
    [claimed] = crashed.claim()  # then "crashes" before delivering
    rescuer = worker(sqlite_db, handler, clock, lease_s=30)
    assert rescuer.run_once() == 0  # lease still valid
    clock.now += timedelta(seconds=31)
    assert rescuer.run_once() == 1
    crashed._deliver(claimed)  # the late worker finishes: its update matches no row
    [row] = rows(sqlite_db)
    assert (row.status, row.attempts, row.claimed_by) == (DELIVERED, 2, rescuer.worker_id)
    assert len(handler.calls) == 2 and len(set(handler.calls)) == 1  # same idempotency key


def test_too_many_transient_failures_end_in_failed(sqlite_db: Database) -> None:
    clock = Clock()
    queue_documents(sqlite_db, clock, 1)
    handler = Handler(*(ServiceUnavailable("down") for _ in range(3)))
    w = worker(sqlite_db, handler, clock, max_attempts=3, base_delay_s=1, max_delay_s=1)
    for _ in range(3):
        assert w.run_once() == 1
        clock.now += timedelta(seconds=2)
    [row] = rows(sqlite_db)
    assert (row.status, row.last_error) == (
        FAILED,
        "too_many_attempts:national-service-unavailable",
    )


@pytest.mark.parametrize(
    ("error", "reason"),
    [(DmpAbsent("x"), "dmp-absent"), (ValueError("bad"), "invalid_message:ValueError")],
)
def test_permanent_errors_fail_at_once_and_can_be_retried(
    sqlite_db: Database, error: Exception, reason: str
) -> None:
    clock = Clock()
    queue_documents(sqlite_db, clock, 1)
    handler = Handler(error)
    w = worker(sqlite_db, handler, clock)
    w.run_once()
    [row] = rows(sqlite_db)
    assert (row.status, row.last_error, row.attempts) == (FAILED, reason, 1)
    assert w.run_once() == 0
    retry_failed(sqlite_db, row.id, now=clock.now)
    assert w.run_once() == 1
    assert rows(sqlite_db)[0].status == DELIVERED


def test_retry_refuses_a_delivery_that_did_not_fail(sqlite_db: Database) -> None:
    clock = Clock()
    queue_documents(sqlite_db, clock, 1)
    [row] = rows(sqlite_db)
    assert row.status == PENDING
    with pytest.raises(Exception, match="échec"):
        retry_failed(sqlite_db, row.id)
    with pytest.raises(DocumentInputError):
        DocumentService(
            sqlite_db,
            IdentityService(sqlite_db, insi=None),  # type: ignore[arg-type]
            Organisation("750000000", "P"),
        ).send(row.document_id, "mss", author_rpps="10000000009", recipient=None)
