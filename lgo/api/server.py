"""Run the API with uvicorn on loopback TCP, a Unix socket, or a socket handed over by systemd."""

from __future__ import annotations

import socket

import uvicorn

from lgo.api.app import create_app
from lgo.bootstrap import Container
from lgo.settings import Settings


def build_server(
    settings: Settings, container: Container | None = None, sock: socket.socket | None = None
) -> uvicorn.Server:
    app = create_app(settings, container)
    config = uvicorn.Config(
        app,
        host=settings.api.host,
        port=settings.api.port,
        uds=str(settings.api.unix_socket) if settings.api.unix_socket and sock is None else None,
        fd=sock.fileno() if sock is not None else None,
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=False,
        lifespan="on",
        timeout_graceful_shutdown=10,
    )
    return uvicorn.Server(config)


def serve(settings: Settings, sock: socket.socket | None = None) -> None:
    build_server(settings, sock=sock).run()
