"""/v1/dispensations, /v1/ordonnancier, /v1/outbox over the real app on SQLite."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from lgo.bootstrap.dispensing import part_of
from lgo.services import ordonnancier
from lgo.services.local_time import pharmacy_today
from tests.fixtures.dispensing import (
    LIST_I_PRODUCT,
    PHARMACIST_RPPS,
    PLAIN_PRODUCT,
    PRESCRIBER_RPPS,
    make_patient,
    open_assistant_session,
    open_pharmacist_session,
)

pytestmark = pytest.mark.integration
CIP_LIST_I = LIST_I_PRODUCT.packs[0].cip13


def paper_body(patient_id: str, **line: Any) -> dict[str, Any]:
    intervention = {"line_no": 1, "intervention": "unchanged", "days": 30, "cip13": CIP_LIST_I}
    intervention.update(line)
    return {
        "patient_id": patient_id,
        "patient_address": "1 rue Fictive, 75000 Paris",
        "paper": {
            "prescribed_on": pharmacy_today().isoformat(),
            "prescriber_rpps": PRESCRIBER_RPPS,
            "prescriber_name": "DOCTEUR FICTIF",
            "prescriber_address": "2 avenue du Test, 75011 Paris",
            "lines": [
                {
                    "designation": "FICTIVOL 10 mg cp",
                    "cip13": CIP_LIST_I,
                    "regulatory_list": "list_i",
                    "units_per_day": "1",
                    "duration_days": 30,
                }
            ],
        },
        "lines": [intervention],
        # No Annuaire Santé here: the prescriber is unverifiable and the pharmacist acknowledges it.
        "prescriber_acknowledged": True,
    }


@pytest.fixture
def counter(api: Any) -> Any:
    part_of(api.container).catalog.add(LIST_I_PRODUCT)
    part_of(api.container).catalog.add(PLAIN_PRODUCT)
    return api


def test_pharmacist_session_and_idempotency_key_are_required(counter: Any) -> None:
    patient = make_patient(counter.container.db)
    response = counter.client.post(
        "/v1/dispensations", json=paper_body(patient), headers={"Idempotency-Key": "k-0000001"}
    )
    assert response.status_code == 403
    assert response.json()["type"] == "urn:lgo:problem:pharmacist-session-required"
    open_pharmacist_session(counter.container)
    response = counter.client.post("/v1/dispensations", json=paper_body(patient))
    assert response.status_code == 400
    assert response.json()["type"] == "urn:lgo:problem:idempotency-key-missing"


def test_an_expired_session_is_refused_and_closed_before_anything_is_written(
    counter: Any,
) -> None:
    sessions = counter.container.sessions
    closed: list[str] = []
    sessions.on_close(lambda _session, reason: closed.append(reason))
    session = open_pharmacist_session(counter.container)
    sessions.extend(session.id, datetime.now(UTC) - timedelta(seconds=1))
    patient = make_patient(counter.container.db)
    response = counter.client.post(
        "/v1/dispensations", json=paper_body(patient), headers={"Idempotency-Key": "k-0000009"}
    )
    assert response.status_code == 403
    assert response.json()["type"] == "urn:lgo:problem:pharmacist-session-required"
    assert closed == ["expired"] and sessions.peek() == (None, False)
    assert counter.client.get("/v1/dispensations", params={"patient_id": patient}).json() == []


def test_same_key_replays_other_body_conflicts(counter: Any) -> None:
    open_pharmacist_session(counter.container)
    patient = make_patient(counter.container.db)
    headers = {"Idempotency-Key": "k-0000002"}
    first = counter.client.post("/v1/dispensations", json=paper_body(patient), headers=headers)
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["professional"]["rpps"] == PHARMACIST_RPPS
    assert body["professional"]["structure_id"] == "750000000"
    assert body["lines"][0]["ordonnancier_number"] == 1
    again = counter.client.post("/v1/dispensations", json=paper_body(patient), headers=headers)
    assert again.status_code == 201
    assert again.json() == body
    assert again.headers["Idempotent-Replayed"] == "true"
    other = counter.client.post(
        "/v1/dispensations", json=paper_body(patient, days=10), headers=headers
    )
    assert other.status_code == 409
    assert other.json()["type"] == "urn:lgo:problem:idempotency-key-reused"
    assert len(counter.client.get("/v1/dispensations", params={"patient_id": patient}).json()) == 1
    assert len(ordonnancier.query(counter.container.db, ordonnancier.Query())) == 1


def test_refusal_is_a_typed_problem_and_changes_nothing(counter: Any) -> None:
    open_pharmacist_session(counter.container)
    patient = make_patient(counter.container.db)
    body = paper_body(patient, days=31)
    response = counter.client.post(
        "/v1/dispensations", json=body, headers={"Idempotency-Key": "k-0000003"}
    )
    assert response.status_code == 422
    problem = response.json()
    assert problem["type"] == "urn:lgo:problem:dispensing-refused"
    # 31 days on a 30-day line: the refusal says what may be delivered today
    assert [(r["code"], r["max_days"]) for r in problem["refusals"]] == [
        ("quantity_exceeds_remaining", 30)
    ]
    assert "Délivrable aujourd'hui : 30 jours au plus." in problem["refusals"][0]["message"]
    assert counter.client.get("/v1/dispensations", params={"patient_id": patient}).json() == []
    assert ordonnancier.query(counter.container.db, ordonnancier.Query()) == []


def test_late_first_delivery_is_refused_with_no_override(counter: Any) -> None:
    open_pharmacist_session(counter.container)
    patient = make_patient(counter.container.db)
    body = paper_body(patient)
    body["paper"]["prescribed_on"] = (pharmacy_today() - timedelta(days=200)).isoformat()
    refused = counter.client.post(
        "/v1/dispensations", json=body, headers={"Idempotency-Key": "k-0000004"}
    )
    assert refused.status_code == 422
    assert refused.json()["refusals"][0] == {
        "code": "first_delivery_too_late",
        "line_no": 1,
        "overridable": False,
        "article": "R.5132-22",
        "max_days": 0,
        "message": "Première délivrance impossible : ordonnance de plus de 3 mois (liste I/II). "
        "Rien n'est délivrable aujourd'hui sur cette ligne.",
    }
    body["lines"][0]["override"] = {
        "code": "first_delivery_too_late",
        "reason": "Continuité du traitement",
    }
    attempt = counter.client.post(
        "/v1/dispensations", json=body, headers={"Idempotency-Key": "k-0000005"}
    )
    assert attempt.status_code == 422
    assert counter.client.get("/v1/dispensations", params={"patient_id": patient}).json() == []


def test_per_delivery_cap_override_records_reason_and_pharmacist(counter: Any) -> None:
    open_pharmacist_session(counter.container)
    patient = make_patient(counter.container.db)
    body = paper_body(patient, days=60)
    body["paper"]["lines"][0]["duration_days"] = 60
    refused = counter.client.post(
        "/v1/dispensations", json=body, headers={"Idempotency-Key": "k-0000014"}
    )
    assert refused.status_code == 422
    assert [(r["code"], r["overridable"], r["max_days"]) for r in refused.json()["refusals"]] == [
        ("per_delivery_cap_exceeded", True, 30)
    ]
    body["lines"][0]["override"] = {
        "code": "per_delivery_cap_exceeded",
        "reason": "Séjour à l'étranger, accord de la caisse",
    }
    accepted = counter.client.post(
        "/v1/dispensations", json=body, headers={"Idempotency-Key": "k-0000015"}
    )
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["lines"][0]["override"] == {
        "code": "per_delivery_cap_exceeded",
        "reason": "Séjour à l'étranger, accord de la caisse",
        "pharmacist_rpps": PHARMACIST_RPPS,
    }


def test_read_list_fhir_and_ordonnancier_exports(counter: Any) -> None:
    open_pharmacist_session(counter.container)
    patient = make_patient(counter.container.db)
    created = counter.client.post(
        "/v1/dispensations", json=paper_body(patient), headers={"Idempotency-Key": "k-0000006"}
    ).json()
    one = counter.client.get(f"/v1/dispensations/{created['id']}")
    assert one.json() == created
    today = counter.client.get("/v1/dispensations", params={"day": pharmacy_today().isoformat()})
    assert [d["id"] for d in today.json()] == [created["id"]]
    assert (
        counter.client.get(
            "/v1/dispensations/" + "0" * 8 + "-0000-0000-0000-" + "0" * 12
        ).status_code
        == 404
    )
    fhir = counter.client.get(f"/v1/dispensations/{created['id']}/fhir")
    assert fhir.status_code == 200
    bundle = fhir.json()
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert kinds == ["Patient", "MedicationDispense"]
    assert bundle["entry"][1]["resource"]["type"]["coding"][0]["code"] == "FFC"
    csv_text = counter.client.get(
        "/v1/ordonnancier/export", params={"format": "csv", "order": "patient"}
    ).text
    assert csv_text.splitlines()[1].startswith("1;")
    assert "FICTIVOL 10 mg cp" in csv_text
    html = counter.client.get("/v1/ordonnancier/export", params={"order": "medicine"}).text
    pharmacy = counter.settings.pharmacy
    assert pharmacy.name in html and pharmacy.address.replace("'", "&#x27;") in html
    assert "display: table-header-group" in html
    assert counter.client.get("/v1/ordonnancier/verify").json() == {
        "ok": True,
        "checked": 1,
        "first_broken": None,
        "problem": None,
    }
    assert counter.client.get("/v1/outbox").json() == {"degraded": False, "messages": []}


def test_check_evaluates_without_recording(counter: Any) -> None:
    open_pharmacist_session(counter.container)
    patient = make_patient(counter.container.db)
    ok = counter.client.post("/v1/dispensations/check", json=paper_body(patient))
    assert ok.status_code == 200, ok.text
    assert ok.json()["allowed"] is True
    assert ok.json()["lines"][0]["completeness"] == "FFC"
    refused = counter.client.post("/v1/dispensations/check", json=paper_body(patient, days=45))
    assert refused.json()["allowed"] is False
    assert [r["code"] for r in refused.json()["refusals"]] == ["quantity_exceeds_remaining"]
    assert counter.client.get("/v1/dispensations", params={"patient_id": patient}).json() == []


def test_implausible_typed_date_is_invalid_input_not_a_crash(counter: Any) -> None:
    open_pharmacist_session(counter.container)
    body = paper_body(make_patient(counter.container.db))
    body["paper"]["prescribed_on"] = "9999-12-01"
    response = counter.client.post(
        "/v1/dispensations", json=body, headers={"Idempotency-Key": "k-0000009"}
    )
    assert response.status_code == 422
    assert response.json()["type"] == "urn:lgo:problem:invalid-input"


def test_a_non_pharmacist_session_cannot_validate_a_dispensation(counter: Any) -> None:
    open_assistant_session(counter.container)
    response = counter.client.post(
        "/v1/dispensations",
        json=paper_body(make_patient(counter.container.db)),
        headers={"Idempotency-Key": "k-0000010"},
    )
    assert response.status_code == 403
    assert response.json()["type"] == "urn:lgo:problem:pharmacist-session-required"


def test_a_malformed_cip13_is_refused_on_its_field_in_french(counter: Any) -> None:
    """A box code with a wrong check key or the wrong length is refused before anything is
    evaluated, with a French message on the field (never taken for another product)."""
    open_pharmacist_session(counter.container)
    patient = make_patient(counter.container.db)
    wrong_key = CIP_LIST_I[:12] + str((int(CIP_LIST_I[12]) + 1) % 10)
    cases = {
        wrong_key: "clé de contrôle du CIP13 fausse",
        CIP_LIST_I[:12]: "CIP13 attendu : 13 chiffres commençant par 3400",
    }
    for code, message in cases.items():
        refused = counter.client.post(
            "/v1/dispensations/check", json=paper_body(patient, cip13=code)
        )
        assert refused.status_code == 422, refused.text
        by_field = {tuple(e["loc"][1:]): e["msg"] for e in refused.json()["errors"]}
        assert by_field[("lines", "0", "cip13")] == message, by_field
    assert counter.client.get("/v1/dispensations", params={"patient_id": patient}).json() == []
