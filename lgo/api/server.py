"""Run the API with uvicorn on loopback TCP, a Unix socket, or a socket handed over by systemd."""

from __future__ import annotations

import socket

import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from lgo.api.app import create_app
from lgo.bootstrap.container import Container
from lgo.core.settings import Settings
from lgo.runtime.supervision import SupervisedServer

# What a request head (request line and headers) may take while it is incomplete: h11's own bound
# (uvicorn's default), which llhttp does not have.
MAX_HEAD_BYTES = 16 * 1024


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol (llhttp, a C parser: about 0.2 ms less CPU per request than
    the pure-Python h11) with h11's bound on a request head, which llhttp lacks: it would keep an
    endless header or a flood of headers in memory. A head still incomplete after more than
    :data:`MAX_HEAD_BYTES` read after the one it began in is refused with uvicorn's own 400, as h11
    refused it (docs/api.md)."""

    head_pending = False  # a request head has begun and is not complete yet
    head_bytes = 0  # bytes read for it after the read it began in (at most 256 KiB, asyncio's)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.head_pending, self.head_bytes = True, 0

    def on_headers_complete(self) -> None:
        self.head_pending = False
        super().on_headers_complete()

    def data_received(self, data: bytes) -> None:
        pending = self.head_pending
        super().data_received(data)
        if pending and self.head_pending and not self.transport.is_closing():
            self.head_bytes += len(data)
            if self.head_bytes > MAX_HEAD_BYTES:
                msg = "Invalid HTTP request received."
                self.logger.warning(msg)
                self.send_400_response(msg)


def build_server(
    settings: Settings, container: Container | None = None, sock: socket.socket | None = None
) -> uvicorn.Server:
    # deploy (issue 12): READY=1 / WATCHDOG=1 / STOPPING=1 to systemd (no-op without it).
    return SupervisedServer(server_config(create_app(settings, container), settings, sock))


def server_config(
    app: ASGIApp, settings: Settings, sock: socket.socket | None = None
) -> uvicorn.Config:
    """How the daemon's uvicorn serves ``app`` (the API bench serves its bare floor app with it)."""
    return uvicorn.Config(
        app,
        host=settings.api.host,
        port=settings.api.port,
        uds=str(settings.api.unix_socket) if settings.api.unix_socket and sock is None else None,
        # deploy (issue 12): a socket passed by systemd is handed to serve(sockets=...) below,
        # which keeps its real address family (uvicorn's fd= would treat it as AF_UNIX).
        fd=None,
        # issue 20: httptools rather than h11 (see BoundedHttpToolsProtocol).
        http=BoundedHttpToolsProtocol,
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=False,
        lifespan="on",
        timeout_graceful_shutdown=10,
    )


def serve(settings: Settings, sock: socket.socket | None = None) -> None:
    build_server(settings, sock=sock).run(sockets=[sock] if sock is not None else None)
