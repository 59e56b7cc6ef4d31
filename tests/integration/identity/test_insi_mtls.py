"""Organisation-certificate authentication: INSi over mutual TLS on 127.0.0.1 (real TLS server
that requires a client certificate from the test CA), the client built from the daemon settings."""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn

from hwsim.national.app import create_app
from hwsim.national.mss_pki import Issued, make_ca, organisation_name, server_name
from lgo.bootstrap.identity import insi_client_from
from lgo.core.settings import load_settings
from lgo.domain.identity import Traits, with_key
from lgo.national.errors import NationalServiceError
from lgo.national.insi import InsiClient

pytestmark = pytest.mark.integration

TESTSEUL = Traits.of("TESTSEUL", "DOMINIQUE", "M", "19620101")


@dataclass
class TlsSim:
    base_url: str
    ca_file: Path
    client: Issued
    stranger: Issued  # a client certificate from another CA


@pytest.fixture(scope="module")
def tls_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsSim]:
    folder = tmp_path_factory.mktemp("insi-pki")
    ca = make_ca(folder)
    server = ca.issue(folder, "server", server_name(), server=True)
    client = ca.issue(
        folder,
        "insi-auto",
        organisation_name("PHARMACIE DES TESTS", "3999999999", "insi-auto"),
        server=False,
    )
    other = make_ca(folder / "other", "AC INCONNUE")
    stranger = other.issue(folder / "other", "stranger", server_name("x"), server=False)
    config = uvicorn.Config(
        create_app(),
        host="127.0.0.1",
        port=0,
        log_level="warning",
        lifespan="off",
        ssl_certfile=str(server.cert_file),
        ssl_keyfile=str(server.key_file),
        ssl_ca_certs=str(ca.cert_file),
        ssl_cert_reqs=ssl.CERT_REQUIRED,
        timeout_graceful_shutdown=1,
    )
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not uv.started:  # uvicorn exposes no event to await; bounded wait for startup
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("TLS simulator did not start")
        time.sleep(0.01)
    port = uv.servers[0].sockets[0].getsockname()[1]
    try:
        yield TlsSim(f"https://127.0.0.1:{port}", ca.cert_file, client, stranger)
    finally:
        uv.should_exit = True
        thread.join(5)


def _client(sim: TlsSim, cert: Issued | None) -> InsiClient:
    insi = {"ca_file": str(sim.ca_file), "auth": "certificate"}
    if cert is not None:
        insi |= {"client_cert": str(cert.cert_file), "client_key": str(cert.key_file)}
    settings = load_settings(
        hardware={"pcsc_enabled": False},
        national={"base_url": sim.base_url, "timeout_s": 2.0, "insi": insi},
    )
    return insi_client_from(settings)


def test_organisation_certificate_opens_insi(tls_sim: TlsSim) -> None:
    with _client(tls_sim, tls_sim.client) as client:
        found = client.search_by_traits(TESTSEUL, author_rpps=None)
    assert found.ins.matricule == with_key("1620175112034")


@pytest.mark.parametrize("who", ["no-certificate", "unknown-ca"])
def test_without_a_trusted_certificate_nothing_is_answered(tls_sim: TlsSim, who: str) -> None:
    cert = None if who == "no-certificate" else tls_sim.stranger
    with _client(tls_sim, cert) as client, pytest.raises(NationalServiceError):
        client.search_by_traits(TESTSEUL, author_rpps=None)
