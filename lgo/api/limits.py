"""Request body size cap, applied before any route reads the body.

Starlette buffers a whole body in memory when a route asks for it (every JSON route does), so
without a cap a single request could make the daemon hold gigabytes. The request gate
(lgo/api/security.py) refuses a declared ``Content-Length`` above the cap at once, without reading;
a body within its declared length goes to the app as the server delivers it (the server never
hands over more than the declared length). Any other body (chunked) is counted as it arrives,
refused as soon as the cap is passed, and replayed to the app unchanged once read whole. Every
legitimate body of the API is a few kilobytes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar

from starlette.types import Message, Receive, Scope, Send

from lgo.core.errors import LgoError

DEFAULT_MAX_BODY_BYTES = 1024 * 1024


class PayloadTooLarge(LgoError):
    slug: ClassVar[str] = "payload-too-large"
    status: ClassVar[int] = 413
    title: ClassVar[str] = "Requête trop volumineuse"


class BodySizeLimit:
    def __init__(self, max_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.max_bytes = max_bytes

    async def read(
        self, scope: Scope, receive: Receive, send: Send, headers: Mapping[bytes, bytes]
    ) -> Receive | None:
        """The request's channel with its body read under the cap, or None once refused (413)."""
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await _refuse(send, scope)
            return None
        if b"transfer-encoding" not in headers:
            # The server hands the app exactly the declared length, none without one (RFC 9112
            # §6.3; the parser refuses a Content-Length beside a Transfer-Encoding or repeated):
            # within the cap, nothing to count or hold.
            return receive
        buffered: list[Message] = []
        size = 0
        while True:
            message = await receive()
            buffered.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                await _refuse(send, scope)
                return None
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            # The buffered body first, then the real channel (a streaming response still
            # learns of the client's disconnection).
            return buffered.pop(0) if buffered else await receive()

        return replay


async def _refuse(send: Send, scope: Scope) -> None:
    error = PayloadTooLarge("corps de requête limité à la taille d'une requête de comptoir")
    body = json.dumps(error.problem(scope.get("path"))).encode()
    headers: list[Any] = [
        (b"content-type", b"application/problem+json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),  # the rest of the body is never read
    ]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
