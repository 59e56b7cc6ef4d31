"""``/v1/documents`` and the patient's DMP through the daemon's API (container, simulators live)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from hwsim.mss import MssServer
from lgo.bootstrap import dispensing as dispensing_part
from lgo.bootstrap.documents import part_of
from lgo.core.events import Event
from lgo.core.settings import load_settings
from lgo.domain.identity import IdentityStatus, InsOid
from lgo.services.prescriptions import InMemoryCatalog
from tests.fixtures.api import ApiHarness, running_api
from tests.fixtures.dispensing import (
    LIST_I_PRODUCT,
    PLAIN_PRODUCT,
    dispensation_input,
    open_pharmacist_session,
    paper,
    pharmacist,
)
from tests.fixtures.documents import FICTIVE_NIR, MssPki, sim_control
from tests.fixtures.national import NationalSim
from tests.integration.documents.test_document_flow import add_patient, dispense

pytestmark = pytest.mark.integration
RECIPIENT = "dr.exemple@medecin.mssante.fr"


@pytest.fixture
def api_documents(
    tmp_path: Path, national_sim: NationalSim, mss_server: MssServer, mss_pki: MssPki
) -> Iterator[ApiHarness]:
    settings = load_settings(
        state_dir=tmp_path / "state",
        hardware={"pcsc_enabled": False},
        national={
            "base_url": national_sim.base_url,
            "timeout_s": 2.0,
            "mss": {
                "host": mss_server.host,
                "port": mss_server.port,
                "cert_file": str(mss_pki.pharmacy.cert_file),
                "key_file": str(mss_pki.pharmacy.key_file),
                "ca_file": str(mss_pki.ca_file),
            },
        },
    )
    with running_api(settings, "comptoir-documents") as harness:
        # Deliveries are driven by the test (run_once), not by the background thread.
        part_of(harness.container).worker.stop()
        yield harness


def test_produce_deliver_follow_and_consult(
    api_documents: ApiHarness, catalog: InMemoryCatalog, mss_server: MssServer
) -> None:
    container, client = api_documents.container, api_documents.client
    open_pharmacist_session(container)
    patient_id = add_patient(container.db, IdentityStatus.QUAL)
    dispensation_id = dispense(container.db, catalog, patient_id)

    created = client.post(
        "/v1/documents",
        json={
            "kind": "dispensing-summary",
            "dispensation_id": dispensation_id,
            "mss_recipient": RECIPIENT,
        },
    )
    assert created.status_code == 201, created.text
    document = created.json()
    assert [d["kind"] for d in document["deliveries"]] == ["dmp.provide", "mss.send"]
    assert {d["status"] for d in document["deliveries"]} == {"pending"}

    assert part_of(container).worker.run_once() == 2
    state = client.get(f"/v1/documents/{document['id']}").json()
    assert {d["status"] for d in state["deliveries"]} == {"delivered"}
    assert len(mss_server.mailbox.received()) == 1

    page = client.get(f"/v1/documents/{document['id']}/html")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert "FICTIVOL 10 mg cp" in page.text

    listed = client.get(f"/v1/patients/{patient_id}/dmp")
    assert listed.status_code == 200, listed.text
    [entry] = listed.json()
    assert entry["unique_id"] == document["id"]
    opened = client.get(
        f"/v1/patients/{patient_id}/dmp/document",
        params={
            "repository_id": entry["repository_id"],
            "unique_id": entry["unique_id"],
        },
    )
    assert opened.status_code == 200 and "Dispensation médicamenteuse" in opened.text
    mine = client.get(f"/v1/patients/{patient_id}/documents").json()
    assert [d["id"] for d in mine] == [document["id"]]
    queue = client.get("/v1/documents/deliveries", params={"status": "delivered"}).json()
    assert queue["degraded"] is False
    assert sorted(d["kind"] for d in queue["deliveries"]) == ["dmp.provide", "mss.send"]
    assert (
        client.get("/v1/documents/deliveries", params={"status": "failed"}).json()["deliveries"]
        == []
    )


def test_unqualified_patient_is_refused_with_a_problem(
    api_documents: ApiHarness, catalog: InMemoryCatalog
) -> None:
    container, client = api_documents.container, api_documents.client
    open_pharmacist_session(container)
    patient_id = add_patient(container.db, IdentityStatus.RECUP)
    dispensation_id = dispense(container.db, catalog, patient_id)
    response = client.post(
        "/v1/documents", json={"kind": "dispensing-summary", "dispensation_id": dispensation_id}
    )
    assert response.status_code == 409
    assert response.json()["type"] == "urn:lgo:problem:ins-not-qualified"
    assert response.json()["identity_problem"] == "identity-not-qualified"
    assert client.get(f"/v1/patients/{patient_id}/documents").json() == []


def test_pharmacist_session_required(api_documents: ApiHarness) -> None:
    response = api_documents.client.post(
        "/v1/documents", json={"kind": "dispensing-summary", "dispensation_id": "x"}
    )
    assert response.status_code == 403
    assert response.json()["type"] == "urn:lgo:problem:pharmacist-session-required"


def test_unknown_document_is_404(api_documents: ApiHarness) -> None:
    response = api_documents.client.get("/v1/documents/2.25.1")
    assert response.status_code == 404
    assert response.json()["type"] == "urn:lgo:problem:document-not-found"


def _wait_for(harness: ApiHarness, kinds: set[str], limit_s: float = 10.0) -> Event:
    """The first event of one of ``kinds`` (bounded wait: the feed runs on the app's loop)."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        for event in harness.container.events.recent():
            if event.type in kinds:
                return event
        time.sleep(0.02)
    raise AssertionError(f"no {kinds} event within {limit_s} s")


def _dispense_through_the_daemon(harness: ApiHarness, patient_id: str) -> str:
    dispensing = dispensing_part.part_of(harness.container)
    for product in (LIST_I_PRODUCT, PLAIN_PRODUCT):
        dispensing.catalog.add(product)
    rx = paper("RX-" + uuid.uuid4().hex[:8].upper())
    result = dispensing.service.dispense(
        str(uuid.uuid4()), dispensation_input(patient_id, rx), pharmacist(), degraded=True
    )
    dispensation_id: str = result.body["id"]
    return dispensation_id


def test_auto_feed_produces_the_summary_after_a_dispensation(api_documents: ApiHarness) -> None:
    open_pharmacist_session(api_documents.container)
    patient_id = add_patient(api_documents.container.db, IdentityStatus.QUAL)
    dispensation_id = _dispense_through_the_daemon(api_documents, patient_id)
    event = _wait_for(api_documents, {"document.queued", "document.skipped"})
    assert event.type == "document.queued"
    [document] = api_documents.client.get(f"/v1/patients/{patient_id}/documents").json()
    assert document["dispensation_id"] == dispensation_id
    assert document["kind"] == "dispensing-summary"
    assert [d["kind"] for d in document["deliveries"]] == ["dmp.provide"]


def test_auto_feed_skips_an_unqualified_patient(api_documents: ApiHarness) -> None:
    open_pharmacist_session(api_documents.container)
    patient_id = add_patient(api_documents.container.db, IdentityStatus.VALI)
    dispensation_id = _dispense_through_the_daemon(api_documents, patient_id)
    event = _wait_for(api_documents, {"document.queued", "document.skipped"})
    assert event.data == {"dispensation_id": dispensation_id, "reason": "ins-not-qualified"}
    assert api_documents.client.get(f"/v1/patients/{patient_id}/documents").json() == []


def test_vaccination_note_by_api_blocked_then_retried(
    api_documents: ApiHarness, national_sim: NationalSim
) -> None:
    container, client = api_documents.container, api_documents.client
    open_pharmacist_session(container)
    patient_id = add_patient(container.db, IdentityStatus.QUAL)
    sim_control(
        national_sim.base_url,
        "patients",
        {"ins": FICTIVE_NIR, "oid": InsOid.TEST.value, "blocked": ["1750000000"]},
    )
    vaccination = {
        "administered_at": "2026-03-15T10:05:00+01:00",
        "product_code": "3400930000001",
        "product_label": "VACCIN GRIPPAL FICTIF",
        "lot_number": "LOT-42A",
        "cis_code": "60000001",
        "atc_code": "J07BB02",
    }
    naive = client.post(
        "/v1/documents",
        json={
            "kind": "vaccination-note",
            "patient_id": patient_id,
            "vaccinations": [{**vaccination, "administered_at": "2026-03-15T10:05:00"}],
        },
    )
    assert naive.status_code == 422
    created = client.post(
        "/v1/documents",
        json={
            "kind": "vaccination-note",
            "patient_id": patient_id,
            "vaccinations": [vaccination],
        },
    )
    assert created.status_code == 201, created.text
    part_of(container).worker.run_once()
    [failed] = client.get("/v1/documents/deliveries", params={"status": "failed"}).json()[
        "deliveries"
    ]
    assert failed["last_error"] == "dmp-access-refused"

    sim_control(national_sim.base_url, "patients", {"ins": FICTIVE_NIR, "oid": InsOid.TEST.value})
    assert client.post(f"/v1/documents/deliveries/{failed['id']}/retry").json() == {"queued": True}
    part_of(container).worker.run_once()
    state = client.get(f"/v1/documents/{created.json()['id']}").json()
    assert [d["status"] for d in state["deliveries"]] == ["delivered"]
    again = client.post(f"/v1/documents/deliveries/{failed['id']}/retry")
    assert again.status_code == 409
