"""XDS.b messages built by the DMP client and replies it reads (no network: httpx.MockTransport)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable

import httpx
import pytest
from lxml import etree

from lgo.documents.cda import build_document
from lgo.documents.models import CdaDocument
from lgo.national import xds
from lgo.national.dmp import (
    Caller,
    DmpAbsent,
    DmpAccessRefused,
    DmpClient,
    DmpDocumentRejected,
    provide_request,
    query_request,
)
from lgo.national.errors import MalformedResponse, RequestRejected, ServiceUnavailable
from lgo.national.transport import NationalHttpClient, RetryPolicy, ServiceClient
from tests.fixtures.documents import FICTIVE_NIR, FICTIVE_RPPS, make_header, make_vaccination_note

NS = xds.NSMAP
OID = "1.2.250.1.213.1.4.10"


@pytest.fixture
def note() -> CdaDocument:
    return build_document(make_header(), make_vaccination_note())


def _entry(envelope: bytes) -> etree._Element:
    root = etree.fromstring(envelope)
    found = root.find(".//rim:ExtrinsicObject", NS)
    assert found is not None
    return found


def _code(entry: etree._Element, scheme: str) -> str | None:
    found = xds.find_classification(entry, scheme)
    return found.get("nodeRepresentation") if found is not None else None


def test_provide_carries_the_metadata_and_the_document(note: CdaDocument) -> None:
    envelope, set_uid = provide_request(note)
    root = etree.fromstring(envelope)
    assert root.findtext("soap:Header/wsa:Action", namespaces=NS) == xds.ACTION_PROVIDE
    context = root.find("soap:Header/ctx:DmpContext", NS)
    assert (
        context is not None and context.findtext("ctx:Author", namespaces=NS) == "8" + FICTIVE_RPPS
    )
    entry = _entry(envelope)
    patient = f"{FICTIVE_NIR}^^^&{OID}&ISO^NH"
    assert xds.find_external_id(entry, xds.DE_PATIENT_ID) == patient
    assert xds.find_external_id(entry, xds.DE_UNIQUE_ID) == note.document_id
    assert _code(entry, xds.DE_TYPE_CODE) == "87273-9"
    assert _code(entry, xds.DE_CONFIDENTIALITY) == "N"
    # XDS codes from the CI-SIS value sets, consistent with the VAC-NOTE volet
    assert _code(entry, xds.DE_FORMAT_CODE) == "urn:asip:ci-sis:vac-note:2021"
    assert _code(entry, xds.DE_PRACTICE_SETTING) == "AMBULATOIRE"
    assert _code(entry, xds.DE_FACILITY_TYPE) == "SA33"
    author = xds.find_classification(entry, xds.DE_AUTHOR)
    assert author is not None
    assert xds.slot_values(author, "authorSpecialty") == ["G15_21^Pharmacien^1.2.250.1.213.1.1.4.5"]
    assert xds.slot_values(entry, "hash") == [hashlib.sha1(note.xml).hexdigest()]
    assert xds.slot_values(entry, "size") == [str(len(note.xml))]
    assert xds.slot_values(entry, "creationTime") == ["20260315093000"]
    assert xds.slot_values(entry, "serviceStartTime") == ["20260315090500"]
    package = root.find(".//rim:RegistryPackage", NS)
    assert package is not None
    assert xds.find_external_id(package, xds.SS_PATIENT_ID) == patient
    assert xds.find_external_id(package, xds.SS_UNIQUE_ID) == set_uid
    association = root.find(".//rim:Association", NS)
    assert association is not None
    assert (association.get("sourceObject"), association.get("targetObject")) == (
        package.get("id"),
        entry.get("id"),
    )
    document = root.find(".//xdsb:Document", NS)
    assert document is not None and document.get("id") == entry.get("id")
    assert base64.b64decode(document.text or "") == note.xml


def test_query_asks_find_documents_for_the_patient() -> None:
    root = etree.fromstring(
        query_request(FICTIVE_NIR, OID, Caller("8" + FICTIVE_RPPS, "1750000000"))
    )
    query = root.find(".//rim:AdhocQuery", NS)
    assert query is not None and query.get("id") == xds.FIND_DOCUMENTS
    assert xds.slot_values(query, "$XDSDocumentEntryPatientId") == [
        f"'{FICTIVE_NIR}^^^&{OID}&ISO^NH'"
    ]


def _registry_reply(status: str, *codes: str) -> bytes:
    root, body = xds.envelope(
        "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-bResponse",
        author_idnat="x",
        structure_idnat="y",
    )
    response = xds.sub(body, xds.RS, "RegistryResponse", status=status)
    if codes:
        errors = xds.sub(response, xds.RS, "RegistryErrorList")
        for code in codes:
            xds.sub(errors, xds.RS, "RegistryError", errorCode=code)
    return etree.tostring(root)


def _client(handler: Callable[[httpx.Request], httpx.Response]) -> DmpClient:
    http = NationalHttpClient(
        "dmp",
        "http://dmp.test",
        transport=httpx.MockTransport(handler),
        retry=RetryPolicy(attempts=2, backoff_s=0),
        sleep=lambda _: None,
    )
    return DmpClient(http, finess="750000000")


def _answer(body: bytes, status: int = 200) -> Callable[[httpx.Request], httpx.Response]:
    return lambda _request: httpx.Response(
        status, content=body, headers={"Content-Type": "application/soap+xml"}
    )


@pytest.mark.parametrize(
    ("codes", "error"),
    [
        (("XDSUnknownPatientId",), DmpAbsent),
        (("DMPAccessDeniedByPatient",), DmpAccessRefused),
        (("XDSRegistryBusy",), ServiceUnavailable),
        (("XDSRegistryMetadataError",), DmpDocumentRejected),
    ],
)
def test_registry_errors_map_to_typed_errors(
    note: CdaDocument, codes: tuple[str, ...], error: type[Exception]
) -> None:
    client = _client(_answer(_registry_reply(xds.STATUS_FAILURE, *codes)))
    with pytest.raises(error):
        client.provide(note, author_rpps=FICTIVE_RPPS)


def test_duplicate_unique_id_counts_as_already_stored(note: CdaDocument) -> None:
    client = _client(_answer(_registry_reply(xds.STATUS_FAILURE, "XDSDuplicateUniqueIdInRegistry")))
    assert client.provide(note, author_rpps=FICTIVE_RPPS).already_stored


@pytest.mark.parametrize(
    "body",
    [
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>',
        b"<soap:Envelope",
        b"not xml at all",
        b"<a>" + b"x" * (9 * 1024 * 1024) + b"</a>",
        b'<Envelope xmlns="urn:other"><Body><x/></Body></Envelope>',
    ],
    ids=["doctype", "truncated", "text", "oversize", "not-soap"],
)
def test_hostile_or_broken_replies_are_malformed(note: CdaDocument, body: bytes) -> None:
    client = _client(_answer(body))
    with pytest.raises(MalformedResponse):
        client.provide(note, author_rpps=FICTIVE_RPPS)


def test_soap_sender_fault_is_a_rejection_receiver_fault_an_outage(note: CdaDocument) -> None:
    def fault(code: str) -> bytes:
        root, body = xds.envelope("x", author_idnat="x", structure_idnat="y")
        value = xds.sub(
            xds.sub(xds.sub(body, xds.SOAP, "Fault"), xds.SOAP, "Code"), xds.SOAP, "Value"
        )
        value.text = code
        return etree.tostring(root)

    with pytest.raises(RequestRejected):
        _client(_answer(fault("soap:Sender"), 500)).provide(note, author_rpps=FICTIVE_RPPS)
    with pytest.raises(ServiceUnavailable):
        _client(_answer(fault("soap:Receiver"), 500)).provide(note, author_rpps=FICTIVE_RPPS)


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (403, RequestRejected),
        (404, RequestRejected),
        (502, ServiceUnavailable),
        (503, ServiceUnavailable),
    ],
)
def test_an_error_page_without_a_soap_fault_is_typed_by_its_status(
    note: CdaDocument, status: int, error: type[Exception]
) -> None:
    page = b"<html><body><h1>Forbidden</h1></body></html>"
    client = _client(
        lambda _request: httpx.Response(status, content=page, headers={"Content-Type": "text/html"})
    )
    with pytest.raises(error) as refused:
        client.provide(note, author_rpps=FICTIVE_RPPS)
    assert not isinstance(refused.value, MalformedResponse)


def test_the_dmp_client_is_a_service_client() -> None:
    client = _client(lambda _request: httpx.Response(200))
    assert isinstance(client, ServiceClient) and client.service == "dmp"
    with client:
        pass  # the base's context manager closes the HTTP client
