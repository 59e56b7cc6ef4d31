"""DMP / Mon espace santé client: IHE XDS.b over SOAP 1.2.

- ITI-41 provide-and-register: one CDA document with its DocumentEntry, a SubmissionSet and the
  HasMember association. The document travels **inline, base64** in ``xdsb:Document`` (no MTOM/XOP
  packaging: a plain ``application/soap+xml`` body is enough for documents of a few kB, and keeps
  the hardened parser on the whole reply).
- ITI-18 registry stored query ``FindDocuments`` (LeafClass) on the patient's INS.
- ITI-43 retrieve by repository and document unique ids.

Replies are parsed with :func:`lgo.core.safe_xml.parse_xml` (size cap, no DTD/entities). Registry errors map
to typed errors a counter can show: :class:`DmpAccessRefused` (the patient blocked this
professional or structure), :class:`DmpAbsent` (no DMP, or closed), and the shared
:class:`ServiceUnavailable` / :class:`ServiceTimeout` for outages. Provide is safe to retry: the
document ``uniqueId`` is the idempotency key (the registry answers success for an identical
resubmission, and ``XDSDuplicateUniqueIdInRegistry`` is taken as "already there").

Every call leaves one ``national_call`` trace line (through :class:`NationalHttpClient`): author
RPPS, local time, action, request id, status. Never the document, the INS or any name.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Protocol

import httpx
from lxml import etree

from lgo.core.safe_xml import XmlRejectedError, parse_xml
from lgo.documents.conformance import DocumentChecker
from lgo.documents.doctypes import DOCUMENT_TYPES, NORMAL_CONFIDENTIALITY, PHARMACY_FACILITY
from lgo.documents.elements import profession
from lgo.documents.models import CdaDocument
from lgo.national import xds
from lgo.national.dmp_auth import DmpAuthenticator, with_assertion
from lgo.national.errors import (
    MalformedResponse,
    NationalServiceError,
    RequestRejected,
    ServiceUnavailable,
)
from lgo.national.transport import NationalHttpClient, ServiceClient, refusal_error

MAX_REPLY_BYTES: Final = 8 * 1024 * 1024
SOURCE_ID: Final = "1.2.250.1.213.4.1.1.1"  # submission-set sourceId (the software's own)
REPOSITORY_DEFAULT: Final = "1.2.250.1.213.1.1.9"
CDA_MIME: Final = "text/xml"
STRUCT_FINESS_PREFIX: Final = "1"
Element = xds.Element


class DmpAccessRefused(NationalServiceError):
    slug = "dmp-access-refused"
    status = 403
    title = (
        "Accès au DMP refusé : le patient a bloqué l'accès de ce professionnel ou de la pharmacie"
    )


class DmpAbsent(NationalServiceError):
    slug = "dmp-absent"
    status = 404
    title = "Le patient n'a pas de DMP (Mon espace santé non ouvert ou clôturé)"


class DmpDocumentRejected(RequestRejected):
    """The DMP refused the document (its metadata, or its content against the CI-SIS volet): it
    will never be accepted as it is. ``failed_rules``: the registry's reasons."""

    slug = "dmp-document-rejected"
    status = 422
    title = "Document refusé par le DMP : métadonnées ou contenu non conformes au volet CI-SIS"


class DmpAuthenticationFailed(NationalServiceError):
    slug = "dmp-authentication-failed"
    status = 403
    title = "Le DMP a refusé l'authentification (assertion signée par la carte CPS invalide)"


class DmpDocumentUnknown(NationalServiceError):
    slug = "dmp-document-unknown"
    status = 404
    title = "Document absent du DMP"


# Registry error codes -> typed errors. XDS codes from ITI TF-3 4.2.4.1; the access codes are the
# ones the simulator (and, in spirit, the DMP) uses for a patient's blocks.
ERROR_MAP: Final[dict[str, type[NationalServiceError]]] = {
    "XDSUnknownPatientId": DmpAbsent,
    "DMPPatientNotFound": DmpAbsent,
    "DMPClosed": DmpAbsent,
    "DMPAccessDenied": DmpAccessRefused,
    "DMPAccessDeniedByPatient": DmpAccessRefused,
    "XDSDocumentUniqueIdError": DmpDocumentUnknown,
    "XDSRegistryMetadataError": DmpDocumentRejected,
    "XDSRepositoryMetadataError": DmpDocumentRejected,
    "XDSRegistryBusy": ServiceUnavailable,
    "XDSRepositoryBusy": ServiceUnavailable,
    "XDSRegistryNotAvailable": ServiceUnavailable,
    "XDSRepositoryNotAvailable": ServiceUnavailable,
}
ALREADY_STORED: Final = "XDSDuplicateUniqueIdInRegistry"


@dataclass(frozen=True)
class DmpDocumentEntry:
    """One document of the patient's DMP as the registry lists it (metadata only)."""

    entry_uuid: str
    unique_id: str
    repository_id: str
    title: str
    type_code: str
    type_display: str
    creation_time: str  # XDS DTM, UTC: YYYYMMDDhhmmss
    author: str
    mime_type: str


@dataclass(frozen=True)
class Caller:
    """Who is calling the DMP (sent in the caller context header)."""

    author_idnat: str
    structure_idnat: str


@dataclass(frozen=True)
class ProvideReceipt:
    unique_id: str
    submission_set_id: str
    already_stored: bool


class DmpGateway(Protocol):
    """What the document services need from the DMP (a fake implements it in unit tests)."""

    def provide(self, document: CdaDocument, *, author_rpps: str) -> ProvideReceipt: ...

    def find_documents(
        self, ins: str, ins_oid: str, *, author_rpps: str
    ) -> list[DmpDocumentEntry]: ...

    def retrieve(self, repository_id: str, unique_id: str, *, author_rpps: str) -> bytes: ...


def xds_time(moment: datetime) -> str:
    """XDS DTM: UTC, ``YYYYMMDDhhmmss``."""
    return moment.astimezone(UTC).strftime("%Y%m%d%H%M%S")


def xcn(national_id: str, family: str, given: str) -> str:
    """HL7 v2 XCN author person with the idNat_PS assigning authority."""
    return f"{national_id}^{family}^{given}^^^^^^&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS"


# --- request building ----------------------------------------------------------------------------


def _document_entry(parent: Element, document: CdaDocument, entry_id: str) -> None:
    doc_type = DOCUMENT_TYPES[document.kind]
    entry = xds.sub(
        parent,
        xds.RIM,
        "ExtrinsicObject",
        id=entry_id,
        mimeType=CDA_MIME,
        objectType=xds.OBJECT_TYPE_DOCUMENT_ENTRY,
    )
    pid = xds.patient_id(document.ins.matricule, document.ins.oid.value)
    xds.slot(entry, "creationTime", xds_time(document.effective_time))
    xds.slot(entry, "hash", hashlib.sha1(document.xml).hexdigest())  # noqa: S324 - XDS mandates SHA-1
    xds.slot(entry, "size", str(len(document.xml)))
    xds.slot(entry, "languageCode", "fr-FR")
    xds.slot(entry, "serviceStartTime", xds_time(document.service_start))
    xds.slot(entry, "serviceStopTime", xds_time(document.service_stop))
    xds.slot(entry, "sourcePatientId", pid)
    xds.localized(entry, "Name", document.title)
    author = xds.classification(entry, xds.DE_AUTHOR, entry_id, "", "", "")
    _author_slots(author, document)
    # The same codes as the CDA header (the DMP checks they agree): JDV_J06/J08/J10/J02/J04/J07
    for scheme, code in (
        (xds.DE_CLASS_CODE, doc_type.class_code),
        (xds.DE_CONFIDENTIALITY, NORMAL_CONFIDENTIALITY),
        (xds.DE_FORMAT_CODE, doc_type.format_code),
        (xds.DE_FACILITY_TYPE, PHARMACY_FACILITY),
        (xds.DE_PRACTICE_SETTING, doc_type.practice_setting),
        (xds.DE_TYPE_CODE, doc_type.type_code),
    ):
        xds.classification(entry, scheme, entry_id, code.code, code.system, code.display)
    xds.external_identifier(entry, xds.DE_PATIENT_ID, entry_id, pid, "XDSDocumentEntry.patientId")
    xds.external_identifier(
        entry, xds.DE_UNIQUE_ID, entry_id, document.document_id, "XDSDocumentEntry.uniqueId"
    )


def _author_slots(classification: Element, document: CdaDocument) -> None:
    # An author classification has no code: drop the empty codingScheme slot and Name.
    for child in list(classification):
        classification.remove(child)
    author = document.author
    xds.slot(
        classification,
        "authorPerson",
        xcn(author.national_id, author.family_name, author.given_name),
    )
    xds.slot(
        classification,
        "authorInstitution",
        f"{document.organisation.name}^^^^^&1.2.250.1.71.4.2.2&ISO^IDNST^^^"
        f"1{document.organisation.finess}",
    )
    specialty = profession(author)
    xds.slot(classification, "authorRole", specialty.display)
    xds.slot(
        classification,
        "authorSpecialty",
        f"{specialty.code}^{specialty.display}^{specialty.system}",
    )


def _submission_set(parent: Element, document: CdaDocument, set_id: str, set_uid: str) -> None:
    doc_type = DOCUMENT_TYPES[document.kind]
    package = xds.sub(parent, xds.RIM, "RegistryPackage", id=set_id)
    xds.slot(package, "submissionTime", xds_time(datetime.now(UTC)))
    xds.localized(package, "Name", document.title)
    author = xds.classification(package, xds.SS_AUTHOR, set_id, "", "", "")
    _author_slots(author, document)
    xds.classification(
        package,
        xds.SS_CONTENT_TYPE,
        set_id,
        doc_type.type_code.code,
        doc_type.type_code.system,
        doc_type.type_code.display,
    )
    pid = xds.patient_id(document.ins.matricule, document.ins.oid.value)
    xds.external_identifier(package, xds.SS_UNIQUE_ID, set_id, set_uid, "XDSSubmissionSet.uniqueId")
    xds.external_identifier(
        package, xds.SS_SOURCE_ID, set_id, SOURCE_ID, "XDSSubmissionSet.sourceId"
    )
    xds.external_identifier(package, xds.SS_PATIENT_ID, set_id, pid, "XDSSubmissionSet.patientId")
    xds.sub(
        parent,
        xds.RIM,
        "Classification",
        classifiedObject=set_id,
        classificationNode=xds.CLASS_SUBMISSION_SET,
        id=f"urn:uuid:{uuid.uuid4()}",
    )


def provide_request(document: CdaDocument) -> tuple[bytes, str]:
    """The ITI-41 SOAP envelope for ``document`` and the submission set unique id."""
    root, body = xds.envelope(
        xds.ACTION_PROVIDE,
        author_idnat=document.author.national_id,
        structure_idnat=STRUCT_FINESS_PREFIX + document.organisation.finess,
    )
    request = xds.sub(body, xds.XDSB, "ProvideAndRegisterDocumentSetRequest")
    submit = xds.sub(request, xds.LCM, "SubmitObjectsRequest")
    objects = xds.sub(submit, xds.RIM, "RegistryObjectList")
    entry_id, set_id = "Document01", "SubmissionSet01"
    set_uid = f"2.25.{uuid.uuid4().int}"
    _document_entry(objects, document, entry_id)
    _submission_set(objects, document, set_id, set_uid)
    association = xds.sub(
        objects,
        xds.RIM,
        "Association",
        associationType=xds.ASSOCIATION_HAS_MEMBER,
        sourceObject=set_id,
        targetObject=entry_id,
        id="Association01",
    )
    xds.slot(association, "SubmissionSetStatus", "Original")
    content = xds.sub(request, xds.XDSB, "Document", id=entry_id)
    content.text = base64.b64encode(document.xml).decode("ascii")
    return _serialise(root), set_uid


def query_request(ins: str, ins_oid: str, caller: Caller) -> bytes:
    root, body = xds.envelope(
        xds.ACTION_QUERY, author_idnat=caller.author_idnat, structure_idnat=caller.structure_idnat
    )
    request = xds.sub(body, xds.QUERY, "AdhocQueryRequest")
    xds.sub(
        request, xds.QUERY, "ResponseOption", returnType="LeafClass", returnComposedObjects="true"
    )
    query = xds.sub(request, xds.RIM, "AdhocQuery", id=xds.FIND_DOCUMENTS)
    xds.slot(query, "$XDSDocumentEntryPatientId", f"'{xds.patient_id(ins, ins_oid)}'")
    xds.slot(query, "$XDSDocumentEntryStatus", f"('{xds.STATUS_APPROVED}')")
    return _serialise(root)


def retrieve_request(repository_id: str, unique_id: str, caller: Caller) -> bytes:
    root, body = xds.envelope(
        xds.ACTION_RETRIEVE,
        author_idnat=caller.author_idnat,
        structure_idnat=caller.structure_idnat,
    )
    request = xds.sub(body, xds.XDSB, "RetrieveDocumentSetRequest")
    item = xds.sub(request, xds.XDSB, "DocumentRequest")
    xds.sub(item, xds.XDSB, "RepositoryUniqueId", repository_id)
    xds.sub(item, xds.XDSB, "DocumentUniqueId", unique_id)
    return _serialise(root)


def _serialise(root: Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


# --- reply reading -------------------------------------------------------------------------------


def _soap_body(response: httpx.Response) -> Element:
    if response.status_code >= 400 and b"Fault" not in response.content:
        # No SOAP fault to read (a proxy's or server's page): the status alone says what failed.
        detail = f"dmp: HTTP {response.status_code}"
        raise refusal_error(response, None, detail, not_found=RequestRejected)
    try:
        root = parse_xml(response.content, max_bytes=MAX_REPLY_BYTES)
    except XmlRejectedError as exc:
        raise MalformedResponse(f"dmp: reply refused ({exc.reason})") from None
    body = root.find("soap:Body", xds.NSMAP)
    if root.tag != xds.q(xds.SOAP, "Envelope") or body is None or len(body) == 0:
        raise MalformedResponse("dmp: not a SOAP 1.2 envelope")
    fault = body.find("soap:Fault", xds.NSMAP)
    if fault is not None:
        code = fault.findtext("soap:Code/soap:Value", default="", namespaces=xds.NSMAP)
        if code.endswith("Receiver"):
            raise ServiceUnavailable("dmp: SOAP fault (Receiver)")
        subcode = fault.findtext(
            "soap:Code/soap:Subcode/soap:Value", default="", namespaces=xds.NSMAP
        )
        if subcode.endswith((":FailedCheck", ":FailedAuthentication")):  # WS-Security faults
            raise DmpAuthenticationFailed(f"dmp: SOAP fault ({subcode.rsplit(':', 1)[-1]})")
        raise RequestRejected(f"dmp: SOAP fault ({code.rsplit(':', 1)[-1] or 'unknown'})")
    return body[0]


def _raise_registry_errors(response_element: Element, tolerate: frozenset[str]) -> bool:
    """Raise the typed error of a Failure; return True when only tolerated errors were seen."""
    status = response_element.get("status", "")
    if status == xds.STATUS_SUCCESS:
        return False
    errors = response_element.findall(".//rs:RegistryError", xds.NSMAP)
    codes = [e.get("errorCode", "") for e in errors]
    if codes and all(code in tolerate for code in codes):
        return True
    for error in errors:
        error_type = ERROR_MAP.get(error.get("errorCode", ""))
        if error_type is DmpDocumentRejected:
            # the registry's reasons (rule texts, French) reach the counter; they carry no
            # identity: they name rules, not values
            reasons = [e.get("codeContext", "")[:300] for e in errors][:20]
            raise DmpDocumentRejected(f"dmp: {error.get('errorCode')}", failed_rules=reasons)
        if error_type is not None:
            raise error_type(f"dmp: {error.get('errorCode')}")
    if status.endswith(":Failure") or codes:
        raise RequestRejected(f"dmp: registry error ({', '.join(codes) or 'no code'})")
    raise MalformedResponse("dmp: unknown response status")


def _text_of(parent: Element, tag: str) -> str:
    found = parent.find(f"rim:{tag}/rim:LocalizedString", xds.NSMAP)
    return (found.get("value") or "") if found is not None else ""


def _entry(extrinsic: Element) -> DmpDocumentEntry:
    type_code = xds.find_classification(extrinsic, xds.DE_TYPE_CODE)
    author = xds.find_classification(extrinsic, xds.DE_AUTHOR)
    return DmpDocumentEntry(
        entry_uuid=extrinsic.get("id", ""),
        unique_id=xds.find_external_id(extrinsic, xds.DE_UNIQUE_ID) or "",
        repository_id=(xds.slot_values(extrinsic, "repositoryUniqueId") or [""])[0],
        title=_text_of(extrinsic, "Name"),
        type_code=type_code.get("nodeRepresentation", "") if type_code is not None else "",
        type_display=_text_of(type_code, "Name") if type_code is not None else "",
        creation_time=(xds.slot_values(extrinsic, "creationTime") or [""])[0],
        author=(xds.slot_values(author, "authorPerson") or [""])[0] if author is not None else "",
        mime_type=extrinsic.get("mimeType", ""),
    )


# --- client --------------------------------------------------------------------------------------


class DmpClient(ServiceClient):
    """XDS.b client of the DMP. Thread-safe (one ``httpx.Client`` underneath)."""

    service = "dmp"

    def __init__(
        self,
        http: NationalHttpClient,
        *,
        finess: str,
        path: str = "/xds",
        checker: DocumentChecker | None = None,
        authenticator: DmpAuthenticator | None = None,
    ) -> None:
        super().__init__(http=http)
        self._path = path
        self._authenticator = authenticator  # signed caller assertion when a card is at hand
        self._structure = STRUCT_FINESS_PREFIX + finess
        # validation before sending, as the DMP requires of sending software
        self._checker = checker or DocumentChecker()

    def _caller(self, author_rpps: str) -> Caller:
        return Caller(author_idnat="8" + author_rpps, structure_idnat=self._structure)

    @classmethod
    def over_http(
        cls,
        base_url: str,
        *,
        finess: str,
        timeout_s: float,
        connect_timeout_s: float,
        transport: httpx.BaseTransport | None = None,
        checker: DocumentChecker | None = None,
        authenticator: DmpAuthenticator | None = None,
    ) -> DmpClient:
        http = NationalHttpClient(
            cls.service,
            base_url,
            timeout_s=timeout_s,
            connect_timeout_s=connect_timeout_s,
            transport=transport,
            max_body_bytes=MAX_REPLY_BYTES,
        )
        return cls(http, finess=finess, checker=checker, authenticator=authenticator)

    def _call(self, action: str, soap_action: str, envelope: bytes, author_rpps: str) -> Element:
        content_type = f'application/soap+xml; charset=UTF-8; action="{soap_action}"'
        if self._authenticator is not None:
            envelope = with_assertion(envelope, self._authenticator)
        response = self._http.request(
            action,
            "POST",
            self._path,
            author_rpps=author_rpps,
            idempotent=True,
            content=envelope,
            headers={"Content-Type": content_type},
        )
        return _soap_body(response)

    def provide(self, document: CdaDocument, *, author_rpps: str) -> ProvideReceipt:
        """Send ``document`` (ITI-41). A document that fails the schema or its volet schematron
        is refused here (``CdaNonConformantError``), before any call."""
        self._checker.require(document.kind, document.xml)
        envelope, set_uid = provide_request(document)
        reply = self._call("dmp_provide", xds.ACTION_PROVIDE, envelope, author_rpps)
        already = _raise_registry_errors(reply, frozenset({ALREADY_STORED}))
        return ProvideReceipt(document.document_id, set_uid, already_stored=already)

    def find_documents(self, ins: str, ins_oid: str, *, author_rpps: str) -> list[DmpDocumentEntry]:
        reply = self._call(
            "dmp_find_documents",
            xds.ACTION_QUERY,
            query_request(ins, ins_oid, self._caller(author_rpps)),
            author_rpps,
        )
        _raise_registry_errors(reply, frozenset())
        return [_entry(e) for e in reply.iterfind(".//rim:ExtrinsicObject", xds.NSMAP)]

    def retrieve(self, repository_id: str, unique_id: str, *, author_rpps: str) -> bytes:
        reply = self._call(
            "dmp_retrieve",
            xds.ACTION_RETRIEVE,
            retrieve_request(repository_id, unique_id, self._caller(author_rpps)),
            author_rpps,
        )
        registry_response = reply.find("rs:RegistryResponse", xds.NSMAP)
        if registry_response is not None:
            _raise_registry_errors(registry_response, frozenset())
        for item in reply.iterfind("xdsb:DocumentResponse", xds.NSMAP):
            if item.findtext("xdsb:DocumentUniqueId", namespaces=xds.NSMAP) == unique_id:
                return _decode(item.findtext("xdsb:Document", default="", namespaces=xds.NSMAP))
        raise DmpDocumentUnknown("dmp: document not in reply")


def _decode(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:
        raise MalformedResponse("dmp: document is not base64") from None
