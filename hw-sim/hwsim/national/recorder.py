"""Recorder of every request a simulated service receives (for test assertions and technicians).

Only metadata is kept: method, path, query, service, headers without secrets, body size, idempotency
key, request id, status and injected fault. Never the body (it carries health data and tokens).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable

from pydantic import BaseModel

SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "dpop"}
)
MAX_ENTRIES = 10_000


def public_headers(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Headers minus credentials (by name, or any name mentioning a token, secret or password)."""
    kept: dict[str, str] = {}
    for name, value in headers:
        lowered = name.lower()
        if lowered in SECRET_HEADERS or any(
            word in lowered for word in ("token", "secret", "password", "assertion")
        ):
            continue
        kept[lowered] = value
    return kept


class RecordedRequest(BaseModel):
    seq: int
    at: str  # simulator clock, ISO 8601 UTC
    service: str
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body_size: int
    idempotency_key: str | None
    request_id: str | None
    status: int | None = None  # None: the client left before the answer (timeout fault)
    fault: str | None = None


class Recorder:
    """Thread-safe, bounded list of :class:`RecordedRequest` (the oldest fall off after 10 000)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: deque[RecordedRequest] = deque(maxlen=MAX_ENTRIES)
        self._seq = 0

    def add(self, entry: RecordedRequest) -> RecordedRequest:
        with self._lock:
            self._seq += 1
            entry.seq = self._seq
            self._entries.append(entry)
        return entry

    def finish(self, entry: RecordedRequest, status: int | None) -> None:
        with self._lock:
            entry.status = status

    def entries(
        self, service: str | None = None, method: str | None = None
    ) -> list[RecordedRequest]:
        with self._lock:
            return [
                e.model_copy()
                for e in self._entries
                if (service is None or e.service == service)
                and (method is None or e.method == method.upper())
            ]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
