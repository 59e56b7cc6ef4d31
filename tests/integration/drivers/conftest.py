"""Shared helpers for the driver integration tests (real pcscd + vpcd from hw-sim)."""

from __future__ import annotations

import queue
import time
from collections.abc import Callable, Iterator

import pytest

from drivers.pcsc import MonitorEvent, ReaderMonitor


class EventLog:
    """Collects monitor events; ``wait_for`` blocks on the queue (no sleeps)."""

    def __init__(self) -> None:
        self.queue: queue.Queue[MonitorEvent] = queue.Queue()
        self.seen: list[MonitorEvent] = []

    def __call__(self, event: MonitorEvent) -> None:
        self.queue.put(event)

    def wait_for(self, match: Callable[[MonitorEvent], bool], timeout: float = 5.0) -> MonitorEvent:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no matching event; seen: {self.seen}")
            try:
                event = self.queue.get(timeout=remaining)
            except queue.Empty:
                continue
            self.seen.append(event)
            if match(event):
                return event


@pytest.fixture
def monitor(hwsim) -> Iterator[tuple[ReaderMonitor, EventLog]]:  # type: ignore[no-untyped-def]
    log = EventLog()
    mon = ReaderMonitor(log, poll_ms=500, backoff_initial=0.1, backoff_max=1.0)
    mon.start()
    assert mon.wait_ready(5)
    yield mon, log
    mon.stop()


@pytest.fixture(scope="session")
def cps_tokens(opensc_module):  # type: ignore[no-untyped-def]
    """OpenSC's PKCS#11 module over hw-sim's pcscd: the virtual CPS cards are its tokens."""
    from drivers.cps import CpsTokens

    return CpsTokens(str(opensc_module)), opensc_module
