"""INSi clients for the national simulator (shared ``national_sim`` fixture, in a thread) and a
simulator in its own process for the memory measurements of hostile replies."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from lgo.api.app import create_app
from lgo.bootstrap.container import Container
from lgo.core.settings import load_settings
from lgo.national.insi import InsiClient, InsiConfig, build_insi_client
from lgo.services.counters import add_counter
from lgo.store import migrate
from tests.fixtures.api import ApiHarness
from tests.fixtures.national import NationalSim

SIM_IDAM = "LGO-SIM-0001"


@dataclass
class InsiSim:
    base_url: str

    def queue(self, fault: str, count: int = 1, delay_s: float = 0.0) -> None:
        body = {"fault": fault, "count": count, "delay_s": delay_s}
        httpx.post(f"{self.base_url}/_sim/insi/next", json=body, timeout=5).raise_for_status()

    def requests(self) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.base_url}/_sim/insi/requests", timeout=5)
        response.raise_for_status()
        result: list[dict[str, Any]] = response.json()
        return result

    def client(self, timeout_s: float = 2.0, **config: Any) -> InsiClient:
        settings = InsiConfig(idam=config.pop("idam", SIM_IDAM), **config)
        return build_insi_client(f"{self.base_url}/insi", settings, timeout_s=timeout_s)


@pytest.fixture
def insi_sim(national_sim: NationalSim) -> InsiSim:
    return InsiSim(national_sim.base_url)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def insi_sim_process() -> Iterator[InsiSim]:
    """The simulator as a separate process: its own memory does not count in the test's."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "hwsim.national.app", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:  # no readiness event across processes: poll the control API, bounded
        try:
            httpx.get(f"{base_url}/_sim/services", timeout=1).raise_for_status()
            break
        except httpx.HTTPError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError("simulator process did not start") from None
            time.sleep(0.05)
    try:
        yield InsiSim(base_url)
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def api_identity(tmp_path: Any, national_sim: NationalSim) -> Iterator[ApiHarness]:
    """The daemon's API on a migrated SQLite database, national services = the live simulator."""
    settings = load_settings(
        state_dir=tmp_path / "state",
        hardware={"pcsc_enabled": False},
        national={"base_url": national_sim.base_url, "timeout_s": 2.0},
    )
    container = Container(settings)
    migrate.upgrade(container.db)
    _, token = add_counter(container.db, "comptoir-identite")
    app = create_app(settings, container)
    base = f"http://127.0.0.1:{settings.api.port}"
    with TestClient(app, base_url=base, headers={"Authorization": f"Bearer {token}"}) as client:
        yield ApiHarness(client, token, container, settings)
