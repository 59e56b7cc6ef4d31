"""On the real stack (daemon container, DMP simulator over HTTP) with the CI-SIS kit configured:
documents produced through the API pass the kit and are sent; ``GET /v1/documents/{id}/cda``
returns the exact bytes the DMP received; a non-conformant document is neither stored nor sent.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from lxml import etree

from lgo.bootstrap.documents import part_of
from lgo.core.settings import load_settings
from lgo.documents import doctypes as t
from lgo.documents.cda import NS, build_document
from lgo.documents.conformance import VOLETS, CisisKit, DocumentChecker
from lgo.documents.errors import CdaNonConformantError
from lgo.documents.models import DocumentKind
from lgo.domain.identity import IdentityStatus, InsOid
from lgo.national.dmp import DmpClient, DmpDocumentRejected
from lgo.services.prescriptions import InMemoryCatalog
from tests.fixtures.api import ApiHarness, running_api
from tests.fixtures.dispensing import open_pharmacist_session
from tests.fixtures.documents import (
    FICTIVE_NIR,
    FICTIVE_RPPS,
    make_header,
    make_vaccination_note,
    sim_documents,
)
from tests.fixtures.national import NationalSim
from tests.integration.documents.test_document_flow import add_patient, dispense
from tests.integration.documents.test_documents_api import _dispense_through_the_daemon, _wait_for

pytestmark = pytest.mark.integration

VACCINATION = {
    "administered_at": "2026-03-15T10:05:00+01:00",
    "product_code": "3400930000001",
    "product_label": "VACCIN GRIPPAL FICTIF",
    "lot_number": "LOT-42A",
    "cis_code": "60000001",
    "atc_code": "J07BB02",
    "atc_label": "vaccin de la grippe",
    "dose_number": 1,
    "act": "rappel",
    "site": "deltoide-gauche",
}


@pytest.fixture
def api_kit(tmp_path: Path, national_sim: NationalSim, cisis_kit: CisisKit) -> Iterator[ApiHarness]:
    settings = load_settings(
        state_dir=tmp_path / "state",
        hardware={"pcsc_enabled": False},
        national={"base_url": national_sim.base_url, "timeout_s": 2.0},
        documents={
            "cisis_kit_dir": str(cisis_kit.kit_dir),
            "cisis_cache_dir": str(tmp_path / "cisis"),
        },
    )
    with running_api(settings, "comptoir-cisis") as harness:
        part_of(harness.container).worker.stop()  # deliveries driven by the test (run_once)
        yield harness


def _sent_bytes(national_sim: NationalSim, unique_id: str) -> bytes:
    """What the DMP simulator holds for ``unique_id``, fetched back over ITI-43."""
    client = DmpClient.over_http(
        national_sim.base_url + "/dmp", finess="750000000", timeout_s=2.0, connect_timeout_s=1.0
    )
    try:
        [entry] = [
            e
            for e in client.find_documents(FICTIVE_NIR, InsOid.TEST.value, author_rpps=FICTIVE_RPPS)
            if e.unique_id == unique_id
        ]
        return client.retrieve(entry.repository_id, entry.unique_id, author_rpps=FICTIVE_RPPS)
    finally:
        client.close()


def _produce_send_and_fetch(harness: ApiHarness, body: dict[str, object]) -> tuple[str, bytes]:
    created = harness.client.post("/v1/documents", json=body)
    assert created.status_code == 201, created.text
    document_id: str = created.json()["id"]
    assert part_of(harness.container).worker.run_once() == 1
    state = harness.client.get(f"/v1/documents/{document_id}").json()
    assert [d["status"] for d in state["deliveries"]] == ["delivered"], state
    cda = harness.client.get(f"/v1/documents/{document_id}/cda")
    assert cda.status_code == 200
    assert cda.headers["content-type"].startswith("application/xml")
    return document_id, cda.content


def test_dispensing_document_through_the_api_passes_the_kit_and_is_the_one_sent(
    api_kit: ApiHarness, national_sim: NationalSim, catalog: InMemoryCatalog, cisis_kit: CisisKit
) -> None:
    open_pharmacist_session(api_kit.container)
    patient_id = add_patient(api_kit.container.db, IdentityStatus.QUAL)
    dispensation_id = dispense(api_kit.container.db, catalog, patient_id)
    document_id, cda = _produce_send_and_fetch(
        api_kit, {"kind": "dispensing-summary", "dispensation_id": dispensation_id}
    )
    assert cisis_kit.schema_errors(cda) == []
    assert cisis_kit.failed_asserts(VOLETS[DocumentKind.DISPENSING_SUMMARY], cda) == []
    assert _sent_bytes(national_sim, document_id) == cda
    [stored] = [d for d in sim_documents(national_sim.base_url) if d["unique_id"] == document_id]
    assert stored["format_code"]["code"] == "urn:ihe:pharm:dis:2010"
    page = api_kit.client.get(f"/v1/documents/{document_id}/html")
    assert "Dispensation médicamenteuse" in page.text  # the view is rendered from those bytes


def test_vaccination_note_through_the_api_passes_the_kit(
    api_kit: ApiHarness, national_sim: NationalSim, cisis_kit: CisisKit
) -> None:
    open_pharmacist_session(api_kit.container)
    patient_id = add_patient(api_kit.container.db, IdentityStatus.QUAL)
    document_id, cda = _produce_send_and_fetch(
        api_kit,
        {
            "kind": "vaccination-note",
            "patient_id": patient_id,
            "vaccinations": [VACCINATION],
        },
    )
    assert cisis_kit.failed_asserts(VOLETS[DocumentKind.VACCINATION_NOTE], cda) == []
    assert _sent_bytes(national_sim, document_id) == cda
    root = etree.fromstring(cda)
    assert root.find(f"{{{NS}}}code").get("code") == "87273-9"  # type: ignore[union-attr]


def test_a_non_conformant_document_is_not_stored_nor_sent(
    api_kit: ApiHarness, national_sim: NationalSim, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A builder defect (the vaccine's ATC class written with a wrong code system): lgo's schema
    still accepts the document, the VAC-NOTE schematron does not."""
    open_pharmacist_session(api_kit.container)
    patient_id = add_patient(api_kit.container.db, IdentityStatus.QUAL)
    monkeypatch.setattr(t, "ATC", "1.2.3.4")
    calls_before = httpx.get(f"{national_sim.base_url}/_sim/dmp/calls", timeout=5).json()

    refused = api_kit.client.post(
        "/v1/documents",
        json={
            "kind": "vaccination-note",
            "patient_id": patient_id,
            "vaccinations": [VACCINATION],
        },
    )
    assert refused.status_code == 422
    problem = refused.json()
    assert problem["type"] == "urn:lgo:problem:cda-non-conformant"
    assert problem["volet"] == "VAC-NOTE_2023.01"
    assert any("le code ATC du vaccin est obligatoire" in rule for rule in problem["failed_rules"])
    # nothing stored, nothing queued, nothing sent
    assert api_kit.client.get(f"/v1/patients/{patient_id}/documents").json() == []
    assert part_of(api_kit.container).worker.run_once() == 0
    assert httpx.get(f"{national_sim.base_url}/_sim/dmp/calls", timeout=5).json() == calls_before
    [event] = [e for e in api_kit.container.events.recent() if e.type == "document.rejected"]
    assert event.data["rules"] == ["E_Vaccination_VAC-Note"]
    assert event.data["patient_id"] == patient_id


def test_the_dmp_client_refuses_to_send_a_non_conformant_document(
    dmp_sim: str, cisis_kit: CisisKit
) -> None:
    document = build_document(make_header(), make_vaccination_note())
    broken = replace(
        document, xml=document.xml.replace(b'root="1.2.250.1.213.1.1.1.46"', b'root="1.2.3.4"')
    )
    client = DmpClient.over_http(
        dmp_sim + "/dmp",
        finess="750000000",
        timeout_s=2.0,
        connect_timeout_s=1.0,
        checker=DocumentChecker(cisis_kit),
    )
    try:
        with pytest.raises(CdaNonConformantError):
            client.provide(broken, author_rpps=FICTIVE_RPPS)
        assert httpx.get(f"{dmp_sim}/_sim/dmp/calls", timeout=5).json() == []
        client.provide(document, author_rpps=FICTIVE_RPPS)  # the conformant one goes
        assert len(httpx.get(f"{dmp_sim}/_sim/dmp/calls", timeout=5).json()) == 1
    finally:
        client.close()


def test_the_dmp_simulator_refuses_a_non_conformant_document_with_an_xds_error(
    dmp_sim: str, cisis_kit: CisisKit
) -> None:
    """The simulator checks with the same kit (its own runner) and answers as the DMP does; the
    client here checks lgo's schema only, so the broken document reaches the DMP."""
    turned_on = httpx.post(
        f"{dmp_sim}/_sim/dmp/conformance", json={"kit_dir": str(cisis_kit.kit_dir)}, timeout=30
    )
    assert turned_on.json() == {"ok": True, "checking": True}
    document = build_document(make_header(), make_vaccination_note())
    broken = replace(
        document, xml=document.xml.replace(b'root="1.2.250.1.213.1.1.1.46"', b'root="1.2.3.4"')
    )
    client = DmpClient.over_http(
        dmp_sim + "/dmp",
        finess="750000000",
        timeout_s=10.0,
        connect_timeout_s=1.0,
        checker=DocumentChecker(),
    )
    try:
        with pytest.raises(DmpDocumentRejected) as rejected:
            client.provide(broken, author_rpps=FICTIVE_RPPS)
        rules = rejected.value.extra["failed_rules"]
        assert any(
            r.startswith("[Entete_VAC-NOTE]") and "1.2.250.1.213.1.1.1.46" in r for r in rules
        )
        assert sim_documents(dmp_sim) == []
        calls = httpx.get(f"{dmp_sim}/_sim/dmp/calls", timeout=5).json()
        assert calls == [{"action": "provide", "outcome": "XDSRegistryMetadataError"}]
        client.provide(document, author_rpps=FICTIVE_RPPS)  # conformant: stored
        assert [d["unique_id"] for d in sim_documents(dmp_sim)] == [document.document_id]
    finally:
        client.close()
        httpx.post(f"{dmp_sim}/_sim/dmp/conformance", json={"kit_dir": None}, timeout=5)


def test_auto_feed_does_not_send_a_non_conformant_summary(
    api_kit: ApiHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The DMP auto-feed after a dispensation: a summary that fails its volet is skipped, with the
    reason and the rule ids as events for the counter, nothing stored."""
    open_pharmacist_session(api_kit.container)
    patient_id = add_patient(api_kit.container.db, IdentityStatus.QUAL)
    monkeypatch.setattr(t, "DISPENSED_SECTION", t.Code("11111-1", t.LOINC, "Autre"))
    dispensation_id = _dispense_through_the_daemon(api_kit, patient_id)
    event = _wait_for(api_kit, {"document.queued", "document.skipped"})
    assert event.data == {"dispensation_id": dispensation_id, "reason": "cda-non-conformant"}
    [rejected] = [e for e in api_kit.container.events.recent() if e.type == "document.rejected"]
    assert rejected.data["volet"] == "eDISP-MED_2024.01"
    assert rejected.data["rules"] == ["S_dispensationMedicaments"]
    assert api_kit.client.get(f"/v1/patients/{patient_id}/documents").json() == []


def test_a_document_the_dmp_rejects_names_the_failed_rules_on_its_delivery(
    tmp_path: Path,
    national_sim: NationalSim,
    cisis_kit: CisisKit,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """lgo without the kit, the DMP (simulator) with it: the delivery fails for good, and the
    counter reads which rules the DMP named (ids only: a rule text may quote a coded value)."""
    settings = load_settings(
        state_dir=tmp_path / "state",
        hardware={"pcsc_enabled": False},
        national={"base_url": national_sim.base_url, "timeout_s": 10.0},
    )
    httpx.post(
        f"{national_sim.base_url}/_sim/dmp/conformance",
        json={"kit_dir": str(cisis_kit.kit_dir)},
        timeout=60,
    )
    monkeypatch.setattr(t, "ATC", "1.2.3.4")  # lgo's schema accepts it, the volet does not
    try:
        with running_api(settings, "comptoir-dmp-rejet") as harness:
            part_of(harness.container).worker.stop()
            open_pharmacist_session(harness.container)
            patient_id = add_patient(harness.container.db, IdentityStatus.QUAL)
            created = harness.client.post(
                "/v1/documents",
                json={
                    "kind": "vaccination-note",
                    "patient_id": patient_id,
                    "vaccinations": [VACCINATION],
                },
            )
            assert created.status_code == 201, created.text
            assert part_of(harness.container).worker.run_once() == 1
            [delivery] = harness.client.get(f"/v1/documents/{created.json()['id']}").json()[
                "deliveries"
            ]
    finally:
        httpx.post(
            f"{national_sim.base_url}/_sim/dmp/conformance", json={"kit_dir": None}, timeout=5
        )
    assert delivery["status"] == "failed"
    assert delivery["last_error"] == "dmp-document-rejected (règles : E_Vaccination_VAC-Note)"
