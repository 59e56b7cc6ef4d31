"""A scripted day at the counter against the national simulator (real HTTP, SOAP and SMTP on
127.0.0.1), with injected failures; then every figure of ``/v1/stats``, its CSV export and the
Prometheus metrics is checked against what the script did and what the simulator recorded.

The day: three professional sessions (CPS; e-CPS signed in through Pro Santé Connect's CIBA after a
refused attempt; CPS still open); patients from a carte Vitale (2),
from apCV (1) and typed (1); INSi: one INS found then qualified by an ID document, one not found,
one service down (siram_40); one apCV token exchanged (and replayed, refused); an e-prescription
dispensed and reported; another dispensed in degraded mode during an e-prescription outage (its
report stays queued); a paper prescription; a dispensing summary delivered to the DMP and by
MSSanté; a vaccination note refused by the DMP (patient blocked the pharmacy) and by MSSanté
(recipient outside the MSSanté domain).
"""

from __future__ import annotations

import csv
import io
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from hwsim.mss import MssServer
from hwsim.national.faults import FaultKind, FaultSpec
from lgo.api.app import create_app
from lgo.bootstrap import dispensing as dispensing_part
from lgo.bootstrap import documents as documents_part
from lgo.bootstrap.container import Container
from lgo.bootstrap.stats import NOT_COUNTERS
from lgo.core.settings import load_settings
from lgo.domain.identity import IdentityStatus, InsOid, with_key
from lgo.domain.products import Pack, Product, RegulatoryList
from lgo.national.apcv import ApcvTokenUsed
from lgo.services.counters import add_counter
from lgo.services.sessions import ProfessionalIdentity, SessionKind
from lgo.services.stats import FIGURE_NAMES, today_local
from lgo.store import migrate
from tests.fixtures.dispensing import (
    LIST_I_PRODUCT,
    PHARMACIST_RPPS,
    PLAIN_PRODUCT,
    dispensation_input,
    paper,
    pharmacist,
)
from tests.fixtures.documents import FICTIVE_NIR, MssPki, sim_control
from tests.fixtures.national import NationalSim
from tests.integration.documents.test_document_flow import add_patient

pytestmark = pytest.mark.integration

AMOX = "3400999999014"
PARA = "3400999999991"
RX_OK = "01S2TBPZ2JCNZZYGHZ"  # simulator fixture e-prescription
RX_DOWN = "EPTEST0000000000000042"
PHARMACY_IDNAT = "1750000000"  # the DMP simulator's structure id of the pharmacy
# The services the script calls itself; the daemon may ask others on its own (the Annuaire, for the
# dispensing part's prescriber check): the simulator's record says which.
SCRIPTED_SERVICES = {"eprescription", "apcv", "insi", "dmp", "psc"}
PSC_PHARMACIST = "10999999997"  # PSC simulator fixture: approves the CIBA request
PSC_REFUSER = "10999999971"  # PSC simulator fixture: refuses it
# Answers that are business outcomes, not failures of the service (lgo.services.stats).
BUSINESS_REFUSALS = {400, 404, 409, 410, 412, 422}
# Known to the INSi simulator (found); the second one is not (and is the patient of RX_OK).
CAMILLE = {
    "birth_name": "Testnom",
    "given_names": "Camille",
    "birth_date": "19991231",
    "sex": "F",
    "nir": with_key("2991275056999"),
    "source": "vitale",
}
NOBODY = {
    "birth_name": "Testpatient",
    "given_names": "Dominique Jean",
    "birth_date": "19850314",
    "sex": "M",
    "nir": with_key("1850369123456"),
    "source": "vitale",
}
APCV_PATIENT = {
    "birth_name": "Apcvnom",
    "given_names": "Louis",
    "birth_date": "19880202",
    "sex": "M",
    "nir": with_key("1880275056456"),
    "source": "apcv",
}


@dataclass
class Day:
    client: TestClient
    container: Container
    sim: NationalSim
    mss: MssServer


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def day(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    national_sim: NationalSim,
    mss_server: MssServer,
    mss_pki: MssPki,
) -> Iterator[Day]:
    database_url = (
        request.getfixturevalue("pg_cluster").new_database()
        if request.param == "postgresql"
        else None
    )
    settings = load_settings(
        state_dir=tmp_path / "state",
        database={"url": database_url},
        hardware={"pcsc_enabled": False},
        national={
            "base_url": national_sim.base_url,
            "timeout_s": 2.0,
            "eprescription": {"attempts": 1},
            "dmp": {"auto_feed": False},  # documents are produced by the script, one by one
            "mss": {
                "host": mss_server.host,
                "port": mss_server.port,
                "cert_file": str(mss_pki.pharmacy.cert_file),
                "key_file": str(mss_pki.pharmacy.key_file),
                "ca_file": str(mss_pki.ca_file),
            },
        },
    )
    # No CIBA polling pause (as the PSC tests do); the setting is read when the sim is reset.
    interval = national_sim.state.settings.get("psc_ciba_interval")
    national_sim.state.settings["psc_ciba_interval"] = 0
    national_sim.reset()
    container = Container(settings)
    migrate.upgrade(container.db)
    _, token = add_counter(container.db, "comptoir-stats")
    catalog = dispensing_part.part_of(container).catalog
    catalog.add(
        Product(
            AMOX,
            "AMOXICILLINE TEST 1 g cp B/6",
            RegulatoryList.LIST_I,
            molecule="amoxicilline",
            packs=(Pack(AMOX, 6, 250),),
        )
    )
    catalog.add(Product(PARA, "PARACETAMOL TEST 1 g cp B/8", packs=(Pack(PARA, 8, 200),)))
    for product in (LIST_I_PRODUCT, PLAIN_PRODUCT):
        catalog.add(product)
    app = create_app(settings, container)
    base = f"http://127.0.0.1:{settings.api.port}"
    with TestClient(app, base_url=base, headers={"Authorization": f"Bearer {token}"}) as client:
        # The queues are driven by the script (run_once), not by their background threads.
        dispensing_part.part_of(container).worker.stop()
        documents_part.part_of(container).worker.stop()
        yield Day(client, container, national_sim, mss_server)
    if interval is None:
        national_sim.state.settings.pop("psc_ciba_interval", None)
    else:
        national_sim.state.settings["psc_ciba_interval"] = interval


def open_session(container: Container, kind: SessionKind) -> None:
    identity = ProfessionalIdentity(
        national_id="8" + PHARMACIST_RPPS,
        rpps=PHARMACIST_RPPS,
        family_name="PHARMACIEN",
        given_name="TEST",
        profession_code="21",
        structure_id="750000000",
    )
    container.sessions.open(kind, identity)


def ecps_sign_in(client: TestClient, rpps: str) -> int:
    """An e-CPS sign-in through the API (CIBA against the PSC simulator); the final HTTP status."""
    started = client.post("/v1/cps/session/psc/ciba", json={"login_hint": rpps})
    assert started.status_code == 202, started.text
    login_id = started.json()["login_id"]
    for _ in range(20):  # the simulator answers "pending" once, then decides
        answer = client.post(f"/v1/cps/session/psc/ciba/{login_id}/poll")
        if answer.status_code != 200 or answer.json()["status"] != "pending":
            return answer.status_code
    raise AssertionError("still pending")


def create_patient(client: TestClient, traits: dict[str, str]) -> str:
    created = client.post("/v1/patients", json=traits)
    assert created.status_code == 201, created.text
    patient_id: str = created.json()["id"]
    return patient_id


def run_identity(day: Day) -> dict[str, str]:
    client = day.client
    ids = {
        name: create_patient(client, traits)
        for name, traits in (("camille", CAMILLE), ("nobody", NOBODY), ("apcv", APCV_PATIENT))
    }
    found = client.post(f"/v1/patients/{ids['camille']}/ins", json={"mode": "retrieve"})
    assert found.status_code == 200, found.text
    qualified = client.post(
        f"/v1/patients/{ids['camille']}/identity-documents", json={"document": "cni"}
    )
    assert qualified.json()["identity_status"] == "qualified"
    missing = client.post(f"/v1/patients/{ids['nobody']}/ins", json={"mode": "retrieve"})
    assert missing.status_code == 404, missing.text
    httpx.post(
        day.sim.url("/_sim/insi/next"), json={"fault": "siram_40", "count": 1}, timeout=5
    ).raise_for_status()
    down = client.post(f"/v1/patients/{ids['apcv']}/ins", json={"mode": "retrieve"})
    assert down.status_code == 503, down.text
    return ids


def run_apcv(day: Day) -> None:
    issued = httpx.post(day.sim.url("/_sim/apcv/tokens"), json={"identity": "camille"}, timeout=5)
    token = issued.json()["token"]
    apcv = day.container.national.apcv
    apcv.exchange(token, author_rpps=PHARMACIST_RPPS)
    with pytest.raises(ApcvTokenUsed):  # a replay is refused: not an exchange, not a failure
        apcv.exchange(token, author_rpps=PHARMACIST_RPPS)


def run_dispensing(day: Day, ids: dict[str, str], docs_patient: str) -> None:
    client, worker = day.client, dispensing_part.part_of(day.container).worker
    assert client.get(f"/v1/prescriptions/{RX_OK}").status_code == 200
    ok = client.post(
        "/v1/dispensations",
        headers={"Idempotency-Key": "stats-day-1"},
        json={
            # The prescription's patient (Camille is another patient: refused before writing).
            "patient_id": ids["nobody"],
            "prescription_id": RX_OK,
            "patient_address": "1 rue Fictive, 75000 Paris",  # list I: in the ordonnancier
            "lines": [{"line_no": 1, "intervention": "unchanged", "days": 6, "cip13": AMOX}],
        },
    )
    assert ok.status_code == 201, ok.text
    assert worker.run_once() == 1
    day.sim.faults.arm(FaultSpec(service="eprescription", kind=FaultKind.OUTAGE, duration_s=600))
    degraded = client.post(
        "/v1/dispensations",
        headers={"Idempotency-Key": "stats-day-2"},
        json={
            "patient_id": ids["apcv"],
            "prescription_id": RX_DOWN,
            "lines": [
                {"line_no": 1, "intervention": "unchanged", "days": 5, "cip13": PARA, "boxes": 2}
            ],
            "paper": {
                "prescribed_on": date.today().isoformat(),
                "prescriber_rpps": "10000000009",
                "prescriber_name": "TESTMEDECIN DOMINIQUE",
                "eprescription": True,
                "lines": [
                    {
                        "designation": "PARACETAMOL TEST 1 g",
                        "cip13": PARA,
                        "units_per_day": "3",
                        "duration_days": 5,
                    }
                ],
            },
        },
    )
    assert degraded.status_code == 201, degraded.text
    assert degraded.json()["degraded"] is True
    assert worker.run_once() == 1  # the report meets the outage: rescheduled, stays pending
    service = dispensing_part.part_of(day.container).service
    rx = paper("RX-" + uuid.uuid4().hex[:8].upper())
    service.dispense(
        str(uuid.uuid4()), dispensation_input(docs_patient, rx), pharmacist(), degraded=False
    )


def run_documents(day: Day, docs_patient: str) -> None:
    client, worker = day.client, documents_part.part_of(day.container).worker
    [paper_dispensation] = [d for d in _dispensations(day) if d["patient_id"] == docs_patient]
    summary = client.post(
        "/v1/documents",
        json={
            "kind": "dispensing-summary",
            "dispensation_id": paper_dispensation["id"],
            "mss_recipient": "dr.exemple@medecin.mssante.fr",
        },
    )
    assert summary.status_code == 201, summary.text
    assert worker.run_once() == 2
    sim_control(
        day.sim.base_url,
        "patients",
        {"ins": FICTIVE_NIR, "oid": InsOid.TEST.value, "blocked": [PHARMACY_IDNAT]},
    )
    # An MSSanté address the directory does not know: the counter refuses an address outside
    # MSSanté up front, so the unknown mailbox is the server's permanent refusal.
    day.mss.mailbox.fail_next("550 5.1.1 Destinataire inconnu de l'annuaire MSSante")
    note = client.post(
        "/v1/documents",
        json={
            "kind": "vaccination-note",
            "patient_id": docs_patient,
            "mss_recipient": "inconnu@medecin.mssante.fr",
            "vaccinations": [
                {
                    "administered_at": "2026-03-15T10:05:00+01:00",
                    "product_code": "3400930000001",
                    "product_label": "VACCIN FICTIF",
                    "lot_number": "LOT-42A",
                    "cis_code": "60000001",
                    "atc_code": "J07BB02",
                }
            ],
        },
    )
    assert note.status_code == 201, note.text
    assert worker.run_once() == 2


def _dispensations(day: Day) -> list[dict[str, Any]]:
    from sqlalchemy import select

    from lgo.store.models.dispensing import DispensationRow

    with day.container.db.uow(readonly=True) as uow:
        rows = uow.session.scalars(select(DispensationRow)).all()
        return [{"id": r.id, "patient_id": r.patient_id} for r in rows]


def run_the_day(day: Day) -> None:
    open_session(day.container, SessionKind.CPS)
    ids = run_identity(day)
    run_apcv(day)
    assert ecps_sign_in(day.client, PSC_REFUSER) == 403  # refused on the phone: no session
    assert ecps_sign_in(day.client, PSC_PHARMACIST) == 200  # closes the first CPS session
    current = day.container.sessions.current()
    assert current is not None and current.kind is SessionKind.ECPS
    docs_patient = add_patient(day.container.db, IdentityStatus.QUAL)  # typed, qualified INS
    run_dispensing(day, ids, docs_patient)
    run_documents(day, docs_patient)
    open_session(day.container, SessionKind.CPS)  # closes the e-CPS one; stays open
    day.container.psc.login.wait_revocations()  # the e-CPS tokens revoked at PSC


EXPECTED = {
    "eprescription.dispensed": 2,
    "eprescription.degraded": 1,
    "paper.dispensed": 1,
    "eprescription.reports_delivered": 1,
    "eprescription.reports_failed": 0,
    "patients.vitale": 1,
    "patients.apcv": 1,
    "patients.other": 1,
    "patients.new_vitale": 2,
    "patients.new_apcv": 1,
    "apcv.exchanges": 1,
    "ins.insi_calls": 3,
    "ins.found": 1,
    "ins.qualified": 1,
    "ins.failed": 2,
    "dmp.delivered": 1,
    "dmp.failed": 1,
    "mss.delivered": 1,
    "mss.failed": 1,
    "signins.cps": 2,
    "signins.ecps": 1,
    # The day's vaccination note is posted to /v1/documents (no act recorded): its DMP delivery
    # fails (the patient blocked the pharmacy).
    "vaccinations.recorded": 0,
    "vaccination_notes.delivered": 0,
    "vaccination_notes.failed": 1,
    "trod.recorded": 0,
    "trod.protocol_dispensed": 0,
    "trod_results.delivered": 0,
    "trod_results.failed": 0,
}


def national_truth(sim: NationalSim) -> tuple[int, Counter[str]]:
    """Calls the simulator answered, and the failed ones by ``service:status``."""
    entries = sim.recorder.entries()  # every HTTP service (SMTP is not recorded there)
    assert all(e.status is not None for e in entries)  # every call was answered in this script
    failed = Counter(
        f"{e.service}:{e.status}"
        for e in entries
        if e.status and e.status >= 400 and e.status not in BUSINESS_REFUSALS
    )
    return len(entries), failed


def test_scripted_day_figures_csv_and_metrics(day: Day) -> None:
    run_the_day(day)
    calls, national_failed = national_truth(day.sim)
    assert national_failed  # the outage and siram_40 were seen by the simulator
    expected = {**EXPECTED, "national.calls": calls, "national.failed": national_failed.total()}
    today = today_local()

    stats = day.client.get("/v1/stats", params={"from": str(today), "to": str(today), "by": "day"})
    assert stats.status_code == 200, stats.text
    body = stats.json()
    [bucket] = body["buckets"]
    assert bucket["period"] == today.isoformat()
    assert bucket["figures"] == expected
    assert body["totals"] == expected
    assert [f["name"] for f in body["figures"]] == list(FIGURE_NAMES)
    failures = {(f["source"], f["error"]): f["count"] for f in body["failures"]}
    assert failures == {
        ("insi", "insi-not-found"): 1,
        ("insi", "insi-unavailable"): 1,
        ("dmp", "dmp-access-refused"): 1,
        ("mss", failures_key(failures, "mss")): 1,
        ("vaccination_notes", "dmp-access-refused"): 1,
        **{("national", key): count for key, count in national_failed.items()},
    }
    backlog = {q["queue"]: q for q in body["backlog"]}
    assert (backlog["eprescription"]["pending"], backlog["eprescription"]["failed"]) == (1, 0)
    oldest = datetime.fromisoformat(backlog["eprescription"]["oldest_pending_at"])
    assert (
        oldest.date() == datetime.now(UTC).date()
        and backlog["eprescription"]["oldest_pending_age_s"] >= 0
    )
    assert (backlog["dmp"]["pending"], backlog["dmp"]["failed"]) == (0, 1)
    assert (backlog["mss"]["pending"], backlog["mss"]["failed"]) == (0, 1)

    month = day.client.get(
        "/v1/stats", params={"from": str(today.replace(day=1)), "to": str(today), "by": "month"}
    ).json()
    assert [b["period"] for b in month["buckets"]] == [today.strftime("%Y-%m")]
    assert month["buckets"][0]["figures"] == expected

    check_csv(day, today, expected, failures)
    check_metrics(day, expected, calls)


def failures_key(failures: dict[tuple[str, str], int], source: str) -> str:
    [error] = [error for (src, error) in failures if src == source]
    assert error.startswith("mss-")  # a typed error slug of the MSSanté client
    return error


def check_csv(
    day: Day, today: date, expected: dict[str, int], failures: dict[tuple[str, str], int]
) -> None:
    exported = day.client.get("/v1/stats/export.csv", params={"from": str(today), "to": str(today)})
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    assert "attachment" in exported.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    per_day = {r["figure"]: int(r["count"]) for r in rows if r["period"] == today.isoformat()}
    totals = {r["figure"]: int(r["count"]) for r in rows if r["period"] == "total"}
    for table in (per_day, totals):
        assert {k: v for k, v in table.items() if not k.startswith("failure:")} == expected
        assert {
            tuple(k.split(":", 2)[1:]): v for k, v in table.items() if k.startswith("failure:")
        } == failures


def check_metrics(day: Day, expected: dict[str, int], calls: int) -> None:
    text = day.client.get("/metrics").text
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    for name, value in expected.items():
        if name in NOT_COUNTERS:  # can go down after a retry: exposed as queue gauges instead
            assert ("lgo_services_socles_total", (("figure", name),)) not in samples
            continue
        assert samples[("lgo_services_socles_total", (("figure", name),))] == value, name
    national = {labels: v for (n, labels), v in samples.items() if n == "lgo_national_calls_total"}
    assert sum(national.values()) == calls
    services = {dict(labels)["service"] for labels in national}
    assert SCRIPTED_SERVICES <= services == {e.service for e in day.sim.recorder.entries()}
    assert national[(("service", "apcv"), ("status", "200"))] == 1
    assert national[(("service", "apcv"), ("status", "409"))] == 1
    assert samples[("lgo_queue_messages", (("queue", "eprescription"), ("state", "pending")))] == 1
    assert samples[("lgo_queue_messages", (("queue", "dmp"), ("state", "failed")))] == 1
    assert samples[("lgo_queue_messages", (("queue", "mss"), ("state", "failed")))] == 1
    assert samples[("lgo_queue_messages", (("queue", "eprescription"), ("state", "failed")))] == 0
    assert samples[("lgo_queue_oldest_pending_age_seconds", (("queue", "eprescription"),))] >= 0
    assert samples[("lgo_queue_oldest_pending_age_seconds", (("queue", "dmp"),))] == 0
    assert samples[("lgo_professional_session_open", (("kind", "cps"),))] == 1
    assert samples[("lgo_professional_session_open", (("kind", "ecps"),))] == 0
