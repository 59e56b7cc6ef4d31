"""ASGI middleware that records every service request and applies the armed faults.

It keys everything by service name, found from the longest mounted prefix matching the path, so a
router registered in ``app.SERVICES`` gets recording and faults without a line of its own.
Control endpoints (``/_sim``) and unknown paths pass through untouched.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hwsim.national.context import SimState
from hwsim.national.faults import FaultKind, FaultSpec
from hwsim.national.recorder import RecordedRequest, public_headers

MAX_REQUEST_BYTES = 8 * 1024 * 1024
DEFAULT_HANG_S = 30.0
MALFORMED_BODY = b'{"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "Med'


class _Captured:
    """A whole response held in memory, so a fault can delay, alter or replace it."""

    def __init__(self) -> None:
        self.start: Message | None = None
        self.body = bytearray()

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.start = message
        elif message["type"] == "http.response.body":
            self.body.extend(message.get("body", b""))

    @property
    def status(self) -> int:
        return int(self.start["status"]) if self.start else 500


def _problem(
    status: int, title: str, extra_headers: Sequence[tuple[bytes, bytes]] = ()
) -> _Captured:
    captured = _Captured()
    body = json.dumps({"type": "about:blank", "title": title, "status": status}).encode()
    headers = [(b"content-type", b"application/problem+json"), *extra_headers]
    headers.append((b"content-length", str(len(body)).encode()))
    captured.start = {"type": "http.response.start", "status": status, "headers": headers}
    captured.body.extend(body)
    return captured


class RecorderFaultMiddleware:
    def __init__(
        self, app: ASGIApp, *, state: Callable[[], SimState], prefixes: dict[str, str]
    ) -> None:
        self.app = app
        self._state = state
        # Longest prefix first so /dmp/xds/... never matches a shorter /dmp.
        self._prefixes = sorted(prefixes.items(), key=lambda item: -len(item[0]))

    def service_for(self, path: str) -> str | None:
        for prefix, name in self._prefixes:
            if path == prefix or path.startswith(prefix.rstrip("/") + "/"):
                return name
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        service = self.service_for(scope.get("path", "")) if scope["type"] == "http" else None
        if service is None:
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        sim = self._state()
        entry = sim.recorder.add(self._entry(sim, scope, service, body))
        if body is None:
            answer = _problem(413, "Request too large")
            sim.recorder.finish(entry, 413)
            await _emit(send, answer)
            return
        fault = sim.faults.take(service, scope["method"], scope["path"])
        entry.fault = fault.kind.value if fault else None
        answer = await self._answer(scope, body, fault)
        if fault is not None and fault.kind is FaultKind.TIMEOUT:
            await asyncio.sleep(fault.delay_s or DEFAULT_HANG_S)
        sim.recorder.finish(entry, answer.status)
        await _emit(send, answer)

    @staticmethod
    def _entry(sim: SimState, scope: Scope, service: str, body: bytes | None) -> RecordedRequest:
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        kept = public_headers(headers)
        return RecordedRequest(
            seq=0,
            at=sim.clock.now().isoformat(),
            service=service,
            method=scope["method"],
            path=scope["path"],
            query=scope.get("query_string", b"").decode("latin-1"),
            headers=kept,
            body_size=len(body) if body is not None else -1,
            idempotency_key=kept.get("idempotency-key"),
            request_id=kept.get("x-request-id"),
        )

    async def _answer(self, scope: Scope, body: bytes, fault: FaultSpec | None) -> _Captured:
        kind = fault.kind if fault else None
        if fault is not None and kind is FaultKind.OUTAGE:
            return _problem(503, "Service en maintenance", [(b"retry-after", b"30")])
        if fault is not None and kind is FaultKind.ERROR:
            return _problem(fault.status, "Simulated failure")
        if fault is not None and kind is FaultKind.LATENCY:
            await asyncio.sleep(fault.delay_s)
        answer = await self._run(scope, body)
        if kind is FaultKind.DUPLICATE:
            answer = await self._run(scope, body)
        if kind is FaultKind.MALFORMED:
            answer.body = bytearray(MALFORMED_BODY)
            answer.start = _with_length(answer.start, len(MALFORMED_BODY))
        return answer

    async def _run(self, scope: Scope, body: bytes) -> _Captured:
        captured = _Captured()
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return {"type": "http.disconnect"}

        await self.app(scope, replay, captured.send)
        return captured


def _with_length(start: Message | None, length: int) -> Message:
    base: dict[str, Any] = dict(start or {"type": "http.response.start", "status": 500})
    headers = [(k, v) for k, v in base.get("headers", []) if k.lower() != b"content-length"]
    headers.append((b"content-length", str(length).encode()))
    base["headers"] = headers
    return base


async def _read_body(receive: Receive) -> bytes | None:
    """The whole request body, or None past :data:`MAX_REQUEST_BYTES`."""
    chunks = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return bytes(chunks)
        chunks.extend(message.get("body", b""))
        if len(chunks) > MAX_REQUEST_BYTES:
            return None
        if not message.get("more_body", False):
            return bytes(chunks)


async def _emit(send: Send, answer: _Captured) -> None:
    start = answer.start or {"type": "http.response.start", "status": 500, "headers": []}
    try:
        await send(start)
        await send({"type": "http.response.body", "body": bytes(answer.body)})
    except (OSError, RuntimeError):
        pass  # the client left (e.g. after its own timeout): nothing to deliver
