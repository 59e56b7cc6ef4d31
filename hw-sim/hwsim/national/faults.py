"""Fault injection per service and per call.

A fault is armed for a service (optionally one method and a path fragment) for the next ``times``
calls (``None``: until cleared). The middleware asks :meth:`FaultBoard.take` once per request.

kinds
- ``latency``: wait ``delay_s`` then answer normally.
- ``timeout``: process the request, then hold the answer ``delay_s`` (default 30 s), longer than
  any client timeout: the worst case for idempotency (the server did the work, the client never
  knows).
- ``error``: answer ``status`` (default 503) with a problem+json body, without processing.
- ``malformed``: process the request, then answer a truncated, non-parsable body (same status).
- ``duplicate``: the request is delivered twice to the service (as a proxy retrying would do); the
  client gets the second answer. Idempotent services must absorb it.
- ``outage``: every call of the service gets 503 + ``Retry-After`` for ``duration_s`` seconds.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from enum import StrEnum

from pydantic import BaseModel, Field


class FaultKind(StrEnum):
    LATENCY = "latency"
    TIMEOUT = "timeout"
    ERROR = "error"
    MALFORMED = "malformed"
    DUPLICATE = "duplicate"
    OUTAGE = "outage"


class FaultSpec(BaseModel):
    service: str = Field(min_length=1)
    kind: FaultKind
    method: str | None = Field(None, description="Only this HTTP method (e.g. POST).")
    path_contains: str | None = Field(None, description="Only paths containing this text.")
    times: int | None = Field(
        1, ge=1, description="Number of calls affected; null = until cleared."
    )
    delay_s: float = Field(0.0, ge=0, le=600)
    status: int = Field(503, ge=400, le=599)
    duration_s: float = Field(60.0, gt=0, le=86_400, description="Outage length.")


class Fault(BaseModel):
    id: int
    spec: FaultSpec
    remaining: int | None
    until_monotonic: float | None = None

    def matches(self, service: str, method: str, path: str) -> bool:
        spec = self.spec
        return (
            spec.service == service
            and (spec.method is None or spec.method.upper() == method)
            and (spec.path_contains is None or spec.path_contains in path)
        )


class FaultBoard:
    """Thread-safe set of armed faults."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)
        self._monotonic = monotonic

    def arm(self, spec: FaultSpec) -> Fault:
        until = None
        remaining = spec.times
        if spec.kind is FaultKind.OUTAGE:
            until, remaining = self._monotonic() + spec.duration_s, None
        fault = Fault(id=next(self._ids), spec=spec, remaining=remaining, until_monotonic=until)
        with self._lock:
            self._faults.append(fault)
        return fault

    def take(self, service: str, method: str, path: str) -> FaultSpec | None:
        """The fault for this call (consuming one use), or None."""
        now = self._monotonic()
        with self._lock:
            self._faults = [f for f in self._faults if not _spent(f, now)]
            for fault in self._faults:
                if fault.matches(service, method, path):
                    if fault.remaining is not None:
                        fault.remaining -= 1
                    return fault.spec
        return None

    def list(self) -> list[Fault]:
        now = self._monotonic()
        with self._lock:
            return [f.model_copy() for f in self._faults if not _spent(f, now)]

    def clear(self, service: str | None = None) -> int:
        with self._lock:
            before = len(self._faults)
            self._faults = [
                f for f in self._faults if service is not None and f.spec.service != service
            ]
            return before - len(self._faults)


def _spent(fault: Fault, now: float) -> bool:
    if fault.until_monotonic is not None and now >= fault.until_monotonic:
        return True
    return fault.remaining is not None and fault.remaining <= 0
