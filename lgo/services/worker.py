"""Shared base of the background delivery workers (e-prescription outbox, document deliveries).

One daemon thread runs passes (:meth:`BackgroundWorker.run_once`) back to back while they find
work; when a pass finds nothing it sleeps until :meth:`~BackgroundWorker.notify` is called or the
idle wait (:meth:`~BackgroundWorker.idle_wait`) runs out. An exception in a pass (a database
hiccup) is logged as ``<name>_loop_error`` and the loop goes on: the worker must outlive it.
"""

from __future__ import annotations

import random
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

from lgo.core.logs import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class WorkerPolicy:
    """Retries (exponential backoff, then ``failed``), lease of a claimed item, batch, idle poll."""

    base_delay_s: float = 2.0
    max_delay_s: float = 300.0
    max_attempts: int = 50
    lease_s: float = 60.0
    batch: int = 10
    idle_poll_s: float = 5.0


def backoff_delay(attempts: int, policy: WorkerPolicy, rng: random.Random) -> float:
    """Exponential backoff with "equal jitter" (half fixed, half random), capped."""
    ceiling = min(policy.max_delay_s, policy.base_delay_s * 2 ** max(attempts - 1, 0))
    return float(ceiling / 2 + rng.random() * ceiling / 2)


class BackgroundWorker(ABC):
    """Thread lifecycle and wake-up of a polling worker; subclasses say what one pass does."""

    name: ClassVar[str]
    """Short English name: thread ``lgo-<name>``, log event ``<name>_loop_error``."""

    def __init__(self, idle_poll_s: float) -> None:
        self.idle_poll_s = idle_poll_s
        self.degraded = False
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name=f"lgo-{self.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def notify(self) -> None:
        """Wake the worker now (new work was just queued)."""
        self._wake.set()

    @abstractmethod
    def run_once(self) -> int:
        """One pass: claim and handle a batch; returns how many items were handled."""

    def idle_wait(self) -> float:
        """Seconds to sleep after a pass that found nothing (``notify`` cuts it short)."""
        return self.idle_poll_s

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                if self.run_once() > 0:
                    continue
                wait = self.idle_wait()
            except Exception:  # the worker must survive a database hiccup
                log.exception(f"{self.name}_loop_error")
                wait = self.idle_poll_s  # idle_wait may need the database that just failed
            self._wake.wait(wait)
            self._wake.clear()
