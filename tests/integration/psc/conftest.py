"""A live simulator with the PSC and Annuaire routers on 127.0.0.1 (uvicorn in a thread)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from hwsim.national import annuaire as sim_annuaire
from hwsim.national import psc as sim_psc
from lgo.events import EventBus
from lgo.national.http import NationalHttpClient
from lgo.national.psc import PscClient
from lgo.services.psc_login import PscLogin
from lgo.sessions import SessionRegistry

CLIENT_ID = "lgo-officine"
CLIENT_SECRET = "lgo-officine-sim-secret"
REDIRECT_URI = "http://127.0.0.1:8700/psc/callback"
PHARMACIST = "10999999997"  # fixture: approves CIBA
ADJOINT = "10999999989"  # fixture: approves CIBA
REFUSER = "10999999971"  # fixture: refuses
SILENT = "10999999963"  # fixture: never answers (timeout)
MANUAL = "10999999955"  # fixture: waits for a control call


@dataclass
class LiveSim:
    base_url: str
    psc: sim_psc.PscProvider


def _app() -> FastAPI:
    app = FastAPI()
    app.include_router(sim_psc.router, prefix="/psc")
    app.include_router(sim_annuaire.router, prefix="/annuaire")
    return app


def fast_provider() -> sim_psc.PscProvider:
    """The fixture provider, polled without the 1 s CIBA interval (keeps the suite fast)."""
    fixture = json.loads(sim_psc.FIXTURE_PATH.read_text(encoding="utf-8"))
    fixture["ciba"]["interval"] = 0
    return sim_psc.PscProvider(fixture)


@pytest.fixture(scope="session")
def psc_sim_server() -> Iterator[str]:
    sim_psc.install(fast_provider())
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


@pytest.fixture
def psc_http(live_sim: LiveSim) -> Iterator[NationalHttpClient]:
    http = NationalHttpClient("psc", live_sim.base_url + "/psc", timeout_s=5.0)
    yield http
    http.close()


@pytest.fixture
def psc_client(psc_http: NationalHttpClient) -> PscClient:
    return PscClient(psc_http, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)


@pytest.fixture
def events() -> EventBus:
    return EventBus()


@pytest.fixture
def registry(events: EventBus) -> SessionRegistry:
    return SessionRegistry(events)


@pytest.fixture
def psc_login(psc_client: PscClient, registry: SessionRegistry) -> Iterator[PscLogin]:
    login = PscLogin(
        psc_client, registry, session_ttl=timedelta(minutes=30), redirect_uri=REDIRECT_URI
    )
    yield login
    login.close()


def spoil_next_token(live_sim: LiveSim, spoil: str) -> None:
    response = httpx.post(f"{live_sim.base_url}/psc/_sim/tokens/next", json={"spoil": spoil})
    response.raise_for_status()


def decide(live_sim: LiveSim, decision: str, login_hint: str) -> list[str]:
    response = httpx.post(
        f"{live_sim.base_url}/psc/_sim/ciba/decide",
        json={"decision": decision, "login_hint": login_hint},
    )
    response.raise_for_status()
    changed: list[str] = response.json()["changed"]
    return changed
