"""``POST /v1/apcv/exchange`` against the national simulator on 127.0.0.1 (real HTTP): the page
names a scan, the daemon exchanges the token it holds; refusals are French problems."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from hwsim.national.apcv import issue_token
from lgo.api.app import create_app
from lgo.bootstrap.container import Container
from lgo.core.settings import load_settings
from lgo.services.counters import add_counter
from lgo.store import migrate
from tests.fixtures.dispensing import PHARMACIST_RPPS, open_pharmacist_session
from tests.fixtures.national import NationalSim

pytestmark = pytest.mark.integration


@pytest.fixture
def daemon(tmp_path: Path, national_sim: NationalSim) -> Iterator[tuple[TestClient, Container]]:
    settings = load_settings(
        state_dir=tmp_path / "state",
        hardware={"pcsc_enabled": False},
        national={"base_url": national_sim.base_url},
    )
    container = Container(settings)
    migrate.upgrade(container.db)
    _, token = add_counter(container.db, "comptoir-1")
    app = create_app(settings, container)
    with TestClient(
        app,
        base_url=f"http://127.0.0.1:{settings.api.port}",
        headers={"Authorization": f"Bearer {token}"},
    ) as client:
        yield client, container


def _scan(client: TestClient, payload: str) -> str:
    created = client.post("/v1/scans", json={"payload": payload})
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def test_exchange_gives_the_beneficiaries_once(
    daemon: tuple[TestClient, Container], national_sim: NationalSim
) -> None:
    client, container = daemon
    open_pharmacist_session(container)
    token, _ = issue_token(national_sim.state, "camille")
    scan_id = _scan(client, token)

    answer = client.post("/v1/apcv/exchange", json={"scan_id": scan_id})
    assert answer.status_code == 200, answer.text
    people = answer.json()["beneficiaries"]
    assert [
        (p["family_name"], p["given_name"], p["birth_date_raw"], p["rank"]) for p in people
    ] == [
        ("TESTNOM", "CAMILLE", "19991231", 1),
        ("TESTNOM", "LOU", "20100615", 1),
    ]
    exchanges = national_sim.recorder.entries("apcv")
    assert len(exchanges) == 1
    assert token not in answer.text  # the token never goes back to the page

    again = client.post("/v1/apcv/exchange", json={"scan_id": scan_id})
    assert again.status_code == 422
    assert again.json()["type"] == "urn:lgo:problem:apcv-token-used"
    patient = client.post(
        "/v1/patients",
        json={
            "birth_name": "TESTNOM",
            "given_names": "CAMILLE",
            "birth_date": "19991231",
            "nir": people[0]["nir"],
            "source": "apcv",
        },
    )
    assert patient.status_code == 201 and patient.json()["source"] == "apcv"


def test_refusals_change_nothing(
    daemon: tuple[TestClient, Container], national_sim: NationalSim
) -> None:
    client, container = daemon
    token, _ = issue_token(national_sim.state, "camille")
    scan_id = _scan(client, token)
    no_session = client.post("/v1/apcv/exchange", json={"scan_id": scan_id})
    assert no_session.status_code == 403
    assert no_session.json()["type"] == "urn:lgo:problem:pharmacist-session-required"

    open_pharmacist_session(container, PHARMACIST_RPPS)
    not_apcv = client.post("/v1/apcv/exchange", json={"scan_id": _scan(client, "3400935955838")})
    assert not_apcv.status_code == 422
    unknown = client.post("/v1/apcv/exchange", json={"scan_id": "no-such-scan"})
    assert unknown.status_code == 404
    assert national_sim.recorder.entries("apcv") == []  # nothing reached the service
    ok = client.post("/v1/apcv/exchange", json={"scan_id": scan_id})
    assert ok.status_code == 200  # the token was not burnt by the refusals
