"""The shared background-worker loop (lgo/services/worker.py) used by the outbox and documents."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from lgo.core.events import EventBus
from lgo.services.documents import DeliveryPolicy, DeliveryWorker
from lgo.services.outbox import OutboxPolicy, OutboxWorker
from lgo.services.worker import BackgroundWorker, WorkerPolicy

WAIT_S = 10.0  # generous: only reached when the behaviour is broken


class BrokenDatabase:
    """Every unit of work fails, like a database that went away."""

    def uow(self, readonly: bool = False) -> Any:
        raise ConnectionError("database gone")


class CountingPasses:
    """Replaces ``run_once``: counts passes, the first ones optionally failing."""

    def __init__(self, failures: int, wanted: int) -> None:
        self.failures = failures
        self.wanted = wanted
        self.calls = 0
        self.reached = threading.Event()

    def __call__(self) -> int:
        self.calls += 1
        if self.calls >= self.wanted:
            self.reached.set()
        if self.calls <= self.failures:
            raise ConnectionError("database gone")
        return 0


@contextmanager
def running(worker: BackgroundWorker) -> Iterator[None]:
    worker.start()
    try:
        yield
    finally:
        worker.stop()


def test_outbox_worker_outlives_a_database_outage_between_passes() -> None:
    # Idle, the outbox asks the database when the next message is due: a failure there used to
    # end the thread silently (no delivery until a restart).
    worker = OutboxWorker(
        BrokenDatabase(),
        EventBus(),
        sender=None,  # type: ignore[arg-type]
        policy=OutboxPolicy(idle_poll_s=0.01),
    )
    passes = CountingPasses(failures=0, wanted=3)
    worker.run_once = passes  # type: ignore[method-assign]
    with running(worker):
        assert passes.reached.wait(WAIT_S), "the outbox thread died"
    assert worker._thread is None


def test_documents_worker_outlives_failing_passes() -> None:
    worker = DeliveryWorker(BrokenDatabase(), {}, policy=DeliveryPolicy(idle_poll_s=0.01))  # type: ignore[arg-type]
    passes = CountingPasses(failures=2, wanted=4)
    worker.run_once = passes  # type: ignore[method-assign]
    with running(worker):
        assert passes.reached.wait(WAIT_S)


class Queue(BackgroundWorker):
    name = "test-queue"

    def __init__(self) -> None:
        super().__init__(idle_poll_s=3600.0)  # only notify() can wake it in time
        self.items = 0
        self.handled = 0
        self.idle = threading.Event()

    def run_once(self) -> int:
        if self.items:
            self.items, done = 0, self.items
            self.handled += done
            return done
        self.idle.set()
        return 0


def test_notify_wakes_an_idle_worker_and_stop_ends_it() -> None:
    worker = Queue()
    with running(worker):
        assert worker.idle.wait(WAIT_S)
        worker.idle.clear()
        worker.items = 3
        worker.notify()
        assert worker.idle.wait(WAIT_S)  # went through the work, then idle again
        assert worker.handled == 3
        thread = worker._thread
    assert thread is not None and not thread.is_alive()
    assert thread.name == "lgo-test-queue"


def test_each_worker_keeps_its_own_policy_defaults() -> None:
    outbox, documents = OutboxPolicy(), DeliveryPolicy()
    assert (outbox.base_delay_s, outbox.max_delay_s, outbox.lease_s) == (2.0, 300.0, 60.0)
    assert (documents.base_delay_s, documents.max_delay_s, documents.lease_s) == (5.0, 600.0, 120.0)
    assert outbox.max_attempts == documents.max_attempts == 50
    assert isinstance(documents, WorkerPolicy) and DeliveryPolicy(batch=3).batch == 3
