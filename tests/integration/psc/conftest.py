"""A live simulator with the PSC and Annuaire routers on 127.0.0.1 (uvicorn in a thread)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import uvicorn
from fastapi import FastAPI

from hwsim.national import annuaire as sim_annuaire
from hwsim.national import psc as sim_psc


@dataclass
class LiveSim:
    base_url: str
    psc: sim_psc.PscProvider


def _app() -> FastAPI:
    app = FastAPI()
    app.include_router(sim_psc.router, prefix="/psc")
    app.include_router(sim_annuaire.router, prefix="/annuaire")
    return app


@pytest.fixture(scope="session")
def psc_sim_server() -> Iterator[str]:
    config = uvicorn.Config(_app(), host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:  # uvicorn exposes no event to await; bounded wait for startup
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("simulator did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(5)


@pytest.fixture
def live_sim(psc_sim_server: str) -> Iterator[LiveSim]:
    sim_psc.provider.reset()
    sim_annuaire.directory.reset()
    yield LiveSim(psc_sim_server, sim_psc.provider)
