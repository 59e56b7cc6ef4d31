"""PSC and Annuaire test fixtures on the team's live national simulator (real HTTP, 127.0.0.1)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest
from fastapi.testclient import TestClient

from hwsim.national import psc as sim_psc
from hwsim.national.context import SimState
from hwsim.national.recorder import RecordedRequest
from lgo.api.app import create_app as create_api
from lgo.bootstrap.container import Container
from lgo.core.events import EventBus
from lgo.core.settings import load_settings
from lgo.national.psc import PscClient
from lgo.national.transport import NationalHttpClient
from lgo.services.counters import add_counter
from lgo.services.psc_login import PscLogin
from lgo.services.sessions import SessionRegistry
from lgo.store import migrate
from tests.fixtures.api import ApiHarness
from tests.fixtures.national import NationalSim

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
    sim: SimState

    @property
    def psc(self) -> sim_psc.PscProvider:
        return sim_psc.provider_of(self.sim)

    def recorded(self, service: str) -> list[RecordedRequest]:
        return self.sim.recorder.entries(service, None)


@pytest.fixture
def live_sim(national_sim: NationalSim) -> LiveSim:
    """The team's simulator (tests/fixtures/national.py), freshly reset, with no CIBA polling
    pause (the 1 s interval of the fixture only slows tests down)."""
    national_sim.state.settings["psc_ciba_interval"] = 0
    national_sim.state.settings.pop("psc_minimal_id_token", None)
    national_sim.reset()
    return LiveSim(national_sim.base_url, national_sim.state)


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
    response = httpx.post(f"{live_sim.base_url}/_sim/psc/tokens/next", json={"spoil": spoil})
    response.raise_for_status()


def decide(live_sim: LiveSim, decision: str, login_hint: str) -> list[str]:
    response = httpx.post(
        f"{live_sim.base_url}/_sim/psc/ciba/decide",
        json={"decision": decision, "login_hint": login_hint},
    )
    response.raise_for_status()
    changed: list[str] = response.json()["changed"]
    return changed


@pytest.fixture(scope="module")
def api_psc_module(
    tmp_path_factory: pytest.TempPathFactory, national_sim_server: NationalSim
) -> Iterator[ApiHarness]:
    """The daemon's API (real app, migrated SQLite) wired to the live simulator; built once per
    module because migrating a database costs more than the tests that use it."""
    settings = load_settings(
        state_dir=tmp_path_factory.mktemp("psc-api") / "state",
        hardware={"pcsc_enabled": False},
        national={"base_url": national_sim_server.base_url, "timeout_s": 5.0},
    )
    container = Container(settings)
    migrate.upgrade(container.db)
    _, token = add_counter(container.db, "comptoir-1")
    app = create_api(settings, container)
    base = f"http://127.0.0.1:{settings.api.port}"
    headers = {"Authorization": f"Bearer {token}"}
    with TestClient(app, base_url=base, headers=headers) as client:
        yield ApiHarness(client, token, container, settings)


@pytest.fixture
def api_psc(api_psc_module: ApiHarness, live_sim: LiveSim) -> ApiHarness:
    """Per test: no open session, no pending revocation, an empty prescriber cache."""
    container = api_psc_module.container
    container.sessions.close("test_reset")
    container.psc.login.wait_revocations()
    container.psc.annuaire.forget()
    live_sim.sim.recorder.clear()
    return api_psc_module
