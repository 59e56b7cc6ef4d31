"""DMP tests run on the shared national simulator (``national_sim``, tests/fixtures/national.py)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from lgo.national.dmp import DmpClient
from lgo.national.http import NationalHttpClient, RetryPolicy
from tests.fixtures.national import NationalSim


@pytest.fixture
def dmp_sim(national_sim: NationalSim) -> str:
    """Base URL of a freshly reset simulator (DMP at ``/dmp``, controls at ``/_sim/dmp``)."""
    return national_sim.base_url


@pytest.fixture
def dmp_client(dmp_sim: str) -> Iterator[DmpClient]:
    http = NationalHttpClient(
        "dmp",
        dmp_sim + "/dmp",
        timeout_s=2.0,
        connect_timeout_s=1.0,
        retry=RetryPolicy(attempts=3, backoff_s=0.01),
        sleep=lambda _: None,
    )
    client = DmpClient(http, finess="750000000")
    yield client
    client.close()


def sim_control(base: str, path: str, body: dict[str, object]) -> None:
    httpx.post(f"{base}/_sim/dmp/{path}", json=body, timeout=5).raise_for_status()


def sim_documents(base: str) -> list[dict[str, object]]:
    response = httpx.get(f"{base}/_sim/dmp/documents", timeout=5)
    response.raise_for_status()
    documents: list[dict[str, object]] = response.json()
    return documents


def arm_fault(base: str, **spec: object) -> None:
    """Arm a generic fault of the national app (recorder/fault middleware) on the DMP."""
    response = httpx.post(f"{base}/_sim/faults", json={"service": "dmp", **spec}, timeout=5)
    response.raise_for_status()
