"""DMP simulator: an IHE XDS.b document registry + repository over SOAP 1.2 (one endpoint).

Mounted under ``/dmp``; the XDS endpoint is ``POST /dmp/xds`` and dispatches on the body:

- ``ProvideAndRegisterDocumentSetRequest`` (ITI-41): checks the metadata (patient id in the entry,
  the submission set and the CDA agree; hash and size match the inline document) and, when a CI-SIS
  kit is configured (``HWSIM_CISIS_KIT_DIR`` or ``POST /_sim/dmp/conformance``), the document
  against the kit's schema and the schematron of its volet (from the ``formatCode``), as the real
  DMP does: a non-conformant document gets ``XDSRegistryMetadataError``, one ``RegistryError``
  per failed rule (its text in ``codeContext``). Then it stores the entry and the document. Same ``uniqueId`` again: success if the bytes are identical (an outbox retry),
  ``XDSNonIdenticalHash`` otherwise.
- ``AdhocQueryRequest`` FindDocuments (ITI-18): the patient's approved entries (LeafClass).
- ``RetrieveDocumentSetRequest`` (ITI-43): the document bytes, inline base64.

Patients: every patient has an open DMP unless told otherwise (``absent`` →
``XDSUnknownPatientId``); a patient may block professionals (idNat_PS) or structures (idNat_Struct)
→ ``DMPAccessDeniedByPatient``.
Who is calling: with a ``wsse:Security`` header, the professional and structure of its
``vihf:Assertion``, which must be XML-DSig signed by that professional's CPS card for this
``MessageID`` (:mod:`hwsim.national.assertion`; else a SOAP fault ``wsse:FailedCheck``); without it,
an indirect call by the structure, named by the small ``ctx:DmpContext`` header.

Mounted in the national app (``mount``): the app's recorder and generic faults (latency, timeout,
error, malformed, duplicate, outage) apply to ``/dmp``. Controls under ``/_sim/dmp``: ``patients``
(absent / blocks), ``conformance`` (the CI-SIS kit to check documents with, or none), ``faults`` (SOAP-level faults the generic ones cannot express: ``soap_receiver``
SOAP Fault, ``http503``, ``malformed``, ``delay`` before processing), ``documents`` (what was
stored, with its metadata), ``calls`` (XDS action and outcome per call; never content), ``reset``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import threading
import tomllib
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from lxml import etree
from pydantic import BaseModel
from stdnum.fr import nir as nir_numbers

from hwsim.national.assertion import AssertionRefused, verify_assertion
from hwsim.national.cda_check import CdaChecker, KitError, from_environment
from hwsim.national.context import ServiceMount, SimDep, SimState

SOAP: Final = "http://www.w3.org/2003/05/soap-envelope"
WSA: Final = "http://www.w3.org/2005/08/addressing"
XDSB: Final = "urn:ihe:iti:xds-b:2007"
LCM: Final = "urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0"
RIM: Final = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"
RS: Final = "urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0"
QUERY: Final = "urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0"
CTX: Final = "urn:lgo:hwsim:dmp-context"
VIHF: Final = "urn:lgo:dmp:vihf"  # lgo's stand-in for the VIHF assertion, XML-DSig signed
WSSE: Final = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
HL7: Final = "urn:hl7-org:v3"
NS: Final = {
    "soap": SOAP,
    "wsa": WSA,
    "xdsb": XDSB,
    "lcm": LCM,
    "rim": RIM,
    "rs": RS,
    "query": QUERY,
    "ctx": CTX,
    "hl7": HL7,
}

SUCCESS: Final = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"
FAILURE: Final = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Failure"
APPROVED: Final = "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"
FIND_DOCUMENTS: Final = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"
DE_PATIENT_ID: Final = "urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427"
DE_UNIQUE_ID: Final = "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab"
SS_PATIENT_ID: Final = "urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446"
DE_AUTHOR: Final = "urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d"
SCHEMES: Final = {
    "class_code": "urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a",
    "confidentiality_code": "urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f",
    "format_code": "urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d",
    "facility_type_code": "urn:uuid:f33fb8ac-18af-42cc-ae0e-ed0b0bdb91e1",
    "practice_setting_code": "urn:uuid:cccf5598-8b07-4b77-a05e-ae952c785ead",
    "type_code": "urn:uuid:f0306f51-975f-434e-a61c-c59651d33983",
}
REPOSITORY_ID: Final = "1.2.250.1.213.1.1.9"
FIXTURE_NAME: Final = "dmp.toml"
MAX_REQUEST_BYTES: Final = 8 * 1024 * 1024
SOAP_CONTENT_TYPE: Final = "application/soap+xml; charset=UTF-8"
Element = etree._Element


class XdsError(Exception):
    def __init__(self, code: str, context: str = "", details: list[str] | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.context = context
        self.details = details or []  # one RegistryError each (e.g. the failed rules)


@dataclass
class StoredDocument:
    unique_id: str
    patient_key: str
    entry_xml: bytes  # the ExtrinsicObject as received (+ repositoryUniqueId, status)
    content: bytes
    metadata: dict[str, Any]


@dataclass
class PatientState:
    absent: bool = False
    blocked: set[str] = field(default_factory=set)  # idNat_PS or idNat_Struct values


@dataclass
class Fault:
    mode: str
    remaining: int
    delay_s: float = 0.0


class DmpRegistry:
    """Documents, patients' DMP states, pending faults and the call recorder (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.checker: CdaChecker | None = None  # the CI-SIS kit's check, when configured
            self.documents: dict[str, StoredDocument] = {}
            self.patients: dict[str, PatientState] = {}
            self.faults: list[Fault] = []
            self.calls: list[dict[str, str]] = []

    def patient(self, key: str) -> PatientState:
        with self._lock:
            return self.patients.setdefault(key, PatientState())

    def set_patient(self, key: str, state: PatientState) -> None:
        with self._lock:
            self.patients[key] = state

    def add_fault(self, fault: Fault) -> None:
        with self._lock:
            self.faults.append(fault)

    def take_fault(self) -> Fault | None:
        with self._lock:
            if not self.faults:
                return None
            fault = self.faults[0]
            fault.remaining -= 1
            if fault.remaining <= 0:
                self.faults.pop(0)
            return fault

    def record(self, action: str, outcome: str) -> None:
        with self._lock:
            self.calls.append({"action": action, "outcome": outcome})

    def store(self, document: StoredDocument) -> bool:
        """Store; True if new, False for an identical resubmission; XdsError on a different one."""
        with self._lock:
            existing = self.documents.get(document.unique_id)
            if existing is None:
                self.documents[document.unique_id] = document
                return True
            if existing.content != document.content:
                raise XdsError("XDSNonIdenticalHash", document.unique_id)
            return False

    def for_patient(self, key: str) -> list[StoredDocument]:
        with self._lock:
            return [d for d in self.documents.values() if d.patient_key == key]

    def all_documents(self) -> list[StoredDocument]:
        with self._lock:
            return list(self.documents.values())

    def all_calls(self) -> list[dict[str, str]]:
        with self._lock:
            return list(self.calls)

    def get(self, unique_id: str) -> StoredDocument | None:
        with self._lock:
            return self.documents.get(unique_id)


SERVICE: Final = "dmp"
router = APIRouter(tags=["dmp"])
control = APIRouter(tags=["dmp simulator control"])


def _checker(sim: SimState, kit_dir: str | None) -> CdaChecker | None:
    """One checker per kit folder for the simulator's life (compiling costs ~0.2 s a volet)."""
    if kit_dir is None:
        return None
    checkers: dict[str, CdaChecker] = sim.settings.setdefault("dmp_cda_checkers", {})
    if kit_dir not in checkers:
        checkers[kit_dir] = CdaChecker(Path(kit_dir))
    return checkers[kit_dir]


def setup(sim: SimState) -> None:
    registry = DmpRegistry()
    if "dmp_cda_default" not in sim.settings:
        sim.settings["dmp_cda_default"] = from_environment()
    registry.checker = sim.settings["dmp_cda_default"]
    fixture = sim.fixtures_dir / FIXTURE_NAME
    if fixture.exists():
        for item in tomllib.loads(fixture.read_text(encoding="utf-8")).get("document", []):
            registry.store(_seeded(item))
    sim.stores[SERVICE] = registry


# --- fixture documents (produced "elsewhere") ------------------------------------------------------


def _nir(base: str) -> str:
    return base + str(nir_numbers.calc_check_digits(base))


def _seeded_cda(item: dict[str, Any], nir: str) -> bytes:
    root = etree.Element(f"{{{HL7}}}ClinicalDocument", nsmap={None: HL7})  # type: ignore[dict-item]
    _sub(root, HL7, "typeId", root="2.16.840.1.113883.1.3", extension="POCD_HD000040")
    _sub(root, HL7, "id", root=f"2.25.{uuid.uuid4().int}")
    _sub(
        root,
        HL7,
        "code",
        code=item["type_code"],
        codeSystem="2.16.840.1.113883.6.1",
        displayName=item["type_display"],
    )
    _sub(root, HL7, "title", item["title"])
    _sub(root, HL7, "effectiveTime", value=item["effective"])
    _sub(root, HL7, "confidentialityCode", code="N", codeSystem="2.16.840.1.113883.5.25")
    role = _sub(_sub(root, HL7, "recordTarget"), HL7, "patientRole")
    _sub(role, HL7, "id", root=item["oid"], extension=nir)
    author = _sub(_sub(root, HL7, "author"), HL7, "assignedAuthor")
    _sub(author, HL7, "id", root="1.2.250.1.71.4.2.1", extension=item["author_idnat"])
    name = _sub(_sub(author, HL7, "assignedPerson"), HL7, "name")
    _sub(name, HL7, "family", item["author_family"])
    _sub(name, HL7, "given", item["author_given"])
    _sub(_sub(author, HL7, "representedOrganization"), HL7, "name", item["organisation"])
    body = _sub(_sub(root, HL7, "component"), HL7, "structuredBody")
    section = _sub(_sub(body, HL7, "component"), HL7, "section")
    _sub(section, HL7, "title", item["title"])
    text = _sub(section, HL7, "text")
    for paragraph in item["paragraphs"]:
        _sub(text, HL7, "paragraph", paragraph)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def _seeded(item: dict[str, Any]) -> StoredDocument:
    nir = _nir(item["nir_base"])
    content = _seeded_cda(item, nir)
    unique_id = f"2.25.{uuid.uuid4().int}"
    cx = f"{nir}^^^&{item['oid']}&ISO^NH"
    entry = etree.Element(
        f"{{{RIM}}}ExtrinsicObject",
        nsmap={"rim": RIM},
        mimeType="text/xml",
        objectType="urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1",
    )
    for slot_name, value in (
        ("creationTime", item["effective"][:14]),
        ("hash", hashlib.sha1(content).hexdigest()),  # noqa: S324 - XDS uses SHA-1
        ("size", str(len(content))),
    ):
        slot = _sub(entry, RIM, "Slot", name=slot_name)
        _sub(_sub(slot, RIM, "ValueList"), RIM, "Value", value)
    _sub(_sub(entry, RIM, "Name"), RIM, "LocalizedString", value=item["title"])
    author = _sub(entry, RIM, "Classification", classificationScheme=DE_AUTHOR)
    slot = _sub(author, RIM, "Slot", name="authorPerson")
    _sub(
        _sub(slot, RIM, "ValueList"),
        RIM,
        "Value",
        f"{item['author_idnat']}^{item['author_family']}^{item['author_given']}",
    )
    type_code = _sub(
        entry,
        RIM,
        "Classification",
        classificationScheme=SCHEMES["type_code"],
        nodeRepresentation=item["type_code"],
    )
    _sub(_sub(type_code, RIM, "Name"), RIM, "LocalizedString", value=item["type_display"])
    for scheme, value in ((DE_PATIENT_ID, cx), (DE_UNIQUE_ID, unique_id)):
        _sub(entry, RIM, "ExternalIdentifier", identificationScheme=scheme, value=value)
    metadata: dict[str, Any] = {
        "patient_id": cx,
        "unique_id": unique_id,
        "mime_type": "text/xml",
        "title": item["title"],
        "seeded": True,
    }
    return StoredDocument(unique_id, patient_key(cx), _stored_entry(entry), content, metadata)


def _registry(sim: SimState) -> DmpRegistry:
    store: DmpRegistry = sim.stores[SERVICE]
    return store


# --- XML helpers ---------------------------------------------------------------------------------


def _parse(data: bytes) -> Element:
    # A NUL byte means UTF-16/32, which would hide a DOCTYPE from the byte scan: UTF-8 only.
    forbidden = (b"<!DOCTYPE", b"<!ENTITY", b"\x00")
    if len(data) > MAX_REQUEST_BYTES or any(marker in data for marker in forbidden):
        raise XdsError("XDSRegistryError", "request refused")
    parser = etree.XMLParser(resolve_entities=False, load_dtd=False, no_network=True)
    try:
        return etree.fromstring(data, parser)
    except etree.XMLSyntaxError:
        raise XdsError("XDSRegistryError", "malformed request") from None


def _sub(parent: Element, ns: str, tag: str, text: str | None = None, **attrs: str) -> Element:
    element = etree.SubElement(parent, f"{{{ns}}}{tag}", attrib=attrs)
    if text is not None:
        element.text = text
    return element


def _envelope(action: str, relates_to: str) -> tuple[Element, Element]:
    root = etree.Element(f"{{{SOAP}}}Envelope", nsmap={"soap": SOAP, "wsa": WSA})
    header = _sub(root, SOAP, "Header")
    _sub(header, WSA, "Action", action)
    _sub(header, WSA, "RelatesTo", relates_to)
    return root, _sub(root, SOAP, "Body")


def _soap(root: Element, status: int = 200) -> Response:
    body = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    return Response(body, status_code=status, media_type=SOAP_CONTENT_TYPE)


def _registry_response(parent: Element, error: XdsError | None) -> Element:
    response = _sub(parent, RS, "RegistryResponse", status=FAILURE if error else SUCCESS)
    if error is not None:
        _error_list(response, error)
    return response


def _error_list(response: Element, error: XdsError) -> None:
    errors = _sub(response, RS, "RegistryErrorList")
    for context in error.details or [error.context]:
        _sub(
            errors,
            RS,
            "RegistryError",
            errorCode=error.code,
            codeContext=context,
            severity="urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error",
        )


def _slot(parent: Element, name: str) -> list[str]:
    found = parent.find(f"rim:Slot[@name='{name}']", NS)
    if found is None:
        return []
    return [v.text or "" for v in found.iterfind("rim:ValueList/rim:Value", NS)]


def _external_id(parent: Element, scheme: str) -> str:
    found = parent.find(f"rim:ExternalIdentifier[@identificationScheme='{scheme}']", NS)
    return found.get("value", "") if found is not None else ""


def patient_key(cx: str) -> str:
    """``INS^^^&OID&ISO^NH`` → ``INS|OID`` (raises XdsError on another shape)."""
    ins, _, rest = cx.strip("'").partition("^^^&")
    oid = rest.split("&", 1)[0]
    if not ins or not oid:
        raise XdsError("XDSUnknownPatientId", "bad patient id")
    return f"{ins}|{oid}"


def _caller(envelope: Element) -> set[str]:
    context = envelope.find("soap:Header/ctx:DmpContext", NS)
    if context is None:
        return set()
    return {context.findtext("ctx:Author", "", NS), context.findtext("ctx:Structure", "", NS)}


def _check_access(registry: DmpRegistry, key: str, callers: set[str]) -> None:
    state = registry.patient(key)
    if state.absent:
        raise XdsError("XDSUnknownPatientId", "no DMP")
    if state.blocked & callers:
        raise XdsError("DMPAccessDeniedByPatient", "blocked by the patient")


# --- ITI-41 --------------------------------------------------------------------------------------


def _code_of(entry: Element, scheme: str) -> dict[str, str]:
    found = entry.find(f"rim:Classification[@classificationScheme='{scheme}']", NS)
    if found is None:
        raise XdsError("XDSRegistryMetadataError", f"missing classification {scheme}")
    name = found.find("rim:Name/rim:LocalizedString", NS)
    return {
        "code": found.get("nodeRepresentation", ""),
        "system": (_slot(found, "codingScheme") or [""])[0],
        "display": name.get("value", "") if name is not None else "",
    }


def _metadata(entry: Element, content: bytes) -> dict[str, Any]:
    author = entry.find(f"rim:Classification[@classificationScheme='{DE_AUTHOR}']", NS)
    title = entry.find("rim:Name/rim:LocalizedString", NS)
    metadata: dict[str, Any] = {
        "patient_id": _external_id(entry, DE_PATIENT_ID),
        "unique_id": _external_id(entry, DE_UNIQUE_ID),
        "mime_type": entry.get("mimeType", ""),
        "title": title.get("value", "") if title is not None else "",
        "creation_time": (_slot(entry, "creationTime") or [""])[0],
        "hash": (_slot(entry, "hash") or [""])[0],
        "size": (_slot(entry, "size") or [""])[0],
        "language_code": (_slot(entry, "languageCode") or [""])[0],
        "author_person": (_slot(author, "authorPerson") or [""])[0] if author is not None else "",
        "author_institution": (_slot(author, "authorInstitution") or [""])[0]
        if author is not None
        else "",
    }
    for name, scheme in SCHEMES.items():
        metadata[name] = _code_of(entry, scheme)
    if metadata["hash"] != hashlib.sha1(content).hexdigest():  # noqa: S324 - XDS uses SHA-1
        raise XdsError("XDSRepositoryMetadataError", "hash mismatch")
    if metadata["size"] != str(len(content)):
        raise XdsError("XDSRepositoryMetadataError", "size mismatch")
    return metadata


def _cda_patient(content: bytes) -> str:
    cda = _parse(content)
    pid = cda.find("hl7:recordTarget/hl7:patientRole/hl7:id", NS)
    if pid is None:
        raise XdsError("XDSRegistryMetadataError", "CDA without patient id")
    return f"{pid.get('extension', '')}|{pid.get('root', '')}"


def _provide(registry: DmpRegistry, request: Element, callers: set[str]) -> None:
    entry = request.find("lcm:SubmitObjectsRequest/rim:RegistryObjectList/rim:ExtrinsicObject", NS)
    package = request.find(
        "lcm:SubmitObjectsRequest/rim:RegistryObjectList/rim:RegistryPackage", NS
    )
    if entry is None or package is None:
        raise XdsError("XDSRegistryMetadataError", "entry or submission set missing")
    document = request.find(f"xdsb:Document[@id='{entry.get('id')}']", NS)
    if document is None:
        raise XdsError("XDSMissingDocument", entry.get("id", ""))
    try:
        content = base64.b64decode(document.text or "", validate=True)
    except (binascii.Error, ValueError):
        raise XdsError("XDSRepositoryError", "document not base64") from None
    key = patient_key(_external_id(entry, DE_PATIENT_ID))
    if patient_key(_external_id(package, SS_PATIENT_ID)) != key or _cda_patient(content) != key:
        raise XdsError("XDSPatientIdDoesNotMatch", "entry, submission set and CDA disagree")
    _check_access(registry, key, callers)
    metadata = _metadata(entry, content)
    _check_content(registry, content, metadata["format_code"]["code"])
    metadata["submission_set_id"] = _external_id(
        package, "urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8"
    )
    stored_entry = _stored_entry(entry)
    registry.store(StoredDocument(metadata["unique_id"], key, stored_entry, content, metadata))


def _check_content(registry: DmpRegistry, content: bytes, format_code: str) -> None:
    if registry.checker is None:
        return
    problems = registry.checker.problems(_parse(content), format_code)
    if problems:
        raise XdsError(
            "XDSRegistryMetadataError",
            "document non conforme au volet CI-SIS",
            details=problems[:20],
        )


def _stored_entry(entry: Element) -> bytes:
    copy = etree.fromstring(etree.tostring(entry))
    copy.set("id", f"urn:uuid:{uuid.uuid4()}")
    copy.set("status", APPROVED)
    slot = etree.Element(f"{{{RIM}}}Slot", name="repositoryUniqueId")
    _sub(_sub(slot, RIM, "ValueList"), RIM, "Value", REPOSITORY_ID)
    copy.insert(0, slot)
    return etree.tostring(copy)


# --- ITI-18 / ITI-43 -----------------------------------------------------------------------------


def _query(registry: DmpRegistry, request: Element, callers: set[str], body: Element) -> None:
    query = request.find("rim:AdhocQuery", NS)
    if query is None or query.get("id") != FIND_DOCUMENTS:
        raise XdsError("XDSUnknownStoredQuery", query.get("id", "") if query is not None else "")
    values = _slot(query, "$XDSDocumentEntryPatientId")
    if not values:
        raise XdsError("XDSStoredQueryParamNumber", "$XDSDocumentEntryPatientId")
    key = patient_key(values[0])
    _check_access(registry, key, callers)
    response = _sub(body, QUERY, "AdhocQueryResponse", status=SUCCESS)
    objects = _sub(response, RIM, "RegistryObjectList")
    for stored in registry.for_patient(key):
        objects.append(etree.fromstring(stored.entry_xml))


def _retrieve(registry: DmpRegistry, request: Element, callers: set[str], body: Element) -> None:
    response = _sub(body, XDSB, "RetrieveDocumentSetResponse")
    wanted = request.findall("xdsb:DocumentRequest", NS)
    found: list[StoredDocument] = []
    for item in wanted:
        unique_id = item.findtext("xdsb:DocumentUniqueId", "", NS)
        stored = registry.get(unique_id)
        if stored is None or item.findtext("xdsb:RepositoryUniqueId", "", NS) != REPOSITORY_ID:
            raise XdsError("XDSDocumentUniqueIdError", unique_id)
        _check_access(registry, stored.patient_key, callers)
        found.append(stored)
    _registry_response(response, None)
    for stored in found:
        item = _sub(response, XDSB, "DocumentResponse")
        _sub(item, XDSB, "RepositoryUniqueId", REPOSITORY_ID)
        _sub(item, XDSB, "DocumentUniqueId", stored.unique_id)
        _sub(item, XDSB, "mimeType", stored.metadata["mime_type"])
        _sub(item, XDSB, "Document", base64.b64encode(stored.content).decode("ascii"))


# --- endpoint ------------------------------------------------------------------------------------

ACTIONS: Final = {
    f"{{{XDSB}}}ProvideAndRegisterDocumentSetRequest": (
        "provide",
        "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-bResponse",
    ),
    f"{{{QUERY}}}AdhocQueryRequest": ("query", "urn:ihe:iti:2007:RegistryStoredQueryResponse"),
    f"{{{XDSB}}}RetrieveDocumentSetRequest": (
        "retrieve",
        "urn:ihe:iti:2007:RetrieveDocumentSetResponse",
    ),
}


def _error_body(name: str, body: Element, error: XdsError) -> None:
    if name == "query":
        _error_list(_sub(body, QUERY, "AdhocQueryResponse", status=FAILURE), error)
    elif name == "retrieve":
        _registry_response(_sub(body, XDSB, "RetrieveDocumentSetResponse"), error)
    else:
        _registry_response(body, error)


def _fault(reason: str) -> Response:
    root = etree.Element(f"{{{SOAP}}}Envelope", nsmap={"soap": SOAP})
    fault = _sub(_sub(root, SOAP, "Body"), SOAP, "Fault")
    _sub(_sub(fault, SOAP, "Code"), SOAP, "Value", "soap:Receiver")
    _sub(
        _sub(fault, SOAP, "Reason"),
        SOAP,
        "Text",
        reason,
        **{"{http://www.w3.org/XML/1998/namespace}lang": "en"},
    )
    return _soap(root, 500)


def _authenticated(envelope: Element, message_id: str, callers: set[str]) -> set[str]:
    """With a ``wsse:Security`` header, the caller is the one its signed assertion names (checked
    as the real DMP checks the VIHF); without, an indirect call by the structure (``DmpContext``)."""
    security = envelope.find(f"soap:Header/{{{WSSE}}}Security", NS)
    if security is None:
        return callers
    assertion = security.find(f"{{{VIHF}}}Assertion")
    if assertion is None:
        raise AssertionRefused("assertion_missing")
    verified = verify_assertion(assertion, VIHF, message_id)
    return {verified.idnat, verified.signed.findtext(f"{{{VIHF}}}Structure", "")}


def _authentication_fault() -> Response:
    """WS-Security ``FailedCheck``: the assertion's signature is missing or invalid."""
    root = etree.Element(f"{{{SOAP}}}Envelope", nsmap={"soap": SOAP, "wsse": WSSE})
    fault = _sub(_sub(root, SOAP, "Body"), SOAP, "Fault")
    code = _sub(fault, SOAP, "Code")
    _sub(code, SOAP, "Value", "soap:Sender")
    _sub(_sub(code, SOAP, "Subcode"), SOAP, "Value", "wsse:FailedCheck")
    _sub(
        _sub(fault, SOAP, "Reason"),
        SOAP,
        "Text",
        "The signature or decryption was invalid",
        **{"{http://www.w3.org/XML/1998/namespace}lang": "en"},
    )
    return _soap(root, 400)  # a Sender fault (SOAP 1.2 HTTP binding)


async def _injected(fault: Fault) -> Response | None:
    if fault.mode == "delay":
        await asyncio.sleep(fault.delay_s)
        return None
    if fault.mode == "http503":
        return Response("busy", status_code=503, media_type="text/plain")
    if fault.mode == "soap_receiver":
        return _fault("registry unavailable")
    return Response(b"<soap:Envelope><unclosed>", media_type=SOAP_CONTENT_TYPE)  # malformed


@router.post("/xds")
async def xds_endpoint(request: Request, sim: SimDep) -> Response:
    registry = _registry(sim)
    fault = registry.take_fault()
    if fault is not None:
        registry.record("any", f"fault:{fault.mode}")
        injected = await _injected(fault)
        if injected is not None:
            return injected
    data = await request.body()
    try:
        envelope = _parse(data)
    except XdsError:
        registry.record("unknown", "malformed")
        return _fault("malformed request")
    message_id = envelope.findtext("soap:Header/wsa:MessageID", "", NS)
    payload = envelope.find("soap:Body/*", NS)
    if payload is None or payload.tag not in ACTIONS:
        registry.record("unknown", "unsupported")
        return _fault("unsupported request")
    name, action = ACTIONS[payload.tag]
    root, body = _envelope(action, message_id)
    callers = _caller(envelope)
    try:
        callers = _authenticated(envelope, message_id, callers)
    except AssertionRefused as refused:
        registry.record(name, f"authentication:{refused}")
        return _authentication_fault()
    try:
        if name == "provide":
            _provide(registry, payload, callers)
            _registry_response(body, None)
        elif name == "query":
            _query(registry, payload, callers, body)
        else:
            _retrieve(registry, payload, callers, body)
    except XdsError as error:
        root, body = _envelope(action, message_id)
        _error_body(name, body, error)
        registry.record(name, error.code)
        return _soap(root)
    registry.record(name, "Success")
    return _soap(root)


# --- simulator controls --------------------------------------------------------------------------


class PatientControl(BaseModel):
    ins: str
    oid: str
    absent: bool = False
    blocked: list[str] = []


class ConformanceControl(BaseModel):
    kit_dir: str | None = None  # a CI-SIS kit folder; None: no content check


class FaultControl(BaseModel):
    mode: str  # http503 | soap_receiver | malformed | delay
    count: int = 1
    delay_s: float = 0.0


@control.post("/patients")
def sim_patient(order: PatientControl, sim: SimDep) -> dict[str, bool]:
    state = PatientState(absent=order.absent, blocked=set(order.blocked))
    _registry(sim).set_patient(f"{order.ins}|{order.oid}", state)
    return {"ok": True}


@control.post("/faults")
def sim_fault(order: FaultControl, sim: SimDep) -> dict[str, bool]:
    _registry(sim).add_fault(Fault(order.mode, order.count, order.delay_s))
    return {"ok": True}


@control.post("/conformance")
def sim_conformance(order: ConformanceControl, sim: SimDep) -> dict[str, bool]:
    """Check provided documents with this CI-SIS kit (until the next reset) or not at all."""
    try:
        checker = _checker(sim, order.kit_dir)
    except KitError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from None
    _registry(sim).checker = checker
    return {"ok": True, "checking": checker is not None}


@control.get("/documents")
def sim_documents(sim: SimDep) -> list[dict[str, Any]]:
    return [dict(d.metadata) for d in _registry(sim).all_documents()]


@control.get("/calls")
def sim_calls(sim: SimDep) -> list[dict[str, str]]:
    return _registry(sim).all_calls()


@control.post("/reset")
def sim_reset(sim: SimDep) -> dict[str, bool]:
    registry = _registry(sim)
    registry.reset()
    registry.checker = sim.settings.get("dmp_cda_default")
    return {"ok": True}


mount = ServiceMount(name=SERVICE, prefix="/dmp", router=router, setup=setup, control=control)
