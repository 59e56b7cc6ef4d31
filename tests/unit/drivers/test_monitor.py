"""ReaderMonitor logic against a scripted fake PC/SC world (the real pcscd runs in integration)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator

import pytest
from smartcard import scard

from drivers import errors
from drivers.pcsc import (
    PNP_READER,
    CardInserted,
    CardKind,
    CardRemoved,
    MonitorDegraded,
    MonitorEvent,
    MonitorRecovered,
    ReaderAdded,
    ReaderMonitor,
    ReaderRemoved,
    ReaderStatus,
)

VITALE = bytes.fromhex("3B751300004709EA9000")
CPS = bytes.fromhex("3BAC00402A00122500648000031000 9000".replace(" ", ""))
NO_SERVICE = scard.SCARD_E_NO_SERVICE & 0xFFFFFFFF


class World:
    """What pcscd would know: readers → ATR (None = empty), and whether the daemon runs."""

    def __init__(self) -> None:
        self.readers: dict[str, bytes | None] = {}
        self.up = True
        self.generation = 0
        self.cond = threading.Condition()

    def change(self, action: Callable[[World], None]) -> None:
        with self.cond:
            action(self)
            self.cond.notify_all()

    def restart(self, up: bool) -> None:
        def apply(world: World) -> None:
            world.up = up
            world.generation += 1

        self.change(apply)


class FakeContext:
    def __init__(self, world: World) -> None:
        if not world.up:
            raise errors.ServiceUnavailable(NO_SERVICE, "SCardEstablishContext")
        self.world = world
        self.generation = world.generation
        self.cancelled = False

    def _alive(self) -> None:
        if not self.world.up or self.world.generation != self.generation:
            raise errors.ServiceUnavailable(NO_SERVICE, "fake")

    def list_readers(self) -> list[str]:
        with self.world.cond:
            self._alive()
            return list(self.world.readers)

    def _state(self, name: str) -> tuple[int, bytes]:
        if name == PNP_READER:
            return len(self.world.readers) << 16, b""
        if name not in self.world.readers:
            return scard.SCARD_STATE_UNKNOWN, b""
        atr = self.world.readers[name]
        return (scard.SCARD_STATE_PRESENT, atr) if atr else (scard.SCARD_STATE_EMPTY, b"")

    def _changes(self, states: list[tuple[str, int]]) -> list[ReaderStatus] | None:
        out, changed = [], False
        for name, current in states:
            event, atr = self._state(name)
            if event != current:
                changed = True
                event |= scard.SCARD_STATE_CHANGED
            out.append(ReaderStatus(name, event, atr))
        return out if changed else None

    def get_status_change(
        self, states: list[tuple[str, int]], timeout_ms: int
    ) -> list[ReaderStatus] | None:
        with self.world.cond:
            self.world.cond.wait_for(
                lambda: (
                    self.cancelled
                    or not self.world.up
                    or self.world.generation != self.generation
                    or self._changes(states) is not None
                ),
                timeout_ms / 1000,
            )
            self._alive()
            return None if self.cancelled else self._changes(states)

    def cancel(self) -> None:
        with self.world.cond:
            self.cancelled = True
            self.world.cond.notify_all()

    def release(self) -> None:
        pass


class Events:
    def __init__(self) -> None:
        self.queue: queue.Queue[MonitorEvent] = queue.Queue()

    def __call__(self, event: MonitorEvent) -> None:
        self.queue.put(event)

    def next(self) -> MonitorEvent:
        return self.queue.get(timeout=3)

    def until(self, kind: type) -> list[MonitorEvent]:
        got: list[MonitorEvent] = []
        while not got or not isinstance(got[-1], kind):
            got.append(self.next())
        return got


@pytest.fixture
def world() -> World:
    w = World()
    w.readers = {"R0": None, "R1": None}
    return w


@pytest.fixture
def running(world: World) -> Iterator[tuple[ReaderMonitor, Events]]:
    events = Events()
    monitor = ReaderMonitor(
        events,
        poll_ms=200,
        backoff_initial=0.01,
        backoff_max=0.05,
        context_factory=lambda: FakeContext(world),  # type: ignore[arg-type,return-value]
    )
    monitor.start()
    assert monitor.wait_ready(3)
    yield monitor, events
    monitor.stop()


def test_start_reports_readers_then_cards(world: World, running) -> None:  # type: ignore[no-untyped-def]
    monitor, events = running
    assert isinstance(events.next(), MonitorRecovered)
    assert {events.next(), events.next()} == {ReaderAdded("R0"), ReaderAdded("R1")}
    world.change(lambda w: w.readers.update(R1=CPS))
    assert events.next() == CardInserted("R1", CPS, CardKind.CPS)
    world.change(lambda w: w.readers.update(R1=None))
    assert events.next() == CardRemoved("R1")
    assert [s.name for s in monitor.snapshot()] == ["R0", "R1"]


def test_hotplug_through_the_pnp_reader(world: World, running) -> None:  # type: ignore[no-untyped-def]
    monitor, events = running
    events.until(ReaderAdded)
    events.until(ReaderAdded)
    world.change(lambda w: w.readers.update(R2=VITALE))
    assert events.next() == ReaderAdded("R2")
    assert events.next() == CardInserted("R2", VITALE, CardKind.VITALE_2)
    world.change(lambda w: w.readers.pop("R2"))
    assert events.until(ReaderRemoved)[-2:] == [CardRemoved("R2"), ReaderRemoved("R2")]
    assert "R2" not in {s.name for s in monitor.snapshot()}


def test_pcscd_death_is_reported_and_recovered(world: World, running) -> None:  # type: ignore[no-untyped-def]
    monitor, events = running
    world.change(lambda w: w.readers.update(R0=VITALE))
    events.until(CardInserted)
    world.restart(up=False)
    lost = events.until(MonitorDegraded)
    assert CardRemoved("R0") in lost and ReaderRemoved("R0") in lost
    assert isinstance(lost[-1], MonitorDegraded) and lost[-1].reason == "pcsc_service_unavailable"
    assert monitor.degraded == "pcsc_service_unavailable"
    world.restart(up=True)
    back = events.until(CardInserted)
    assert MonitorRecovered() in back and back[-1] == CardInserted("R0", VITALE, CardKind.VITALE_2)
    assert monitor.degraded is None


def test_a_failing_listener_does_not_stop_the_monitor(world: World) -> None:
    seen: queue.Queue[MonitorEvent] = queue.Queue()

    def listener(event: MonitorEvent) -> None:
        seen.put(event)
        raise RuntimeError("listener bug")

    monitor = ReaderMonitor(
        listener,
        poll_ms=200,
        context_factory=lambda: FakeContext(world),  # type: ignore[arg-type,return-value]
    )
    monitor.start()
    try:
        world.change(lambda w: w.readers.update(R0=VITALE))
        while True:
            event = seen.get(timeout=3)
            if isinstance(event, CardInserted):
                break
        assert monitor.degraded is None
    finally:
        monitor.stop()


def test_unexpected_exception_is_reported_then_retried(world: World) -> None:
    events = Events()
    calls = {"n": 0}

    def flaky() -> FakeContext:
        calls["n"] += 1
        if calls["n"] == 1:
            raise ValueError("boom")
        return FakeContext(world)

    monitor = ReaderMonitor(events, poll_ms=200, backoff_initial=0.01, context_factory=flaky)  # type: ignore[arg-type]
    monitor.start()
    try:
        first = events.next()
        assert isinstance(first, MonitorDegraded) and first.reason == "unexpected_error"
        assert isinstance(events.next(), MonitorRecovered)
    finally:
        monitor.stop()
