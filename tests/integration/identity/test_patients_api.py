"""``/v1/patients`` through the real app (auth, problem+json) with INSi = the live simulator."""

from __future__ import annotations

import pytest

from lgo.domain.identity import with_key
from tests.fixtures.api import ApiHarness

from .conftest import InsiSim

pytestmark = pytest.mark.integration

CAMILLE = {
    "birth_name": "Testnom",
    "given_names": "Camille",
    "birth_date": "19991231",
    "sex": "F",
    "nir": with_key("2991275056999"),
    "source": "vitale",
}


def test_create_search_retrieve_qualify(api_identity: ApiHarness, insi_sim: InsiSim) -> None:
    client = api_identity.client
    created = client.post("/v1/patients", json=CAMILLE)
    assert created.status_code == 201, created.text
    patient = created.json()
    assert patient["identity_status"] == "provisional" and patient["ins"] is None
    assert client.post("/v1/patients", json=CAMILLE).json()["id"] == patient["id"]  # same card

    found = client.get("/v1/patients", params={"name": "testn", "birth_date": "19991231"}).json()
    assert [p["id"] for p in found["patients"]] == [patient["id"]]

    recovered = client.post(f"/v1/patients/{patient['id']}/ins", json={"mode": "retrieve"})
    assert recovered.status_code == 200, recovered.text
    body = recovered.json()
    assert body["identity_status_code"] == "RECUP"
    assert body["ins"] == {
        "matricule": with_key("2991275056999"),
        "oid": "1.2.250.1.213.1.4.10",
        "oid_label": "INS-NIR [TEST]",
    }
    assert body["ins_usable"] is False

    qualified = client.post(
        f"/v1/patients/{patient['id']}/identity-documents", json={"document": "cni"}
    ).json()
    assert qualified["identity_status"] == "qualified" and qualified["ins_usable"] is True
    service = api_identity.container.identity.service
    assert service.qualified_ins(patient["id"]) == (
        with_key("2991275056999"),
        "1.2.250.1.213.1.4.10",
    )

    read = client.get(f"/v1/patients/{patient['id']}").json()
    assert [c["outcome"] for c in read["checks"]] == ["found", "checked"]
    assert insi_sim.requests()[0]["traits"]["NomNaissance"] == "TESTNOM"


def test_insi_results_are_problem_documents(api_identity: ApiHarness, insi_sim: InsiSim) -> None:
    client = api_identity.client
    unknown = client.post(
        "/v1/patients",
        json={
            "birth_name": "Inconnu",
            "given_names": "Personne",
            "birth_date": "19700101",
            "sex": "M",
        },
    ).json()
    answer = client.post(f"/v1/patients/{unknown['id']}/ins", json={"mode": "retrieve"})
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["type"] == "urn:lgo:problem:insi-not-found"

    insi_sim.queue("siram_40")
    down = client.post(f"/v1/patients/{unknown['id']}/ins", json={"mode": "retrieve"})
    assert down.status_code == 503 and down.json()["siram"] == "siram_40"

    not_yet = client.post(f"/v1/patients/{unknown['id']}/ins", json={"mode": "verify"})
    assert not_yet.status_code == 409
    assert not_yet.json()["type"] == "urn:lgo:problem:identity-ins-missing"


def test_retrieve_by_vitale_data_and_work_list(api_identity: ApiHarness, insi_sim: InsiSim) -> None:
    client = api_identity.client
    lea = client.post(
        "/v1/patients",
        json={
            "birth_name": "TESTCORSE",
            "given_names": "LEA",
            "birth_date": "20150901",
            "sex": "F",
        },
    ).json()
    vitale = {"insured_nir": with_key("278072B033012"), "rank": 2}
    body = client.post(
        f"/v1/patients/{lea['id']}/ins", json={"mode": "retrieve", "vitale": vitale}
    ).json()
    assert body["ins"]["matricule"] == with_key("215092B033102")
    insi_sim.queue("http_503", count=3)
    assert client.post(f"/v1/patients/{lea['id']}/ins", json={"mode": "verify"}).status_code == 503
    assert client.get("/v1/patients/work-list").json() == {"items": []}  # an outage is not a KO


def test_bad_input_and_auth(api_identity: ApiHarness) -> None:
    client = api_identity.client
    bad = client.post("/v1/patients", json={**CAMILLE, "nir": "299127505699900"})
    assert bad.status_code == 422
    assert bad.json()["type"] == "urn:lgo:problem:identity-invalid"
    assert client.get("/v1/patients/nope").status_code == 404
    anonymous = client.get("/v1/patients", headers={"Authorization": ""})
    assert anonymous.status_code == 401
