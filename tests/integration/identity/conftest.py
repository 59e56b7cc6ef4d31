"""A live INSi simulator on 127.0.0.1 (uvicorn in a thread) and an INSi client pointed at it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from hwsim.national import insi as sim_insi
from hwsim.national.context import DEFAULT_FIXTURES, SimState
from lgo.national.insi import InsiClient, InsiConfig, build_insi_client

SIM_IDAM = "LGO-SIM-0001"


@dataclass
class InsiSim:
    base_url: str
    state: SimState

    def queue(self, fault: str, count: int = 1, delay_s: float = 0.0) -> None:
        body = {"fault": fault, "count": count, "delay_s": delay_s}
        httpx.post(f"{self.base_url}/_sim/insi/next", json=body, timeout=5).raise_for_status()

    def requests(self) -> list[dict[str, object]]:
        response = httpx.get(f"{self.base_url}/_sim/insi/requests", timeout=5)
        response.raise_for_status()
        result: list[dict[str, object]] = response.json()
        return result

    def client(self, **config: object) -> InsiClient:
        settings = InsiConfig(idam=str(config.pop("idam", SIM_IDAM)), **config)  # type: ignore[arg-type]
        return build_insi_client(f"{self.base_url}/insi", settings, timeout_s=2.0)


def _app(state: SimState) -> FastAPI:
    app = FastAPI()
    app.state.sim = state
    mount = sim_insi.mount
    app.include_router(mount.router, prefix=mount.prefix)
    assert mount.control is not None
    app.include_router(mount.control, prefix=f"/_sim/{mount.name}")
    return app


@pytest.fixture(scope="session")
def insi_sim_server() -> Iterator[tuple[str, SimState]]:
    state = SimState(fixtures_dir=DEFAULT_FIXTURES)
    config = uvicorn.Config(
        _app(state), host="127.0.0.1", port=0, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:  # uvicorn exposes no event to await; bounded wait for startup
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("INSi simulator did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}", state
    server.should_exit = True
    thread.join(5)


@pytest.fixture
def insi_sim(insi_sim_server: tuple[str, SimState]) -> InsiSim:
    base_url, state = insi_sim_server
    assert sim_insi.setup is not None
    sim_insi.setup(state)  # fresh identities, empty queue and record
    return InsiSim(base_url, state)
