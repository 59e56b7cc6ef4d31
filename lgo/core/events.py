"""In-process event bus feeding ``GET /v1/events`` (server-sent events).

``publish`` may be called from any thread (driver threads, the outbox worker): delivery is handed to the
event loop with ``call_soon_threadsafe``. Each subscriber has a bounded queue; a subscriber that does
not keep up loses its backlog and is told so by a ``stream.overflow`` event, rather than making
the daemon's memory grow. Recent events are kept in a ring so that a reconnecting client can resume
with ``Last-Event-ID``. Events carry ids and states, never health data.

Who receives an event is decided when it is published, in the publisher's thread: an event no
subscriber wants does not wake the event loop. A subscription may add a *screen*, a function of the
event run there too, that says whether its subscriber must be woken (the DMP auto-feed's screen
handles a patient without a qualified INS itself, so the feed is not woken for nothing). The other
subscribers' delivery is handed to the loop before any screen runs, so an event a screen publishes
reaches them after the one it screens.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from lgo.core.logs import get_logger

log = get_logger(__name__)
STREAM_END = "stream.end"  # internal: ends a subscription, never sent to a client


@dataclass(frozen=True)
class Event:
    id: int
    type: str
    data: dict[str, Any]
    at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "type": self.type, "at": self.at.isoformat(), "data": self.data}


Screen = Callable[[Event], bool]


def _passes(screen: Screen, event: Event) -> bool:
    try:
        return screen(event)
    except Exception:  # the publisher (a commit's thread) must not fail for a subscriber
        log.exception("event_screen_failed", event_type=event.type)
        return True


class EventBus:
    def __init__(self, history: int = 500, queue_size: int = 1000) -> None:
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._history: deque[Event] = deque(maxlen=history)
        # Each subscriber's queue, with the event types it wants (None: all of them) and its screen.
        self._subscribers: dict[asyncio.Queue[Event], tuple[frozenset[str] | None, Screen | None]]
        self._subscribers = {}
        self._queue_size = queue_size
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind_loop(self, loop: asyncio.AbstractEventLoop | None) -> None:
        self._loop = loop

    def publish(self, type: str, data: dict[str, Any] | None = None) -> Event:
        with self._lock:
            event = Event(next(self._ids), type, dict(data or {}))
            self._history.append(event)
        loop = self._loop
        if loop is None or loop.is_closed():
            return event
        wanting = [
            (queue, screen)
            for queue, (types, screen) in list(self._subscribers.items())  # one C call: no race
            if types is None or type in types
        ]
        if wanting:  # else nobody to wake
            self._deliver(loop, event, [queue for queue, screen in wanting if screen is None])
            screened = [queue for queue, screen in wanting if screen and _passes(screen, event)]
            self._deliver(loop, event, screened)
        return event

    def _deliver(
        self, loop: asyncio.AbstractEventLoop, event: Event, queues: list[asyncio.Queue[Event]]
    ) -> None:
        if not queues:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._fan_out(event, queues)
        else:
            loop.call_soon_threadsafe(self._fan_out, event, queues)

    def recent(self, after_id: int = 0, types: frozenset[str] | None = None) -> list[Event]:
        with self._lock:
            return [
                e for e in self._history if e.id > after_id and (types is None or e.type in types)
            ]

    def _fan_out(self, event: Event, queues: list[asyncio.Queue[Event]]) -> None:
        for queue in queues:
            if queue not in self._subscribers:
                continue  # closed since the event was published
            if queue.full():
                # Drop the backlog rather than grow: the client learns it must reload its state.
                lost = 0
                while not queue.empty():
                    queue.get_nowait()
                    lost += 1
                queue.put_nowait(Event(event.id, "stream.overflow", {"lost": lost}))
            queue.put_nowait(event)

    def open(
        self,
        last_event_id: int | None = None,
        types: frozenset[str] | None = None,
        screen: Screen | None = None,
    ) -> Subscription:
        """A subscription read with a timeout (:meth:`Subscription.next`); close it when done.
        With ``last_event_id``, the kept events after it come first; with ``types``, only events
        of these types (and ``stream.overflow``) are delivered. With ``screen``, only the events
        of these types for which ``screen(event)`` is true: it runs in the publisher's thread (a
        database thread, a driver thread, the loop), so it must be quick, never block and be safe
        in any thread; if it raises, the event is delivered. Replayed events are not screened."""
        queue: asyncio.Queue[Event] = asyncio.Queue(self._queue_size)
        self._subscribers[queue] = (types, screen)
        backlog = self.recent(last_event_id, types) if last_event_id is not None else []
        return Subscription(self, queue, backlog)

    def _close(self, queue: asyncio.Queue[Event]) -> None:
        self._subscribers.pop(queue, None)

    def end_streams(self) -> None:
        """Tell every open subscription to end (the daemon is stopping: the streams close
        cleanly instead of holding the graceful shutdown). Call it on the event loop."""
        for queue in list(self._subscribers):
            while queue.full():
                queue.get_nowait()  # the stream ends: its backlog no longer matters
            queue.put_nowait(Event(0, STREAM_END, {}))

    async def subscribe(
        self,
        last_event_id: int | None = None,
        types: frozenset[str] | None = None,
        screen: Screen | None = None,
    ) -> AsyncIterator[Event]:
        subscription = self.open(last_event_id, types, screen)
        try:
            while not subscription.ended:
                event = await subscription.next(None)
                if event is not None:
                    yield event
        finally:
            subscription.close()

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)


class Subscription:
    """One subscriber's queue. :meth:`next` waits with a timeout by cancelling only the queue read
    (an asyncio.Queue read cancels cleanly), never an async generator: cancelling ``anext()`` of a
    generator closes it, and the next read then fails with StopAsyncIteration."""

    def __init__(self, bus: EventBus, queue: asyncio.Queue[Event], backlog: list[Event]) -> None:
        self._bus = bus
        self._queue = queue
        self._backlog = deque(backlog)
        # Events both replayed from the history and queued since subscribing are sent once.
        self._last_id = backlog[-1].id if backlog else 0
        self.ended = False  # the bus ended the stream (daemon stopping)

    async def next(self, timeout: float | None) -> Event | None:
        """The next event, or None when ``timeout`` seconds pass without one or when the stream
        has ended (:attr:`ended`)."""
        while not self.ended:
            if self._backlog:
                return self._backlog.popleft()
            if timeout is None:  # the auto-feed's wait: no timeout context per event
                event = await self._queue.get()
            else:
                try:
                    async with asyncio.timeout(timeout):
                        event = await self._queue.get()
                except TimeoutError:
                    return None
            if event.type == STREAM_END:
                self.ended = True
                return None
            if event.type == "stream.overflow":
                return event  # carries the id of the event that follows it
            if event.id > self._last_id:
                self._last_id = event.id
                return event
        return None

    def close(self) -> None:
        self._bus._close(self._queue)
