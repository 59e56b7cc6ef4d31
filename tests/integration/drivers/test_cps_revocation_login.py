"""CPS login on the real stack (hw-sim pcscd, virtual card, PKCS#11 token, API) with the revocation
check on: the revoked card is refused in French before its PIN is presented, a good card logs in.

The daemon holds a CRL of the test CA in its on-disk cache (as after an earlier download), valid
until tomorrow: the check runs on it without any network, like a counter between two downloads."""

from __future__ import annotations

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
    crl = pki.crl("ca", revoked_serials(PEOPLE.values()), now - timedelta(minutes=1),
                  now + timedelta(days=1))  # fmt: skip
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
    daemon: Daemon, hwsim: Any  # noqa: F811
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
