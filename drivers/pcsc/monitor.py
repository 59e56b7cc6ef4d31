"""The reader/card monitor: one thread around SCardGetStatusChange, including the PnP reader.

Unlike pyscard's monitors (anchors.md §2.1) it never dies silently:
- pcscd gone (NO_SERVICE, SERVICE_STOPPED, comm errors): every known card and reader is reported
  removed, a :class:`MonitorDegraded` event is emitted, and the context is re-established with
  exponential backoff; once back, :class:`MonitorRecovered` then the readers and cards as found;
- any other unexpected failure is reported as :class:`MonitorDegraded` too and the loop restarts;
- a failing listener is logged and skipped, it cannot stop the monitor.

Listeners run on the monitor thread and must be quick and thread-safe (the daemon's EventBus is).
``stop()`` wakes the blocked call with SCardCancel and joins the thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from smartcard import scard

from drivers import errors
from drivers.pcsc.atr import CardKind, classify_atr
from drivers.pcsc.context import PNP_READER, Context, ReaderStatus

log = logging.getLogger(__name__)

# Drop SCARD_STATE_CHANGED when echoing an event state back as the next "current" state.
_STATE_MASK = ~scard.SCARD_STATE_CHANGED


@dataclass(frozen=True, slots=True)
class ReaderAdded:
    reader: str


@dataclass(frozen=True, slots=True)
class ReaderRemoved:
    reader: str


@dataclass(frozen=True, slots=True)
class CardInserted:
    reader: str
    atr: bytes
    kind: CardKind


@dataclass(frozen=True, slots=True)
class CardRemoved:
    reader: str


@dataclass(frozen=True, slots=True)
class MonitorDegraded:
    reason: str  # error code, e.g. "pcsc_service_unavailable"
    retry_in: float


@dataclass(frozen=True, slots=True)
class MonitorRecovered:
    pass


MonitorEvent = (
    ReaderAdded | ReaderRemoved | CardInserted | CardRemoved | MonitorDegraded | MonitorRecovered
)
Listener = Callable[[MonitorEvent], None]


@dataclass(frozen=True, slots=True)
class ReaderSnapshot:
    """What the monitor currently believes about one reader."""

    name: str
    card_present: bool
    atr: bytes | None
    kind: CardKind | None


class ReaderMonitor:
    """Watch all readers; call ``listener`` with typed events. Start with :meth:`start`."""

    def __init__(
        self,
        listener: Listener,
        *,
        poll_ms: int = 1000,
        backoff_initial: float = 0.2,
        backoff_max: float = 5.0,
        context_factory: Callable[[], Context] = Context,
    ) -> None:
        self._listener = listener
        self._poll_ms = poll_ms
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._context_factory = context_factory
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._context: Context | None = None
        self._thread: threading.Thread | None = None
        self._states: dict[str, int] = {}
        self._cards: dict[str, tuple[bytes, CardKind]] = {}
        self._degraded: str | None = "starting"
        self._ready = threading.Event()

    # --- public API (any thread) -----------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="pcsc-monitor", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        with self._lock:
            if self._context is not None:
                self._context.cancel()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def wait_ready(self, timeout: float) -> bool:
        """True once a first full scan of the readers was done (healthy or not)."""
        return self._ready.wait(timeout)

    @property
    def degraded(self) -> str | None:
        """None when healthy, else the reason code."""
        return self._degraded

    def snapshot(self) -> list[ReaderSnapshot]:
        with self._lock:
            return [
                ReaderSnapshot(
                    name=name,
                    card_present=name in self._cards,
                    atr=self._cards[name][0] if name in self._cards else None,
                    kind=self._cards[name][1] if name in self._cards else None,
                )
                for name in sorted(self._states)
            ]

    # --- monitor thread ------------------------------------------------------------------------

    def _run(self) -> None:
        backoff = self._backoff_initial
        while not self._stop.is_set():
            try:
                self._open_context()
                if self._degraded is not None:
                    self._degraded = None
                    self._emit(MonitorRecovered())
                backoff = self._backoff_initial
                self._watch()
            except errors.DriverError as exc:
                self._fail(exc.code, backoff)
                backoff = min(backoff * 2, self._backoff_max)
            except Exception:  # never die silently: report, back off, start again
                log.exception("pcsc_monitor_unexpected_error")
                self._fail("unexpected_error", backoff)
                backoff = min(backoff * 2, self._backoff_max)
        self._close_context()

    def _open_context(self) -> None:
        context = self._context_factory()
        with self._lock:
            self._context = context
        if self._stop.is_set():
            context.cancel()

    def _close_context(self) -> None:
        with self._lock:
            context, self._context = self._context, None
        if context is not None:
            try:
                context.release()
            except Exception:  # a context whose daemon died cannot be released cleanly
                log.debug("pcsc_context_release_failed")

    def _fail(self, reason: str, retry_in: float) -> None:
        self._close_context()
        self._forget_all()
        first = self._degraded is None or self._degraded == "starting"
        self._degraded = reason
        self._ready.set()
        if first:
            log.warning("pcsc_monitor_degraded reason=%s", reason)
        self._emit(MonitorDegraded(reason, retry_in))
        self._stop.wait(retry_in)

    def _watch(self) -> None:
        context = self._context
        assert context is not None
        pnp_state = 0
        self._sync_readers(context.list_readers())
        self._ready.set()
        while not self._stop.is_set():
            states = [(name, state) for name, state in self._states.items()]
            states.append((PNP_READER, pnp_state))
            changes = context.get_status_change(states, self._poll_ms)
            if changes is None:
                continue
            readers_changed = False
            for status in changes:
                if status.reader == PNP_READER:
                    readers_changed = readers_changed or status.changed
                    pnp_state = status.event_state & _STATE_MASK
                elif status.changed:
                    readers_changed = self._apply(status) or readers_changed
            if readers_changed:
                self._sync_readers(context.list_readers())

    def _sync_readers(self, readers: list[str]) -> None:
        current = set(readers)
        for name in sorted(set(self._states) - current):
            self._drop_reader(name)
        for name in sorted(current - set(self._states)):
            with self._lock:
                self._states[name] = 0  # SCARD_STATE_UNAWARE: the next call reports its state
            self._emit(ReaderAdded(name))

    def _apply(self, status: ReaderStatus) -> bool:
        """Update one reader; True when it vanished (the reader list must be re-read)."""
        name = status.reader
        if status.gone:
            self._drop_reader(name)
            return True
        with self._lock:
            self._states[name] = status.event_state & _STATE_MASK
        known = self._cards.get(name)
        if status.present:
            atr = status.atr if not status.mute else b""
            if known is not None and known[0] == atr:
                return False
            if known is not None:  # swapped between two polls
                self._card_out(name)
            self._card_in(name, atr)
        elif known is not None:
            self._card_out(name)
        return False

    def _card_in(self, name: str, atr: bytes) -> None:
        kind = classify_atr(atr)
        with self._lock:
            self._cards[name] = (atr, kind)
        self._emit(CardInserted(name, atr, kind))

    def _card_out(self, name: str) -> None:
        with self._lock:
            self._cards.pop(name, None)
        self._emit(CardRemoved(name))

    def _drop_reader(self, name: str) -> None:
        if name in self._cards:
            self._card_out(name)
        with self._lock:
            self._states.pop(name, None)
        self._emit(ReaderRemoved(name))

    def _forget_all(self) -> None:
        for name in sorted(self._states):
            self._drop_reader(name)

    def _emit(self, event: MonitorEvent) -> None:
        try:
            self._listener(event)
        except Exception:  # a listener bug must not stop hardware monitoring
            log.exception("pcsc_monitor_listener_failed event=%s", type(event).__name__)
