"""Run the API with uvicorn on loopback TCP, a Unix socket, or a socket handed over by systemd."""

from __future__ import annotations

import socket

import uvicorn

from lgo.api.app import create_app
from lgo.bootstrap.container import Container
from lgo.core.settings import Settings
from lgo.runtime.supervision import SupervisedServer


def build_server(
    settings: Settings, container: Container | None = None, sock: socket.socket | None = None
) -> uvicorn.Server:
    app = create_app(settings, container)
    config = uvicorn.Config(
        app,
        host=settings.api.host,
        port=settings.api.port,
        uds=str(settings.api.unix_socket) if settings.api.unix_socket and sock is None else None,
        # deploy (issue 12): a socket passed by systemd is handed to serve(sockets=...) below,
        # which keeps its real address family (uvicorn's fd= would treat it as AF_UNIX).
        fd=None,
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=False,
        lifespan="on",
        timeout_graceful_shutdown=10,
    )
    # deploy (issue 12): READY=1 / WATCHDOG=1 / STOPPING=1 to systemd (no-op without it).
    return SupervisedServer(config)


def serve(settings: Settings, sock: socket.socket | None = None) -> None:
    build_server(settings, sock=sock).run(sockets=[sock] if sock is not None else None)
