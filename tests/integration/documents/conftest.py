"""DMP tests run on the shared national simulator (``national_sim``, tests/fixtures/national.py)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from hwsim.mss import MssServer, server_tls_context
from hwsim.national.mss_pki import Issued, make_ca, organisation_name, server_name
from lgo.national.dmp import DmpClient
from lgo.national.http import NationalHttpClient, RetryPolicy
from lgo.national.mss import MssConfig
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


# --- MSSanté: test PKI and SMTP server ----------------------------------------------------------


@dataclass(frozen=True)
class MssPki:
    ca_file: Path
    pharmacy: Issued  # client certificate issued by the trusted CA
    foreign: Issued  # client certificate issued by another CA (must be refused)
    server: Issued


@pytest.fixture(scope="session")
def mss_pki(tmp_path_factory: pytest.TempPathFactory) -> MssPki:
    folder = tmp_path_factory.mktemp("mss-pki")
    ca = make_ca(folder / "trusted")
    other = make_ca(folder / "foreign", name="AC INCONNUE")
    subject = organisation_name("PHARMACIE DE DEMONSTRATION", "1750000000", "pharmacie.mssante.fr")
    return MssPki(
        ca_file=ca.cert_file,
        pharmacy=ca.issue(folder / "trusted", "pharmacy", subject, server=False),
        foreign=other.issue(folder / "foreign", "pharmacy", subject, server=False),
        server=ca.issue(folder / "trusted", "server", server_name(), server=True),
    )


@pytest.fixture(scope="session")
def mss_server_session(mss_pki: MssPki) -> Iterator[MssServer]:
    tls = server_tls_context(mss_pki.server.cert_file, mss_pki.server.key_file, mss_pki.ca_file)
    server = MssServer(tls, timeout_s=5)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def mss_server(mss_server_session: MssServer) -> MssServer:
    mss_server_session.mailbox.reset()
    return mss_server_session


def mss_config(server: MssServer, pki: MssPki, client: Issued | None = None) -> MssConfig:
    chosen = client or pki.pharmacy
    return MssConfig(
        host=server.host,
        port=server.port,
        sender="pharmacie@pharmacie.mssante.fr",
        cert_file=chosen.cert_file,
        key_file=chosen.key_file,
        ca_file=pki.ca_file,
        timeout_s=5,
    )
