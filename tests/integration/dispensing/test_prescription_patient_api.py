"""The right patient, before anything is written (issue #17 item 1), through the daemon's API with
the national simulator on 127.0.0.1: the prescription view names its patient and prescriber; a
dispensation for another patient is refused (409 ``prescription-patient-mismatch``) and writes
nothing (ordonnancier, dispensations, lines, outbox, idempotency keys, stupéfiants register)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from lgo.api.app import create_app
from lgo.bootstrap.container import Container
from lgo.bootstrap.dispensing import part_of
from lgo.core.settings import load_settings
from lgo.domain.identity import with_key
from lgo.domain.products import Pack, Product, RegulatoryList
from lgo.services.counters import add_counter
from lgo.store import migrate
from lgo.store.models.dispensing import (
    DispensationLineRow,
    DispensationRow,
    IdempotencyKey,
    NarcoticsRegisterLine,
    OrdonnancierEntry,
    OutboxMessage,
)
from tests.fixtures.dispensing import open_pharmacist_session
from tests.fixtures.national import NationalSim

pytestmark = pytest.mark.integration
LISTED_RX = "01S2TBPZ2JCNZZYGHZ"  # TESTPATIENT DOMINIQUE JEAN, 14/03/1985; amoxicilline, list I
SIMPLE_RX = "EPTEST0000000000000042"  # TESTNOM CAMILLE, 31/12/1999; paracetamol
AMOX = "3400999999014"
MISMATCH = "urn:lgo:problem:prescription-patient-mismatch"
# As a carte Vitale gives them: the prescription's patient, and a twin-like neighbour (same birth
# name and date, another first given name).
DOMINIQUE = {
    "birth_name": "TESTPATIENT",
    "given_names": "DOMINIQUE JEAN",
    "birth_date": "19850314",
    "sex": "M",
    "source": "vitale",
    "nir": with_key("1850369123456"),
}
TWIN = {**DOMINIQUE, "given_names": "CLAUDE", "rank": 2, "nir": with_key("1850369123499")}
LOU = {
    "birth_name": "TESTNOM",
    "given_names": "LOU",
    "birth_date": "20100615",
    "sex": "F",
    "source": "vitale",
    "nir": with_key("2100675056321"),
}
TABLES = (
    OrdonnancierEntry,
    DispensationRow,
    DispensationLineRow,
    OutboxMessage,
    IdempotencyKey,
    NarcoticsRegisterLine,
)


@pytest.fixture
def counter(tmp_path: Path, national_sim: NationalSim) -> Iterator[tuple[TestClient, Container]]:
    settings = load_settings(
        state_dir=tmp_path / "state",
        hardware={"pcsc_enabled": False},
        national={"base_url": national_sim.base_url},
    )
    container = Container(settings)
    migrate.upgrade(container.db)
    _, token = add_counter(container.db, "comptoir-1")
    part_of(container).catalog.add(
        Product(
            AMOX,
            "AMOXICILLINE TEST 1 g cp B/6",
            RegulatoryList.LIST_I,
            molecule="amoxicilline",
            packs=(Pack(AMOX, 6, 250),),
        )
    )
    with TestClient(
        create_app(settings, container),
        base_url=f"http://127.0.0.1:{settings.api.port}",
        headers={"Authorization": f"Bearer {token}"},
    ) as client:
        open_pharmacist_session(container)
        yield client, container


def create_patient(client: TestClient, traits: dict[str, Any]) -> str:
    created = client.post("/v1/patients", json=traits)
    assert created.status_code == 201, created.text
    patient_id: str = created.json()["id"]
    return patient_id


def counts(container: Container) -> dict[str, int]:
    with container.db.uow(readonly=True) as uow:
        return {
            t.__tablename__: uow.session.execute(select(func.count()).select_from(t)).scalar_one()
            for t in TABLES
        }


def amox_body(patient: str) -> dict[str, Any]:
    return {
        "patient_id": patient,
        "prescription_id": LISTED_RX,
        "prescriber_acknowledged": True,
        "patient_address": "1 rue Fictive, 75000 Paris",
        "lines": [{"line_no": 1, "intervention": "unchanged", "days": 6, "cip13": AMOX}],
    }


def test_prescription_view_names_its_patient_and_prescriber(
    counter: tuple[TestClient, Container],
) -> None:
    client, _ = counter
    view = client.get(f"/v1/prescriptions/{SIMPLE_RX}")
    assert view.status_code == 200, view.text
    assert view.json()["patient"] == {
        "family_name": "TESTNOM",
        "given_names": ["CAMILLE"],
        "birth_date": "1999-12-31",
        "sex": "F",
        "ins": {"nir": "299127505699943", "oid": "1.2.250.1.213.1.4.10"},
    }
    prescriber = view.json()["prescriber"]
    assert (
        prescriber["rpps"],
        prescriber["name"],
        prescriber["profession"],
        prescriber["specialty"],
    ) == ("10000000009", "TESTMEDECIN DOMINIQUE", "Médecin", "Médecine générale")
    assert {"status", "warning", "requires_acknowledgement", "practitioner"} <= set(prescriber)
    dentist = client.get(f"/v1/prescriptions/{LISTED_RX}").json()
    assert dentist["patient"]["given_names"] == ["DOMINIQUE", "JEAN"]
    assert (dentist["prescriber"]["profession"], dentist["prescriber"]["specialty"]) == (
        "Chirurgien-dentiste",
        None,
    )


def test_another_patients_prescription_is_refused_and_writes_nothing(
    counter: tuple[TestClient, Container],
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    client, container = counter
    twin, lou = create_patient(client, TWIN), create_patient(client, LOU)
    client.get(f"/v1/prescriptions/{LISTED_RX}").raise_for_status()
    before = counts(container)
    caplog.set_level(logging.DEBUG)
    for patient in (twin, lou):
        refused = client.post(
            "/v1/dispensations",
            json=amox_body(patient),
            headers={"Idempotency-Key": "wrong-patient-1"},
        )
        assert refused.status_code == 409, refused.text
        problem = refused.json()
        assert problem["type"] == MISMATCH
        assert problem["title"] == "Cette ordonnance est au nom d'un autre patient"
        assert "TESTPATIENT DOMINIQUE JEAN, né le 14/03/1985" in problem["detail"]
        assert problem["prescription_patient"] == {
            "name": "TESTPATIENT DOMINIQUE JEAN",
            "birth_date": "14/03/1985",
        }
        checked = client.post("/v1/dispensations/check", json=amox_body(patient))
        assert checked.status_code == 409 and checked.json()["type"] == MISMATCH
    assert "TESTNOM LOU, née le 15/06/2010" in problem["detail"]
    assert problem["differing"] == ["family_name", "given_name", "birth_date", "sex"]
    assert counts(container) == before  # nothing written anywhere
    assert client.get("/v1/dispensations", params={"patient_id": lou}).json() == []
    logged = caplog.text + capfd.readouterr().out  # the daemon's log lines (stdout)
    assert "prescription-patient-mismatch" in logged or "status=409" in logged
    assert "TESTNOM" not in logged and "TESTPATIENT" not in logged and "1985" not in logged
    # The refusal claimed nothing: the same key serves the right patient's dispensation.
    right = create_patient(client, DOMINIQUE)
    created = client.post(
        "/v1/dispensations", json=amox_body(right), headers={"Idempotency-Key": "wrong-patient-1"}
    )
    assert created.status_code == 201, created.text
    assert created.json()["lines"][0]["ordonnancier_number"] is not None
    after = counts(container)
    assert after["ordonnancier_entries"] == before["ordonnancier_entries"] + 1
    assert after["outbox_messages"] == before["outbox_messages"] + 1


def test_twin_refusal_names_both_twins(counter: tuple[TestClient, Container]) -> None:
    client, _ = counter
    twin = create_patient(client, TWIN)
    client.get(f"/v1/prescriptions/{LISTED_RX}").raise_for_status()
    refused = client.post(
        "/v1/dispensations", json=amox_body(twin), headers={"Idempotency-Key": "twin-key-01"}
    )
    assert refused.status_code == 409
    detail = refused.json()["detail"]
    assert "TESTPATIENT DOMINIQUE JEAN, né le 14/03/1985" in detail
    assert "TESTPATIENT CLAUDE, né le 14/03/1985" in detail
    assert "premier prénom" in detail
    assert refused.json()["differing"] == ["given_name"]


def test_the_view_says_whether_the_patient_is_the_prescriptions(
    counter: tuple[TestClient, Container],
) -> None:
    """``patient_match`` is the commit's rule: the page warns with it (no copy of the rule)."""
    client, _ = counter
    right, twin, lou = (create_patient(client, p) for p in (DOMINIQUE, TWIN, LOU))
    answers = {
        who: client.get(f"/v1/prescriptions/{LISTED_RX}", params={"patient_id": who}).json()
        for who in (right, twin, lou)
    }
    assert answers[right]["patient_match"] == {"matches": True, "rule": "traits", "differing": []}
    assert answers[twin]["patient_match"] == {
        "matches": False,
        "rule": "traits",
        "differing": ["given_name"],
    }
    assert answers[lou]["patient_match"]["differing"] == [
        "family_name",
        "given_name",
        "birth_date",
        "sex",
    ]
    assert client.get(f"/v1/prescriptions/{LISTED_RX}").json()["patient_match"] is None
    unknown = client.get(f"/v1/prescriptions/{LISTED_RX}", params={"patient_id": "nobody"})
    assert unknown.status_code == 404
    # The view and the commit agree: the twin's dispensation is refused.
    refused = client.post(
        "/v1/dispensations", json=amox_body(twin), headers={"Idempotency-Key": "view-agrees-1"}
    )
    assert refused.json()["differing"] == answers[twin]["patient_match"]["differing"]


def test_card_beneficiaries_are_matched_by_the_same_rule(
    counter: tuple[TestClient, Container],
) -> None:
    """The family card's beneficiaries, not stored yet: which one is the prescription's patient
    (lunar date of a card: an unknown day never matches a known one)."""
    client, _ = counter
    client.get(f"/v1/prescriptions/{LISTED_RX}").raise_for_status()
    card = [
        {"family_name": "TESTPATIENT", "given_names": "CLAUDE", "birth_date": "19850314"},
        {"family_name": "Testpatient", "given_names": "Dominique Jean", "birth_date": "19850314"},
        {"family_name": "TESTPATIENT", "given_names": "DOMINIQUE", "birth_date": "19850300"},
    ]
    answer = client.post(f"/v1/prescriptions/{LISTED_RX}/patient-match", json={"candidates": card})
    assert answer.status_code == 200, answer.text
    assert [m["matches"] for m in answer.json()["matches"]] == [False, True, False]
    assert answer.json()["matches"][2]["differing"] == ["birth_date"]
    bad = client.post(
        f"/v1/prescriptions/{LISTED_RX}/patient-match",
        json={"candidates": [{**card[0], "birth_date": "14/03/1985"}]},
    )
    assert bad.status_code == 422
    not_read = client.post(
        "/v1/prescriptions/EPTEST0000000000000099/patient-match", json={"candidates": card}
    )
    assert not_read.status_code == 404
