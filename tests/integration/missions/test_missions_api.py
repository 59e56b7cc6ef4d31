"""Vaccination and TROD through the daemon's API on the real stack: the national simulator (DMP over
HTTP, MSSanté over SMTP), SQLite (and PostgreSQL for storage), a pharmacist session open."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog
from sqlalchemy import update
from typer.testing import CliRunner

from hwsim.mss import MssServer
from lgo.cli.main import app as cli_app
from lgo.documents import doctypes as document_types
from lgo.documents.conformance import VOLETS, CisisKit
from lgo.documents.models import DocumentKind
from lgo.domain.identity import IdentityStatus, InsOid
from lgo.services.counters import add_counter
from lgo.services.missions_common import DOCUMENT_LEASE, ActStore
from lgo.services.stats import today_local
from lgo.services.trod import TrodService
from lgo.store.db import Database
from lgo.store.models import Patient
from lgo.store.models.missions import TrodTestRow, VaccinationRow
from tests.fixtures.documents import FICTIVE_NIR, MssPki, sim_control, sim_documents
from tests.fixtures.missions import (
    AMOXICILLIN,
    FOSFOMYCIN,
    MSS_RECIPIENT,
    VACCINE,
    MissionsApi,
    add_patient,
    datamatrix,
    missions_api,
)
from tests.fixtures.national import NationalSim

pytestmark = pytest.mark.integration
ADDRESS = "3 rue de l'Exemple, 75011 Paris"  # fictitious
PHARMACY_IDNAT = "1750000000"  # the DMP simulator's structure id of the pharmacy
NEXT_YEAR = date.today() + timedelta(days=365)


def _key() -> dict[str, str]:
    return {"Idempotency-Key": f"test-{uuid.uuid4()}"}


def _vaccination(patient_id: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "patient_id": patient_id,
        "vaccine": "grippe",
        "dose_number": 1,
        "act": "rappel",
        "route": "intramusculaire",
        "site": "deltoide-gauche",
        "datamatrix": datamatrix(VACCINE.packs[0].cip13, NEXT_YEAR),
    }
    body.update(overrides)
    return body


def _count(api: MissionsApi, table: type[Any]) -> int:
    with api.container.db.uow(readonly=True) as uow:
        return len(uow.session.query(table).all())


# ---------------------------------------------------------------- vaccination


def test_vaccination_recorded_and_its_note_queued_for_the_dmp_and_the_doctor(
    missions: MissionsApi, mss_server: MssServer
) -> None:
    client = missions.client
    patient = add_patient(missions.container.db, IdentityStatus.QUAL)
    headers = _key()
    body = _vaccination(patient, mss_recipient=MSS_RECIPIENT)
    created = client.post("/v1/vaccinations", json=body, headers=headers)
    assert created.status_code == 201, created.text
    act = created.json()
    assert act["product"]["cip13"] == VACCINE.packs[0].cip13
    assert act["product"]["lot"] == "LOTV42" and act["product"]["cis"] == VACCINE.code
    assert act["professional"]["rpps"] == "10000000009"
    assert act["eligibility"]["eligible"] and act["eligibility"]["age_min"] >= 40
    assert act["document_id"] and act["document_skipped"] is None
    [event] = [e for e in missions.container.events.recent() if e.type == "vaccination.recorded"]
    assert event.data == {"id": act["id"], "document_id": act["document_id"]}  # ids only

    document = client.get(f"/v1/documents/{act['document_id']}").json()
    assert document["kind"] == "vaccination-note"
    assert sorted(d["kind"] for d in document["deliveries"]) == ["dmp.provide", "mss.send"]
    assert missions.deliver_documents() == 2
    delivered = client.get(f"/v1/documents/{act['document_id']}").json()
    assert {d["status"] for d in delivered["deliveries"]} == {"delivered"}
    assert [d["unique_id"] for d in sim_documents(missions.sim.base_url)] == [act["document_id"]]
    assert len(mss_server.mailbox.received()) == 1

    # Same key and body: the first answer, nothing more written.
    again = client.post("/v1/vaccinations", json=body, headers=headers)
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == act["id"] and _count(missions, VaccinationRow) == 1
    other = client.post(
        "/v1/vaccinations", json=_vaccination(patient, dose_number=2), headers=headers
    )
    assert other.status_code == 409

    found = client.get(
        "/v1/vaccinations",
        params={
            "patient": patient,
            "from": date.today().isoformat(),
            "to": date.today().isoformat(),
            "vaccine": "grippe",
        },
    ).json()
    assert [v["id"] for v in found] == [act["id"]]
    assert client.get("/v1/vaccinations", params={"vaccine": "hpv"}).json() == []
    yesterday = (date.today() - timedelta(days=1)).isoformat()
    assert client.get("/v1/vaccinations", params={"to": yesterday}).json() == []


def test_unqualified_ins_records_the_act_without_a_note(missions: MissionsApi) -> None:
    patient = add_patient(missions.container.db, IdentityStatus.PROV)
    created = missions.client.post("/v1/vaccinations", json=_vaccination(patient), headers=_key())
    assert created.status_code == 201, created.text
    act = created.json()
    assert act["document_id"] is None and act["document_skipped"] == "ins-not-qualified"
    assert missions.client.get(f"/v1/patients/{patient}/documents").json() == []
    assert missions.deliver_documents() == 0
    assert sim_documents(missions.sim.base_url) == []

    # The INS is qualified later (INSi + ID document): the note is produced then, once.
    with missions.container.db.uow() as uow:
        row = uow.session.get(Patient, patient)
        assert row is not None
        row.identity_status, row.nir = IdentityStatus.QUAL.value, FICTIVE_NIR
        row.ins_matricule, row.ins_oid = FICTIVE_NIR, InsOid.TEST.value
        uow.commit()
    later = missions.client.post(f"/v1/vaccinations/{act['id']}/note", json={})
    assert later.status_code == 201, later.text
    assert later.json()["document_id"] and later.json()["document_skipped"] is None
    assert missions.deliver_documents() == 1
    assert [d["unique_id"] for d in sim_documents(missions.sim.base_url)] == [
        later.json()["document_id"]
    ]
    again = missions.client.post(f"/v1/vaccinations/{act['id']}/note", json={})
    assert again.status_code == 409
    assert again.json()["type"] == "urn:lgo:problem:act-document-already-produced"


def test_expired_dose_is_refused_and_nothing_written(missions: MissionsApi) -> None:
    patient = add_patient(missions.container.db, IdentityStatus.QUAL)
    yesterday = date.today() - timedelta(days=1)
    body = _vaccination(patient, datamatrix=datamatrix(VACCINE.packs[0].cip13, yesterday))
    refused = missions.client.post("/v1/vaccinations", json=body, headers=_key())
    assert refused.status_code == 422
    problem = refused.json()
    assert problem["type"] == "urn:lgo:problem:vaccine-expired"
    assert "périmée" in problem["title"]
    assert _count(missions, VaccinationRow) == 0
    assert missions.client.get(f"/v1/patients/{patient}/documents").json() == []


def test_ineligible_patient_and_bad_code_are_refused(missions: MissionsApi) -> None:
    child = add_patient(
        missions.container.db, IdentityStatus.QUAL, birth=f"{date.today().year - 9}0101"
    )
    refused = missions.client.post("/v1/vaccinations", json=_vaccination(child), headers=_key())
    assert refused.status_code == 422
    assert refused.json()["type"] == "urn:lgo:problem:vaccination-not-eligible"
    assert [r["code"] for r in refused.json()["refusals"]] == ["too-young"]
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    future = missions.client.post(
        "/v1/vaccinations", headers=_key(), json=_vaccination(child, administered_at=tomorrow)
    )
    assert future.status_code == 422 and "futur" in future.json()["detail"]
    adult = add_patient(missions.container.db, IdentityStatus.QUAL, nir=None)
    no_lot = f"]d2010{VACCINE.packs[0].cip13}17{NEXT_YEAR:%y%m%d}"
    bad = missions.client.post(
        "/v1/vaccinations", json=_vaccination(adult, datamatrix=no_lot), headers=_key()
    )
    assert bad.status_code == 422 and bad.json()["type"] == "urn:lgo:problem:vaccine-code-invalid"
    assert _count(missions, VaccinationRow) == 0


def test_invalid_requests_get_french_messages_per_field(missions: MissionsApi) -> None:
    refused = missions.client.post(
        "/v1/vaccinations",
        headers=_key(),
        json={
            "patient_id": "",
            "vaccine": "variole",
            "dose_number": 0,
        },
    )
    assert refused.status_code == 422
    messages = {e["loc"][-1]: e["msg"] for e in refused.json()["errors"]}
    assert messages["patient_id"] == "trop court : au moins 1 caractère(s)"
    assert messages["vaccine"].startswith("valeur non reconnue ; valeurs possibles : 'grippe'")
    assert messages["dose_number"] == "doit être supérieur ou égal à 1"
    both = missions.client.post(
        "/v1/trod",
        headers=_key(),
        json={
            "patient_id": "p",
            "test": "angine",
            "readings": {"streptocoque-a": "positif"},
            "kit": {"manufacturer": "X", "reference": "Y", "lot": "Z"},
            "performed_at": "2026-03-15T10:00:00",
        },
    )
    assert [e["msg"] for e in both.json()["errors"]] == [
        "heure du test avec fuseau horaire attendue"
    ]
    assert _count(missions, VaccinationRow) == 0 and _count(missions, TrodTestRow) == 0


def test_vaccination_from_a_scan_received_by_the_daemon(missions: MissionsApi) -> None:
    patient = add_patient(missions.container.db, IdentityStatus.PROV)
    scan = missions.client.post(
        "/v1/scans", json={"payload": datamatrix(VACCINE.packs[0].cip13, NEXT_YEAR, lot="LOTSCAN")}
    ).json()
    assert scan["kind"] == "gs1_datamatrix"
    body = {k: v for k, v in _vaccination(patient).items() if k != "datamatrix"}
    created = missions.client.post(
        "/v1/vaccinations", json={**body, "scan_id": scan["id"]}, headers=_key()
    )
    assert created.status_code == 201, created.text
    assert created.json()["product"]["lot"] == "LOTSCAN"
    not_a_dose = missions.client.post(
        "/v1/scans", json={"payload": "EPTEST0000000000000042"}
    ).json()
    refused = missions.client.post(
        "/v1/vaccinations", json={**body, "scan_id": not_a_dose["id"]}, headers=_key()
    )
    assert refused.status_code == 422
    assert refused.json()["type"] == "urn:lgo:problem:vaccine-code-invalid"


def test_vaccination_needs_a_pharmacist_session_and_a_key(missions: MissionsApi) -> None:
    patient = add_patient(missions.container.db, IdentityStatus.QUAL)
    assert missions.client.post("/v1/vaccinations", json=_vaccination(patient)).status_code == 400
    missions.container.sessions.close("test")
    closed = missions.client.post("/v1/vaccinations", json=_vaccination(patient), headers=_key())
    assert closed.status_code == 403


# ---------------------------------------------------------------- TROD


def _angine(patient: str, **criteria: Any) -> dict[str, Any]:
    return {
        "patient_id": patient,
        "test": "angine",
        "kit": {
            "manufacturer": "FICTILAB",
            "reference": "STREP-A-10",
            "lot": "K2026A",
            "expiry": NEXT_YEAR.isoformat(),
        },
        "readings": {"streptocoque-a": "positif"},
        "criteria": {"temperature_c": "38.6", "no_cough": True, "tender_nodes": True, **criteria},
    }


def test_positive_angine_within_protocol_dispensed_with_the_pharmacist_as_prescriber(
    missions: MissionsApi,
) -> None:
    client = missions.client
    patient = add_patient(missions.container.db, IdentityStatus.QUAL)
    created = client.post("/v1/trod", json=_angine(patient), headers=_key())
    assert created.status_code == 201, created.text
    test = created.json()
    assert test["positive"] and test["protocol"]["within"] and test["protocol"]["score"] == 3
    assert test["protocol"]["next"] == "dispense"
    assert [r["code"] for r in test["protocol"]["regimens"]] == ["amoxicilline"]
    assert test["document_id"]  # BIO-TROD produced for a qualified INS
    assert client.get(f"/v1/documents/{test['document_id']}").json()["kind"] == "trod-result"

    box = AMOXICILLIN.packs[0].cip13
    no_address = client.post(
        f"/v1/trod/{test['id']}/dispensation", json={"regimen": "amoxicilline", "cip13": box}
    )
    assert no_address.status_code == 422
    assert [m["datum"] for m in no_address.json()["missing"]] == ["patient_address"]
    dispensed = client.post(
        f"/v1/trod/{test['id']}/dispensation",
        json={"regimen": "amoxicilline", "cip13": box, "patient_address": ADDRESS},
    )
    assert dispensed.status_code == 201, dispensed.text
    body = dispensed.json()
    assert body["prescription_source"] == "protocole" and body["sync_status"] == "local_only"
    [line] = body["lines"]
    assert line["units"] == 12 and line["boxes"] == 1  # 1 g x 2 x 6 days, boxes of 14
    assert line["ordonnancier_number"] is not None

    [entry] = client.get("/v1/ordonnancier", params={"patient_id": patient}).json()
    assert entry["prescriber_rpps"] == "10000000009" == entry["pharmacist_rpps"]
    assert "pharmacien prescripteur" in entry["prescriber_name"]
    assert "protocole TROD angine" in entry["prescriber_name"]
    settings = missions.container.settings.pharmacy
    assert entry["prescriber_address"] == f"{settings.name}, {settings.address}"
    assert entry["patient_address"] == ADDRESS
    assert entry["quantity_units"] == 12

    # Exactly once: the same request again replays; another regimen is refused; one entry.
    again = client.post(
        f"/v1/trod/{test['id']}/dispensation",
        json={"regimen": "amoxicilline", "cip13": box, "patient_address": ADDRESS},
    )
    assert again.status_code == 201 and again.json()["id"] == body["id"]
    assert client.get(f"/v1/trod/{test['id']}").json()["dispensation_id"] == body["id"]
    types = [e.type for e in missions.container.events.recent()]
    assert types.count("trod.recorded") == 1 and types.count("trod.dispensed") == 1
    assert types.count("dispensation.committed") == 1
    assert len(client.get("/v1/ordonnancier", params={"patient_id": patient}).json()) == 1
    assert client.get(f"/v1/trod/{test['id']}").json()["protocol"]["next"] == "dispensed"
    # Another counter cannot dispense the same test again either.
    _, token = add_counter(missions.container.db, "comptoir-2")
    other = client.post(
        f"/v1/trod/{test['id']}/dispensation",
        json={
            "regimen": "amoxicilline",
            "cip13": box,
            "unit_mg": "500",
            "patient_address": ADDRESS,
        },
        headers={"Authorization": f"Bearer {token}"},
    )
    assert (
        other.status_code == 409
        and other.json()["type"] == "urn:lgo:problem:trod-already-dispensed"
    )
    assert len(client.get("/v1/ordonnancier", params={"patient_id": patient}).json()) == 1


def test_outside_criteria_gives_a_referral_and_no_antibiotic(missions: MissionsApi) -> None:
    client = missions.client
    patient = add_patient(missions.container.db, IdentityStatus.QUAL)
    created = client.post(
        "/v1/trod",
        json=_angine(patient, temperature_c="39.8", exclusions=["grossesse"]),
        headers=_key(),
    )
    assert created.status_code == 201, created.text
    test = created.json()
    assert not test["protocol"]["within"] and test["protocol"]["next"] == "refer"
    assert {r["code"] for r in test["protocol"]["refusals"]} == {"fever", "exclusion:grossesse"}
    refused = client.post(
        f"/v1/trod/{test['id']}/dispensation",
        json={
            "regimen": "amoxicilline",
            "cip13": AMOXICILLIN.packs[0].cip13,
            "patient_address": ADDRESS,
        },
    )
    assert refused.status_code == 422
    assert refused.json()["type"] == "urn:lgo:problem:trod-protocol-refused"
    assert client.get("/v1/ordonnancier", params={"patient_id": patient}).json() == []

    letter = client.get(f"/v1/trod/{test['id']}/referral")
    assert letter.status_code == 200 and letter.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in letter.headers["content-security-policy"]
    assert "Lettre d'orientation vers un médecin" in letter.text
    assert "Fièvre supérieure à 39,5 °C" in letter.text and "grossesse" in letter.text
    assert "FICTIF ALICE" in letter.text and "<script" not in letter.text


def test_positive_cystite_fosfomycin_single_dose(missions: MissionsApi) -> None:
    client = missions.client
    patient = add_patient(missions.container.db, IdentityStatus.PROV)
    created = client.post(
        "/v1/trod",
        headers=_key(),
        json={
            "patient_id": patient,
            "test": "cystite",
            "kit": {"manufacturer": "FICTILAB", "reference": "BU-10", "lot": "U77"},
            "readings": {"leucocytes": "positif", "nitrites": "negatif"},
            "criteria": {"temperature_c": "37.2"},
        },
    )
    assert created.status_code == 201, created.text
    test = created.json()
    assert (
        test["protocol"]["next"] == "dispense" and test["document_skipped"] == "ins-not-qualified"
    )
    still = client.post(f"/v1/trod/{test['id']}/document", json={})
    assert still.status_code == 201 and still.json()["document_skipped"] == "ins-not-qualified"
    dispensed = client.post(
        f"/v1/trod/{test['id']}/dispensation",
        json={
            "regimen": "fosfomycine",
            "cip13": FOSFOMYCIN.packs[0].cip13,
            "patient_address": ADDRESS,
        },
    )
    assert dispensed.status_code == 201, dispensed.text
    assert dispensed.json()["lines"][0]["units"] == 1
    wrong = client.post(
        f"/v1/trod/{test['id']}/dispensation",
        json={
            "regimen": "amoxicilline",
            "cip13": AMOXICILLIN.packs[0].cip13,
            "patient_address": ADDRESS,
        },
    )
    assert wrong.status_code == 409, wrong.text  # one antibiotic per test


def test_expired_kit_is_refused(missions: MissionsApi) -> None:
    patient = add_patient(missions.container.db, IdentityStatus.QUAL)
    body = _angine(patient)
    body["kit"]["expiry"] = (date.today() - timedelta(days=1)).isoformat()
    refused = missions.client.post("/v1/trod", json=body, headers=_key())
    assert refused.status_code == 422
    assert refused.json()["type"] == "urn:lgo:problem:trod-kit-expired"
    assert _count(missions, TrodTestRow) == 0


# ---------------------------------------------------------------- PostgreSQL storage


@pytest.fixture
def missions_pg(
    tmp_path: Path,
    national_sim: NationalSim,
    mss_server: MssServer,
    mss_pki: MssPki,
    pg_cluster: Any,
) -> Iterator[MissionsApi]:
    yield from missions_api(tmp_path, national_sim, mss_server, mss_pki, pg_cluster.new_database())


@pytest.mark.postgres
def test_storage_on_postgresql(missions_pg: MissionsApi) -> None:
    client = missions_pg.client
    patient = add_patient(missions_pg.container.db, IdentityStatus.QUAL)
    headers = _key()
    created = client.post("/v1/vaccinations", json=_vaccination(patient), headers=headers)
    assert created.status_code == 201, created.text
    assert (
        client.post("/v1/vaccinations", json=_vaccination(patient), headers=headers).json()["id"]
        == created.json()["id"]
    )
    test = client.post("/v1/trod", json=_angine(patient), headers=_key()).json()
    box = AMOXICILLIN.packs[0].cip13
    first = client.post(
        f"/v1/trod/{test['id']}/dispensation",
        json={"regimen": "amoxicilline", "cip13": box, "patient_address": ADDRESS},
    )
    assert first.status_code == 201, first.text
    assert (
        client.get("/v1/vaccinations", params={"patient": patient}).json()[0]["id"]
        == created.json()["id"]
    )
    assert [t["id"] for t in client.get("/v1/trod", params={"test": "angine"}).json()] == [
        test["id"]
    ]


# ---------------------------------------------------------------- dashboard


def test_dashboard_counts_acts_and_their_documents(missions: MissionsApi, tmp_path: Path) -> None:
    client = missions.client
    patient = add_patient(missions.container.db, IdentityStatus.QUAL)
    assert (
        client.post("/v1/vaccinations", json=_vaccination(patient), headers=_key()).status_code
        == 201
    )
    assert missions.deliver_documents() == 1  # the note reaches the DMP
    # Then the patient blocks the pharmacy in the DMP: the TROD result is refused for good.
    sim_control(
        missions.sim.base_url,
        "patients",
        {"ins": FICTIVE_NIR, "oid": InsOid.TEST.value, "blocked": [PHARMACY_IDNAT]},
    )
    test = client.post("/v1/trod", json=_angine(patient), headers=_key()).json()
    assert missions.deliver_documents() == 1
    assert (
        client.post(
            f"/v1/trod/{test['id']}/dispensation",
            json={
                "regimen": "amoxicilline",
                "cip13": AMOXICILLIN.packs[0].cip13,
                "patient_address": ADDRESS,
            },
        ).status_code
        == 201
    )

    today = today_local().isoformat()
    body = client.get("/v1/stats", params={"from": today, "to": today}).json()
    mine = {
        k: v
        for k, v in body["totals"].items()
        if k.split(".")[0] in {"vaccinations", "vaccination_notes", "trod", "trod_results"}
    }
    assert mine == {
        "vaccinations.recorded": 1,
        "vaccination_notes.delivered": 1,
        "vaccination_notes.failed": 0,
        "trod.recorded": 1,
        "trod.protocol_dispensed": 1,
        "trod_results.delivered": 0,
        "trod_results.failed": 1,
    }
    assert body["totals"]["paper.dispensed"] == 0  # the protocol's is not a paper prescription
    assert {"source": "trod_results", "error": "dmp-access-refused", "count": 1} in body["failures"]
    exported = client.get("/v1/stats/export.csv", params={"from": today, "to": today}).text
    assert "total,vaccinations.recorded,vaccinations réalisées,1\r\n" in exported
    assert "total,failure:trod_results:dmp-access-refused,échec,1\r\n" in exported

    env = {
        "LGO_DATABASE__URL": missions.container.settings.database_url,
        "LGO_STATE_DIR": str(tmp_path / "cli-state"),
        "LGO_LOGGING__JSON": "false",
        "COLUMNS": "200",
    }
    try:
        shown = CliRunner().invoke(cli_app, ["stats", "--from", today, "--to", today], env=env)
    finally:
        structlog.reset_defaults()  # the command logged to the runner's closed stderr
    assert shown.exit_code == 0, shown.output
    line = next(x for x in shown.output.splitlines() if "antibiotiques délivrés sous" in x)
    assert line.replace("│", " ").split()[-2:] == ["1", "1"]  # that day, and the total
    assert "trod_results" in shown.output and "dmp-access-refused" in shown.output


# ---------------------------------------------------------------- CI-SIS conformance


@pytest.fixture
def missions_kit(
    tmp_path: Path,
    national_sim: NationalSim,
    mss_server: MssServer,
    mss_pki: MssPki,
    cisis_kit: CisisKit,
) -> Iterator[MissionsApi]:
    yield from missions_api(
        tmp_path,
        national_sim,
        mss_server,
        mss_pki,
        documents={
            "cisis_kit_dir": str(cisis_kit.kit_dir),
            "cisis_cache_dir": str(tmp_path / "cisis"),
        },
    )


def test_documents_of_the_acts_pass_the_cisis_kit(
    missions_kit: MissionsApi, cisis_kit: CisisKit
) -> None:
    client = missions_kit.client
    patient = add_patient(missions_kit.container.db, IdentityStatus.QUAL)
    act = client.post("/v1/vaccinations", json=_vaccination(patient), headers=_key()).json()
    test = client.post("/v1/trod", json=_angine(patient), headers=_key()).json()
    cystite = client.post(
        "/v1/trod",
        headers=_key(),
        json={
            "patient_id": patient,
            "test": "cystite",
            "kit": {"manufacturer": "FICTILAB", "reference": "BU-10", "lot": "U77"},
            "readings": {"leucocytes": "positif", "nitrites": "positif"},
        },
    ).json()
    for document_id, kind in (
        (act["document_id"], DocumentKind.VACCINATION_NOTE),
        (test["document_id"], DocumentKind.TROD_RESULT),
        (cystite["document_id"], DocumentKind.TROD_RESULT),
    ):
        assert document_id, (act, test, cystite)
        cda = client.get(f"/v1/documents/{document_id}/cda").content
        assert cisis_kit.schema_errors(cda) == []
        assert cisis_kit.failed_asserts(VOLETS[kind], cda) == []
    assert missions_kit.deliver_documents() == 3
    assert len(sim_documents(missions_kit.sim.base_url)) == 3


def test_a_rejected_note_is_not_sent_and_the_counter_reads_the_failed_rules(
    missions_kit: MissionsApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The act happened, so it stays recorded; its note fails the kit (a builder defect: the ATC
    class under a wrong code system), so nothing is stored nor sent, and the answer says why in
    French, rule by rule."""
    monkeypatch.setattr(document_types, "ATC", "1.2.3.4")
    patient = add_patient(missions_kit.container.db, IdentityStatus.QUAL)
    created = missions_kit.client.post(
        "/v1/vaccinations", json=_vaccination(patient), headers=_key()
    )
    assert created.status_code == 201, created.text
    act = created.json()
    assert act["document_id"] is None and act["document_skipped"] == "cda-non-conformant"
    problem = act["document_problem"]
    assert problem["type"] == "urn:lgo:problem:cda-non-conformant"
    assert problem["title"] == "Document non conforme au volet CI-SIS : envoi bloqué"
    assert any("le code ATC du vaccin est obligatoire" in rule for rule in problem["failed_rules"])
    assert missions_kit.client.get(f"/v1/patients/{patient}/documents").json() == []
    assert missions_kit.deliver_documents() == 0 and sim_documents(missions_kit.sim.base_url) == []


def test_an_unqualified_ins_is_explained_in_french(missions: MissionsApi) -> None:
    patient = add_patient(missions.container.db, IdentityStatus.PROV)
    act = missions.client.post("/v1/trod", json=_angine(patient), headers=_key()).json()
    assert act["document_skipped"] == "ins-not-qualified"
    assert act["document_problem"]["type"] == "urn:lgo:problem:ins-not-qualified"
    assert "INS" in act["document_problem"]["title"]


# ---------------------------------------------------------------- one document per act


def _stored_act(db: Database) -> str:
    patient = add_patient(db, IdentityStatus.QUAL)
    act_id = str(uuid.uuid4())
    now = datetime.now(UTC)
    with db.uow() as uow:
        uow.session.add(
            VaccinationRow(
                id=act_id,
                idempotency_key=act_id,
                request_hash="h",
                created_at=now,
                administered_at=now,
                patient_id=patient,
                vaccine="grippe",
                gtin="0" + "3" * 13,
                cip13="3" * 13,
                cis_code="60000001",
                product_label="VACCIN",
                lot_number="L",
                expiry=NEXT_YEAR,
                act="rappel",
                route="intramusculaire",
                pharmacist_rpps="1" * 11,
                pharmacist_national_id="8" + "1" * 11,
                session_id="s",
                eligibility="{}",
            )
        )
        uow.commit()
    return act_id


@dataclass(frozen=True)
class _Produced:
    """What the documents service answers, as the act store reads it (the document's id)."""

    id: str


def test_document_production_is_claimed_once_and_retaken_after_the_lease(any_db: Database) -> None:
    store = ActStore(
        any_db,
        VaccinationRow,
        VaccinationRow.administered_at,
        VaccinationRow.vaccine,
        lambda row: {"id": row.id, "document_id": row.document_id},
        "absent",
    )
    act_id = _stored_act(any_db)
    assert store._claim(act_id) is True
    assert store._claim(act_id) is False  # another producer holds it
    with any_db.uow() as uow:  # the first producer died: its lease runs out
        uow.session.execute(
            update(VaccinationRow)
            .where(VaccinationRow.id == act_id)
            .values(document_claimed_at=datetime.now(UTC) - DOCUMENT_LEASE - timedelta(seconds=1))
        )
        uow.commit()
    assert store.link_document(act_id, lambda: _Produced("2.25.42")) is True
    assert store.get(act_id)["document_id"] == "2.25.42"
    assert store.link_document(act_id, lambda: _Produced("2.25.43")) is False  # it has its document
    assert store.get(act_id)["document_id"] == "2.25.42"


def test_two_counters_racing_on_one_test_get_one_dispensation(
    missions: MissionsApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Should both pass the check for an earlier dispensation at the same moment, the second
    commit meets the first on the protocol prescription (one per test): nothing left to deliver."""
    client = missions.client
    patient = add_patient(missions.container.db, IdentityStatus.QUAL)
    test = client.post("/v1/trod", json=_angine(patient), headers=_key()).json()
    body = {
        "regimen": "amoxicilline",
        "cip13": AMOXICILLIN.packs[0].cip13,
        "patient_address": ADDRESS,
    }
    assert client.post(f"/v1/trod/{test['id']}/dispensation", json=body).status_code == 201
    monkeypatch.setattr(TrodService, "_earlier", lambda *_: None)  # the race: check passed
    _, token = add_counter(missions.container.db, "comptoir-2")
    second = client.post(
        f"/v1/trod/{test['id']}/dispensation",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
    )
    assert second.status_code == 422
    assert [r["code"] for r in second.json()["refusals"]] == ["nothing_left"]
    assert len(client.get("/v1/ordonnancier", params={"patient_id": patient}).json()) == 1


def test_a_recipient_outside_mssante_is_refused_before_anything_is_written(
    missions: MissionsApi,
) -> None:
    """MSSanté carries mail inside its trust space only (addresses in *.mssante.fr): an ordinary
    address would only fail later, after the act, so it is refused with the act."""
    patient = add_patient(missions.container.db, IdentityStatus.QUAL)
    for path, body in (
        ("/v1/vaccinations", _vaccination(patient, mss_recipient="dr.exemple@exemple.fr")),
        ("/v1/trod", {**_angine(patient), "mss_recipient": "dr.exemple@mssante.fr.exemple.com"}),
    ):
        refused = missions.client.post(path, json=body, headers=_key())
        assert refused.status_code == 422, refused.text
        assert refused.json()["type"] == "urn:lgo:problem:mss-recipient-invalid"
        assert "MSSanté" in refused.json()["title"]
    assert _count(missions, VaccinationRow) == 0 and _count(missions, TrodTestRow) == 0
