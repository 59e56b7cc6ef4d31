"""Request ids, one access log line per request, and Prometheus metrics."""

from __future__ import annotations

import contextvars
import os
import re
import time
from collections.abc import Mapping
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lgo.core.logs import HotLogger

log = HotLogger("lgo.access")  # one line a request: written without a bound logger per call
REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
REQUEST_ID_BYTES = re.compile(REQUEST_ID_PATTERN.pattern.encode())  # on the raw header value


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "lgo_http_requests",
            "HTTP requests",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "lgo_http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route"],
            registry=self.registry,
        )
        self.sse_clients = Gauge(
            "lgo_sse_clients", "Connected event-stream clients", registry=self.registry
        )
        # One request's two series, found once per (method, route, status): prometheus_client's
        # labels() checks the values and takes a lock at every call.
        self._series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def record(self, method: str, route: str, status: int, elapsed: float) -> None:
        """Count a request and observe its duration."""
        series = self._series.get((method, route, status))
        if series is None:
            series = (
                self.requests.labels(method, route, str(status)),
                self.latency.labels(method, route),
            )
            self._series[(method, route, status)] = series
        series[0].inc()
        series[1].observe(elapsed)


def new_request_id() -> str:
    """A random UUID (version 4) as text, as ``str(uuid.uuid4())`` writes it, at half the cost."""
    raw = bytearray(os.urandom(16))
    raw[6] = raw[6] & 0x0F | 0x40  # version 4
    raw[8] = raw[8] & 0x3F | 0x80  # RFC 4122 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _structlog_var(name: str) -> contextvars.ContextVar[Any]:
    """The context variable behind structlog's ``bind_contextvars(name=...)`` (structlog's
    ``merge_contextvars`` puts it on every line), taken from the token of a first binding: a
    request sets it directly, without the key's lookup that each bind and unbind do."""
    tokens = structlog.contextvars.bind_contextvars(**{name: ...})
    structlog.contextvars.reset_contextvars(**tokens)
    return tokens[name].var


_REQUEST_ID_VAR = _structlog_var("request_id")


class RequestContext:
    """Give each request an id (kept from X-Request-ID when sane), log it, measure it."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def handle(
        self, scope: Scope, receive: Receive, send: Send, headers: Mapping[bytes, bytes]
    ) -> None:
        """Run an HTTP request with its id, measured and logged."""
        incoming = headers.get(b"x-request-id")
        if incoming is not None and REQUEST_ID_BYTES.match(incoming):
            request_id, header = incoming.decode("latin-1"), incoming
        else:
            request_id = new_request_id()
            header = request_id.encode()
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500
        started = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", []).append((b"x-request-id", header))
            await send(message)

        _REQUEST_ID_VAR.set(request_id)  # structlog.contextvars.bind_contextvars(request_id=…)
        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", "unmatched")
            method = scope["method"]
            self.metrics.record(method, route, status, elapsed)
            log.info(
                "http_request",
                method=method,
                route=route,
                status=status,
                duration_ms=round(elapsed * 1000, 2),
            )
            _REQUEST_ID_VAR.set(...)  # what unbind_contextvars("request_id") sets
