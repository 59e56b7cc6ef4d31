"""Two counters dispensing the same prescription line at the same moment, on SQLite and PostgreSQL:
exactly one dispensation, one ordonnancier entry, one outbox message."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import func, select

from lgo.core.errors import LgoError
from lgo.services.dispensing import DispensingService
from lgo.services.dispensing_errors import DispensingRefused, LineAlreadyDispensed
from lgo.services.prescriptions import InMemoryCatalog
from lgo.store.db import Database
from lgo.store.models.dispensing import DispensationRow, OrdonnancierEntry, OutboxMessage
from tests.fixtures.dispensing import (
    dispensation_input,
    dispensing_service,
    make_patient,
    paper,
    pharmacist,
)

pytestmark = pytest.mark.integration


def count(db: Database, table: Any) -> int:
    with db.uow(readonly=True) as uow:
        return int(uow.session.execute(select(func.count()).select_from(table)).scalar_one())


def race(*calls: Callable[[], Any]) -> list[Any]:
    """Run the calls in threads released together; returns each result or exception."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(i: int, call: Callable[[], Any]) -> None:
        barrier.wait()
        try:
            results[i] = call()
        except LgoError as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


@pytest.fixture
def counters(any_db: Database, catalog: InMemoryCatalog) -> Iterator[tuple[DispensingService, ...]]:
    # Each counter has its own engine and connections, as two daemons sharing one database.
    services = tuple(dispensing_service(Database(any_db.url), catalog) for _ in range(2))
    yield services
    for service in services:
        service.db.dispose()


@pytest.mark.parametrize("cached", [False, True], ids=["first-sight", "already-loaded"])
def test_same_line_two_counters_one_dispensation(
    any_db: Database, counters: tuple[DispensingService, ...], cached: bool
) -> None:
    patient = make_patient(any_db)
    rx = paper("RACE0000000001", eprescription=True)
    a, b = counters
    if cached:
        a._store_prescription(rx)
    inputs = [dispensation_input(patient, rx, tag=str(i)) for i in range(2)]
    results = race(
        lambda: a.dispense("counter-a-key", inputs[0], pharmacist("comptoir-a"), degraded=True),
        lambda: b.dispense("counter-b-key", inputs[1], pharmacist("comptoir-b"), degraded=True),
    )
    successes = [r for r in results if not isinstance(r, Exception)]
    losers = [r for r in results if isinstance(r, Exception)]
    assert len(successes) == 1 and len(losers) == 1, results
    assert isinstance(losers[0], LineAlreadyDispensed | DispensingRefused)
    assert count(any_db, DispensationRow) == 1
    assert count(any_db, OrdonnancierEntry) == 1
    assert count(any_db, OutboxMessage) == 1


def test_same_key_twice_at_once_one_row_same_answer(
    any_db: Database, counters: tuple[DispensingService, ...]
) -> None:
    patient = make_patient(any_db)
    rx = paper("RACE0000000002", eprescription=True)
    a, b = counters
    data = dispensation_input(patient, rx)
    results = race(
        lambda: a.dispense("double-click-key", data, pharmacist(), degraded=False),
        lambda: b.dispense("double-click-key", data, pharmacist(), degraded=False),
    )
    assert not any(isinstance(r, Exception) for r in results), results
    assert results[0].body == results[1].body
    assert sorted(r.replayed for r in results) == [False, True]
    assert count(any_db, DispensationRow) == 1
    assert count(any_db, OrdonnancierEntry) == 1
    assert count(any_db, OutboxMessage) == 1


def test_two_outbox_workers_never_claim_the_same_message(any_db: Database) -> None:
    from datetime import UTC, datetime

    from lgo.core.events import EventBus
    from lgo.services.outbox import OutboxPolicy, OutboxWorker

    now = datetime.now(UTC)
    with any_db.uow() as uow:
        for i in range(20):
            uow.session.add(
                OutboxMessage(
                    created_at=now,
                    kind="eprescription.execution",
                    idempotency_key=f"k-{i:04d}",
                    payload="{}",
                    status="pending",
                    attempts=0,
                    next_attempt_at=now,
                )
            )
        uow.commit()
    policy = OutboxPolicy(batch=15)
    workers = [
        OutboxWorker(Database(any_db.url), EventBus(), None, policy=policy, worker_id=f"w{i}")
        for i in range(2)
    ]
    try:
        claimed = race(*(w.claim for w in workers))
    finally:
        for w in workers:
            w.db.dispose()
    ids = [[c.id for c in batch] for batch in claimed]
    assert not set(ids[0]) & set(ids[1])
    assert len(ids[0]) + len(ids[1]) == 20
