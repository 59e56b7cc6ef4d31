"""Who may talk to the daemon.

- ``Host`` must be a loopback name (defeats DNS rebinding: a hostile page that rebinds its own name to
  127.0.0.1 still sends its own name as Host).
- ``Origin``, when a browser sends one, must be the daemon's own origin (defeats cross-site requests;
  no CORS headers are ever emitted, so other origins cannot read answers either).
- Every ``/v1`` and ``/metrics`` request carries ``Authorization: Bearer <counter token>``.

The Host/Origin guard runs in :class:`RequestGate`, a pure ASGI middleware, so that it also covers
streaming responses and websockets, and it answers with problem+json like every other error.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence

from starlette.types import ASGIApp, Receive, Scope, Send

from lgo.api.direct import Lane
from lgo.api.limits import BodySizeLimit
from lgo.api.observability import Metrics, RequestContext
from lgo.core.errors import ForbiddenHost, ForbiddenOrigin, LgoError
from lgo.core.settings import LOOPBACK_NAMES, ApiSettings

LOOPBACK_HOSTS = frozenset({*LOOPBACK_NAMES, "[::1]"})


def split_host(value: str) -> tuple[str, int | None]:
    """'127.0.0.1:8700' → ('127.0.0.1', 8700); '[::1]:8700' → ('::1', 8700)."""
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return value, None
        host, rest = value[1:end], value[end + 1 :]
        port = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port = value.partition(":")
    return host, int(port) if port.isdigit() else None


# Distinct Host and Origin values whose verdict a guard remembers (a client sends the same few).
VERDICTS_KEPT = 64


class HostOriginGuard:
    """The Host and Origin rules (module docstring), applied by :class:`RequestGate`."""

    def __init__(self, settings: ApiSettings) -> None:
        self.hosts = {*(h.lower().strip("[]") for h in LOOPBACK_HOSTS)}
        self.hosts.update(h.lower() for h in settings.extra_allowed_hosts)
        self.port = settings.port
        self.unix = settings.unix_socket is not None
        # The verdict on a raw header value, worked out once: the settings never change.
        self.host_allowed = functools.lru_cache(VERDICTS_KEPT)(self._host_allowed)
        self.origin_allowed = functools.lru_cache(VERDICTS_KEPT)(self._origin_allowed)

    def _host_allowed(self, value: bytes) -> bool:
        return split_host(value.decode("latin-1"))[0] in self.hosts

    def _origin_allowed(self, value: bytes) -> bool:
        return self.allowed_origin(value.decode("latin-1"))

    def allowed_origin(self, origin: str) -> bool:
        scheme, sep, rest = origin.partition("://")
        if not sep or scheme != "http" or "/" in rest:
            return False
        host, port = split_host(rest)
        return host in self.hosts and (self.unix or port == self.port)

    def refusal(
        self, headers: Mapping[bytes, bytes], raw: Sequence[tuple[bytes, bytes]]
    ) -> LgoError | None:
        """Why a request with these headers (``raw``; ``headers``: the last of each name) is
        refused, if it is. Two Host headers are refused (RFC 9112 §3.2; h11 refused them before
        uvicorn parsed with httptools): only counted when some name repeats."""
        if not self.host_allowed(headers.get(b"host", b"")) or (
            len(headers) != len(raw) and _hosts(raw) > 1
        ):
            return ForbiddenHost()
        origin = headers.get(b"origin")
        if origin is not None and not self.origin_allowed(origin):
            return ForbiddenOrigin()
        return None


class RequestGate:
    """lgo's three request layers as one ASGI middleware (one call, one read of the headers),
    in their order: the Host/Origin guard (:class:`HostOriginGuard`), the body size cap
    (lgo/api/limits.py), then the request id, access log and metrics (lgo/api/observability.py).
    A request refused by the first two is answered at once, like before, and not logged.

    A ``POST`` to one of ``lane_paths`` (the dispensation routes served directly) then goes, in its
    own request context (same id, access line and metrics), to the :class:`~lgo.api.direct.Lane`,
    which serves it below Starlette's stack or hands it to ``app`` (lgo/api/direct.py)."""

    def __init__(
        self,
        app: ASGIApp,
        settings: ApiSettings,
        max_body_bytes: int,
        metrics: Metrics,
        lane_paths: frozenset[str] = frozenset(),
    ) -> None:
        self.app = app
        self.guard = HostOriginGuard(settings)
        self.limit = BodySizeLimit(max_body_bytes)
        self.context = RequestContext(app, metrics)
        self.lane_paths = lane_paths
        self.lane = RequestContext(Lane(app), metrics)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            await self.app(scope, receive, send)
            return
        raw = scope["headers"]
        headers = dict(raw)
        error = self.guard.refusal(headers, raw)
        if error is not None:
            await _refuse(send, error, scope)
        elif kind == "websocket":
            await self.app(scope, receive, send)
        elif (body := await self.limit.read(scope, receive, send, headers)) is not None:
            if scope["method"] == "POST" and scope["path"] in self.lane_paths:
                await self.lane.handle(scope, body, send, headers)
            else:
                await self.context.handle(scope, body, send, headers)


def _hosts(raw: Sequence[tuple[bytes, bytes]]) -> int:
    return sum(1 for name, _ in raw if name == b"host")


async def _refuse(send: Send, error: LgoError, scope: Scope) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008})
        return
    body = json.dumps(error.problem(scope.get("path"))).encode()
    await send(
        {
            "type": "http.response.start",
            "status": error.status,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
