"""The Annuaire Santé check of the prescriber at the counter, with the national simulator:
shown when a prescription is opened, and a non-active prescriber blocks the commit (409) until the
pharmacist acknowledges the warning."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from hwsim.national.eprescription import store_of
from lgo.api.app import create_app
from lgo.bootstrap.container import Container
from lgo.core.settings import load_settings
from lgo.services.counters import add_counter
from lgo.services.local_time import pharmacy_today
from lgo.store import migrate
from tests.fixtures.dispensing import make_patient_for, open_pharmacist_session
from tests.fixtures.national import NationalSim

pytestmark = pytest.mark.integration
ACTIVE_RX = "01S2TBPZ2JCNZZYGHZ"  # prescribed by 10000000017, active in the Annuaire simulator
AMOX = "3400999999014"
OTHER_RX = "EPTEST0000000000000042"  # its prescriber is swapped for an inactive one below
PARA = "3400999999991"
INACTIVE = "10999990020"  # Annuaire simulator: listed, not practising
UNKNOWN = "10999990053"  # valid key, absent from the Annuaire simulator
NOT_ACKNOWLEDGED = "urn:lgo:problem:prescriber-warning-not-acknowledged"


@pytest.fixture
def counter(tmp_path: Path, national_sim: NationalSim) -> Iterator[tuple[TestClient, str]]:
    settings = load_settings(
        state_dir=tmp_path / "state",
        hardware={"pcsc_enabled": False},
        national={"base_url": national_sim.base_url},
    )
    container = Container(settings)
    migrate.upgrade(container.db)
    _, token = add_counter(container.db, "comptoir-1")
    with TestClient(
        create_app(settings, container),
        base_url=f"http://127.0.0.1:{settings.api.port}",
        headers={"Authorization": f"Bearer {token}"},
    ) as client:
        open_pharmacist_session(container)
        yield client, make_patient_for(container.db, ACTIVE_RX)


def eprescription_body(patient: str, rx: str, cip13: str, days: int) -> dict[str, Any]:
    return {
        "patient_id": patient,
        "prescription_id": rx,
        "patient_address": "1 rue Fictive, 75000 Paris",
        "lines": [
            {"line_no": 1, "intervention": "unchanged", "days": days, "cip13": cip13, "boxes": 2}
        ],
    }


def post(client: TestClient, body: dict[str, Any], key: str) -> Any:
    return client.post("/v1/dispensations", json=body, headers={"Idempotency-Key": key})


def test_active_prescriber_needs_no_acknowledgement(counter: tuple[TestClient, str]) -> None:
    client, patient = counter
    opened = client.get(f"/v1/prescriptions/{ACTIVE_RX}").json()
    assert opened["prescriber"]["status"] == "active"
    assert opened["prescriber"]["requires_acknowledgement"] is False
    assert opened["prescriber"]["practitioner"]["family_name"]
    created = post(client, eprescription_body(patient, ACTIVE_RX, AMOX, 6), "active-key-1")
    assert created.status_code == 201, created.text


def test_inactive_prescriber_blocks_until_acknowledged(
    counter: tuple[TestClient, str], national_sim: NationalSim
) -> None:
    client, patient = counter
    prescriptions = store_of(national_sim.state).prescriptions
    prescription = prescriptions[OTHER_RX]
    prescription.prescriber = {**prescription.prescriber, "rpps": INACTIVE}
    # written for the counter's patient (the patient check is not what this test is about)
    prescription.patient = prescriptions[ACTIVE_RX].patient
    prescription.patient_key = prescriptions[ACTIVE_RX].patient_key
    opened = client.get(f"/v1/prescriptions/{OTHER_RX}").json()
    assert (opened["prescriber"]["status"], opened["prescriber"]["requires_acknowledgement"]) == (
        "inactive",
        True,
    )
    assert "sans activité" in opened["prescriber"]["warning"]
    body = eprescription_body(patient, OTHER_RX, PARA, 5)
    refused = post(client, body, "inactive-key-1")
    assert refused.status_code == 409
    assert (refused.json()["type"], refused.json()["prescriber_status"]) == (
        NOT_ACKNOWLEDGED,
        "inactive",
    )
    assert client.get("/v1/dispensations").json() == []  # nothing recorded
    # the same key is still free: the refusal happened before anything was claimed
    accepted = post(client, {**body, "prescriber_acknowledged": True}, "inactive-key-1")
    assert accepted.status_code == 201, accepted.text


def test_unknown_prescriber_of_a_paper_prescription(
    counter: tuple[TestClient, str], national_sim: NationalSim
) -> None:
    client, patient = counter
    body = {
        "patient_id": patient,
        "paper": {
            "prescribed_on": pharmacy_today().isoformat(),
            "prescriber_rpps": UNKNOWN,
            "prescriber_name": "DOCTEUR INCONNU",
            "lines": [
                {
                    "designation": "PARACETAMOL TEST 1 g",
                    "cip13": PARA,
                    "units_per_day": "3",
                    "duration_days": 5,
                }
            ],
        },
        "lines": [
            {"line_no": 1, "intervention": "unchanged", "days": 5, "cip13": PARA, "boxes": 2}
        ],
    }
    refused = post(client, body, "unknown-key-1")
    assert (refused.status_code, refused.json()["prescriber_status"]) == (409, "unknown")
    lookups = len(national_sim.recorder.entries("annuaire"))
    assert lookups >= 1
    accepted = post(client, {**body, "prescriber_acknowledged": True}, "unknown-key-2")
    assert accepted.status_code == 201, accepted.text
    # acknowledged: no directory call (the counter never waits on the Annuaire for nothing)
    assert len(national_sim.recorder.entries("annuaire")) == lookups
