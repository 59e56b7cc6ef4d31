"""The real daemon app served by uvicorn on 127.0.0.1 in a thread, for load and hostile tests.

``LiveDaemon`` owns a migrated container (SQLite by default), N counter tokens and an open
pharmacist session; ``url``/``headers(counter)`` give what a front-end would send.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import uvicorn

from lgo.api.app import create_app
from lgo.api.server import BoundedHttpToolsProtocol
from lgo.bootstrap.container import Container
from lgo.bootstrap.dispensing import part_of
from lgo.core.settings import Settings
from lgo.services.counters import add_counter
from lgo.store import migrate
from tests.fixtures.dispensing import LIST_I_PRODUCT, PLAIN_PRODUCT, open_pharmacist_session

START_LIMIT_S = 30.0


@dataclass
class LiveDaemon:
    container: Container
    port: int
    tokens: list[str]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def headers(self, counter: int = 0) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[counter]}"}


@contextmanager
def live_daemon(settings: Settings, counters: int = 1) -> Iterator[LiveDaemon]:
    container = Container(settings)
    migrate.upgrade(container.db)
    tokens = [add_counter(container.db, f"comptoir-{i + 1}")[1] for i in range(counters)]
    part_of(container).catalog.add(LIST_I_PRODUCT)
    part_of(container).catalog.add(PLAIN_PRODUCT)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", settings.api.port))
    config = uvicorn.Config(
        create_app(settings, container),
        http=BoundedHttpToolsProtocol,  # the daemon's HTTP parser (lgo/api/server.py)
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + START_LIMIT_S
    # uvicorn has no "listening" event; its started flag is the documented signal.
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("daemon did not start")
        time.sleep(0.01)
    open_pharmacist_session(container)
    try:
        yield LiveDaemon(container, settings.api.port, tokens)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
