"""DMP client against the XDS.b simulator over real HTTP on 127.0.0.1."""

from __future__ import annotations

import hashlib

import httpx
import pytest

from lgo.documents.cda import build_document
from lgo.documents.models import CdaDocument
from lgo.domain.identity import with_key
from lgo.national.dmp import DmpAbsent, DmpAccessRefused, DmpClient, DmpDocumentUnknown
from lgo.national.errors import (
    MalformedResponse,
    RequestRejected,
    ServiceTimeout,
    ServiceUnavailable,
)
from lgo.national.transport import NationalHttpClient, RetryPolicy
from tests.fixtures.documents import (
    FICTIVE_NIR,
    FICTIVE_RPPS,
    arm_fault,
    make_dispensing_summary,
    make_header,
    make_vaccination_note,
    sim_control,
    sim_documents,
)

pytestmark = pytest.mark.integration
OID = "1.2.250.1.213.1.4.10"
OTHER_NIR = with_key("1850578006084")  # another fictitious patient


@pytest.fixture
def note() -> CdaDocument:
    return build_document(make_header(), make_vaccination_note())


def test_provide_registers_with_metadata_then_query_and_retrieve(
    dmp_client: DmpClient, dmp_sim: str, note: CdaDocument
) -> None:
    receipt = dmp_client.provide(note, author_rpps=FICTIVE_RPPS)
    assert receipt.unique_id == note.document_id and not receipt.already_stored

    [stored] = sim_documents(dmp_sim)
    assert stored["patient_id"] == f"{FICTIVE_NIR}^^^&{OID}&ISO^NH"
    assert stored["unique_id"] == note.document_id
    assert stored["type_code"] == {
        "code": "87273-9",
        "system": "2.16.840.1.113883.6.1",
        "display": "Note de vaccination",
    }
    assert stored["mime_type"] == "text/xml"
    assert stored["hash"] == hashlib.sha1(note.xml).hexdigest()
    assert stored["creation_time"] == "20260315093000"  # 10:30 Paris = 09:30 UTC
    assert str(stored["author_person"]).startswith("8" + FICTIVE_RPPS + "^EXEMPLE^Paul")
    assert stored["submission_set_id"] == receipt.submission_set_id

    entries = dmp_client.find_documents(FICTIVE_NIR, OID, author_rpps=FICTIVE_RPPS)
    assert [(e.unique_id, e.type_code, e.title) for e in entries] == [
        (note.document_id, "87273-9", "Note de vaccination")
    ]
    content = dmp_client.retrieve(
        entries[0].repository_id, note.document_id, author_rpps=FICTIVE_RPPS
    )
    assert content == note.xml


def test_query_lists_only_this_patients_documents(dmp_client: DmpClient) -> None:
    dmp_client.provide(
        build_document(make_header(), make_dispensing_summary()), author_rpps=FICTIVE_RPPS
    )
    assert dmp_client.find_documents(OTHER_NIR, OID, author_rpps=FICTIVE_RPPS) == []


def test_identical_resubmission_is_accepted_once(
    dmp_client: DmpClient, dmp_sim: str, note: CdaDocument
) -> None:
    dmp_client.provide(note, author_rpps=FICTIVE_RPPS)
    dmp_client.provide(note, author_rpps=FICTIVE_RPPS)
    assert len(sim_documents(dmp_sim)) == 1


def test_same_unique_id_with_other_content_is_rejected(
    dmp_client: DmpClient, note: CdaDocument
) -> None:
    dmp_client.provide(note, author_rpps=FICTIVE_RPPS)
    other = build_document(make_header(document_id=note.document_id), make_dispensing_summary())
    with pytest.raises(RequestRejected):
        dmp_client.provide(other, author_rpps=FICTIVE_RPPS)


def test_patient_without_dmp(dmp_client: DmpClient, dmp_sim: str, note: CdaDocument) -> None:
    sim_control(dmp_sim, "patients", {"ins": FICTIVE_NIR, "oid": OID, "absent": True})
    with pytest.raises(DmpAbsent):
        dmp_client.provide(note, author_rpps=FICTIVE_RPPS)
    with pytest.raises(DmpAbsent):
        dmp_client.find_documents(FICTIVE_NIR, OID, author_rpps=FICTIVE_RPPS)
    assert sim_documents(dmp_sim) == []


@pytest.mark.parametrize("blocked", ["8" + FICTIVE_RPPS, "1750000000"])
def test_patient_block_refuses_access(
    dmp_client: DmpClient, dmp_sim: str, note: CdaDocument, blocked: str
) -> None:
    sim_control(dmp_sim, "patients", {"ins": FICTIVE_NIR, "oid": OID, "blocked": [blocked]})
    with pytest.raises(DmpAccessRefused):
        dmp_client.provide(note, author_rpps=FICTIVE_RPPS)
    with pytest.raises(DmpAccessRefused):
        dmp_client.find_documents(FICTIVE_NIR, OID, author_rpps=FICTIVE_RPPS)
    assert sim_documents(dmp_sim) == []


def test_one_503_is_retried_transparently(
    dmp_client: DmpClient, dmp_sim: str, note: CdaDocument
) -> None:
    arm_fault(dmp_sim, kind="error", status=503, times=1)
    dmp_client.provide(note, author_rpps=FICTIVE_RPPS)
    assert len(sim_documents(dmp_sim)) == 1
    recorded = httpx.get(f"{dmp_sim}/_sim/recorder", params={"service": "dmp"}, timeout=5).json()
    assert len(recorded) == 2  # the failed attempt and the retry, both recorded by the simulator


def test_outage_becomes_service_unavailable(
    dmp_client: DmpClient, dmp_sim: str, note: CdaDocument
) -> None:
    arm_fault(dmp_sim, kind="outage", duration_s=30)
    with pytest.raises(ServiceUnavailable):
        dmp_client.provide(note, author_rpps=FICTIVE_RPPS)
    assert sim_documents(dmp_sim) == []


@pytest.mark.parametrize(
    ("mode", "error"),
    [("soap_receiver", ServiceUnavailable), ("malformed", MalformedResponse)],
)
def test_soap_faults_and_garbage_become_typed_errors(
    dmp_client: DmpClient, dmp_sim: str, note: CdaDocument, mode: str, error: type[Exception]
) -> None:
    sim_control(dmp_sim, "faults", {"mode": mode, "count": 5})
    with pytest.raises(error):
        dmp_client.provide(note, author_rpps=FICTIVE_RPPS)


def test_retrieve_unknown_document(dmp_client: DmpClient) -> None:
    with pytest.raises(DmpDocumentUnknown):
        dmp_client.retrieve("1.2.250.1.213.1.1.9", "2.25.1", author_rpps=FICTIVE_RPPS)


def test_timeout_after_the_registry_stored_is_retried_without_duplicate(
    dmp_sim: str, note: CdaDocument
) -> None:
    # The simulator processes the request then holds the answer past the client's timeout: the
    # worst case (stored remotely, unknown locally). The retry carries the same uniqueId.
    arm_fault(dmp_sim, kind="timeout", delay_s=1.0, times=1)
    http = NationalHttpClient(
        "dmp",
        dmp_sim + "/dmp",
        timeout_s=0.4,
        connect_timeout_s=0.4,
        retry=RetryPolicy(attempts=3, backoff_s=0.01),
        sleep=lambda _: None,
    )
    with DmpClient(http, finess="750000000") as client:
        receipt = client.provide(note, author_rpps=FICTIVE_RPPS)
    assert receipt.unique_id == note.document_id
    assert [d["unique_id"] for d in sim_documents(dmp_sim)] == [note.document_id]
    recorded = httpx.get(f"{dmp_sim}/_sim/recorder", params={"service": "dmp"}, timeout=5).json()
    assert len(recorded) == 2


def test_a_dmp_that_never_answers_is_a_timeout(dmp_sim: str, note: CdaDocument) -> None:
    arm_fault(dmp_sim, kind="timeout", delay_s=1.0, times=2)
    http = NationalHttpClient(
        "dmp",
        dmp_sim + "/dmp",
        timeout_s=0.3,
        connect_timeout_s=0.3,
        retry=RetryPolicy(attempts=2, backoff_s=0.01),
        sleep=lambda _: None,
    )
    with DmpClient(http, finess="750000000") as client, pytest.raises(ServiceTimeout):
        client.provide(note, author_rpps=FICTIVE_RPPS)
