"""CPS login on the real stack (hw-sim pcscd, virtual card, PKCS#11 token, API) with the revocation
check on: the revoked card is refused in French before its PIN is presented, a good card logs in.

The daemon holds a CRL of the test CA in its on-disk cache (as after an earlier download), valid
until tomorrow: the check runs on it without any network, like a counter between two downloads."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from hwsim.fixtures.people import load_people
from hwsim.pki import TestPki, pki_url, revoked_serials
from lgo.national.crl import cache_path
from lgo.services.cps_revocation import CRL_FOLDER
from tests.integration.drivers.test_daemon_hardware import Daemon, daemon  # noqa: F401

pytestmark = pytest.mark.integration
PEOPLE = load_people().professionals
CPS = 1


@pytest.fixture
def daemon_hardware(tmp_path: Path) -> dict[str, Any]:
    pki = TestPki()  # the PKI the bench's CPS cards are issued from
    ca_file = tmp_path / "cps-ca.pem"
    ca_file.write_bytes(pki.root.cert_pem + pki.ca.cert_pem)
    now = datetime.now(UTC)
    crl = pki.crl(
        "ca", revoked_serials(PEOPLE.values()), now - timedelta(minutes=1), now + timedelta(days=1)
    )
    folder = tmp_path / "state" / CRL_FOLDER
    folder.mkdir(parents=True)
    cached = cache_path(folder, pki_url(pki.base_url, "ca", "crl"))
    cached.write_bytes(crl.public_bytes(serialization.Encoding.DER))
    return {"cps_ca_file": str(ca_file), "cps_revocation": "hard-fail"}


def _insert(d: Daemon, hwsim: Any, profile: str) -> None:
    reader = hwsim.reader_names[CPS]
    hwsim.client.insert("cps", profile, reader=CPS)
    d.wait("card.inserted", lambda e: e["reader"] == reader and e["kind"] == "cps")


@pytest.mark.timeout(60)
def test_revoked_card_is_refused_before_its_pin_and_a_good_card_logs_in(
    daemon: Daemon,
    hwsim: Any,
) -> None:
    revoked = PEOPLE["pharmacien-revoque"]
    _insert(daemon, hwsim, revoked.id)
    refused = daemon.client.post("/v1/cps/session", json={"kind": "cps", "pin": revoked.pin})
    assert refused.status_code == 403, refused.text
    problem = refused.json()
    assert problem["type"] == "urn:lgo:problem:cps-revoked"
    assert problem["title"].startswith("Carte CPS révoquée")
    assert daemon.client.get("/v1/cps/session").json()["session"] is None
    assert daemon.client.get("/v1/cps/session/card").json()["pin_tries_left"] == 3  # PIN unsent
    hwsim.client.remove(CPS)
    daemon.wait("card.removed", lambda e: e["reader"] == hwsim.reader_names[CPS])

    good = PEOPLE["pharmacien"]
    _insert(daemon, hwsim, good.id)
    accepted = daemon.client.post("/v1/cps/session", json={"kind": "cps", "pin": good.pin})
    assert accepted.status_code == 201, accepted.text


_DAEMON = """
import json, sys, time
from fastapi.testclient import TestClient
from hwsim.control import Client
from lgo.api.app import create_app
from lgo.bootstrap.container import Container
from lgo.services.counters import add_counter
from lgo.core.settings import load_settings
from lgo.store import migrate

workdir, state, port = sys.argv[1], sys.argv[2], sys.argv[3]
settings = load_settings(state_dir=state, national={"base_url": f"http://127.0.0.1:{port}"},
                         hardware={"cps_revocation": "hard-fail"})
container = Container(settings)
migrate.upgrade(container.db)
_, token = add_counter(container.db, "comptoir")
bench = Client(f"{workdir}/control.sock")
answers = []
with TestClient(create_app(settings, container), base_url=f"http://127.0.0.1:{settings.api.port}",
                headers={"Authorization": f"Bearer {token}"}) as client:
    for profile, pin in (("pharmacien-revoque", "5678"), ("pharmacien", "1234")):
        bench.insert("cps", profile, reader=1)
        deadline = time.monotonic() + 20  # the daemon's monitor sees the card, then the login
        while True:
            answer = client.post("/v1/cps/session", json={"kind": "cps", "pin": pin})
            if answer.json().get("type") != "urn:lgo:problem:cps-card-missing":
                break
            assert time.monotonic() < deadline, answer.text
            time.sleep(0.1)
        answers.append([answer.status_code, answer.json().get("type"), answer.json().get("title")])
        bench.remove(1)
        time.sleep(1)
print(json.dumps(answers))
"""


@pytest.mark.timeout(180)
def test_on_a_hwsim_up_bench_the_crl_is_fetched_from_the_cards_url(tmp_path: Path) -> None:
    """``hwsim up`` as a technician runs it: the cards point to its simulator, the daemon trusts the
    printed CAs, downloads the CRL at the first login and refuses the revoked card."""
    import os
    import re
    import socket
    import subprocess
    import sys

    import httpx

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    workdir, state = tmp_path / "bench", tmp_path / "state"
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PCSCLITE_CSOCK_NAME", "LGO_HWSIM_PKI_URL")
        and not k.startswith("LGO_HARDWARE")
    }
    hwsim = [sys.executable, "-m", "hwsim.cli"]
    up = subprocess.run(
        [
            *hwsim,
            "up",
            "--detach",
            "-w",
            str(workdir),
            "--national-port",
            str(port),
            "--mss-port",
            "0",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        exports = dict(re.findall(r"^export (\w+)=(.*)$", up.stdout, flags=re.MULTILINE))
        assert "LGO_HARDWARE__CPS_CA_FILE" in exports
        deadline = time.monotonic() + 30
        while True:  # the national simulator binds its port on its own
            try:
                httpx.get(f"http://127.0.0.1:{port}/_sim/services", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        daemon = subprocess.run(
            [sys.executable, "-c", _DAEMON, str(workdir), str(state), str(port)],
            capture_output=True,
            text=True,
            env={**env, **exports, "LGO_MODE": "bench"},
            timeout=120,
            check=False,
        )
        assert daemon.returncode == 0, daemon.stderr[-3000:]
        revoked, good = json.loads(daemon.stdout.strip().splitlines()[-1])
        assert revoked[:2] == [403, "urn:lgo:problem:cps-revoked"] and "révoquée" in revoked[2]
        assert good[0] == 201, good
        recorded = httpx.get(f"http://127.0.0.1:{port}/_sim/recorder?service=pki", timeout=5)
        fetched = [(e["method"], e["path"], e["status"]) for e in recorded.json()]
        assert fetched == [("GET", "/pki/ac-personnes-test.crl", 200)]  # once: then cached
        assert len(list((state / "crl").glob("*.crl"))) == 1
    finally:
        subprocess.run(
            [*hwsim, "down", "-w", str(workdir)],
            env=env,
            timeout=60,
            capture_output=True,
            check=False,
        )
