"""Build CDA R2 documents that follow the ANS CI-SIS volets, and read them back.

One shared header (``_header``) and one body builder per document type (``sections.py``):
eDISP-MED 2024.01 (IHE Pharm DIS) for a dispensation, VAC-NOTE 2023.01 for a vaccination,
BIO-TROD 2024.01 for a rapid test. Template ids, codes and value sets are those of the volets
(``types.py``); the ANS example documents of each volet are the model.

The header carries the patient's INS (only for a qualified identity: checked here too, as a last
line of defence), the author pharmacist (idNat_PS and profession from the CPS session), the
pharmacy as author structure and custodian, the service event and its performer, the encounter
(ambulatory, pharmacy facility type) and the confidentiality.

Every document is validated against lgo's CDA schema before it is returned (``CdaInvalidError``
otherwise); the volet schematron runs before sending (``conformance.DocumentChecker``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

from lxml import etree

from lgo.core.safe_xml import parse_xml
from lgo.documents import doctypes as t
from lgo.documents.elements import (
    NS,
    XSI,
    Element,
    assigned_entity,
    author_block,
    code,
    hl7_ts,
    organisation_id,
    q,
    sub,
)
from lgo.documents.errors import DocumentInputError, InsNotQualifiedError
from lgo.documents.models import (
    Author,
    CdaDocument,
    DispensingSummary,
    DocumentBody,
    DocumentHeader,
    Organisation,
    TrodResult,
    VaccinationNote,
)
from lgo.documents.sections import BUILDERS, Service
from lgo.documents.validate import validate_cda
from lgo.domain.identity import Ins, may_send_ins

__all__ = ["NS", "build_document", "hl7_ts", "parse_ts", "read_document"]

_NSMAP: Final = {None: NS, "xsi": XSI}
TYPE_ID_ROOT: Final = "2.16.840.1.113883.1.3"
TYPE_ID_EXTENSION: Final = "POCD_HD000040"
MAX_READ_BYTES: Final = 4 * 1024 * 1024


def _birth_ts(raw: str) -> str:
    """Birth date as TS precision: a lunar date (``00`` month/day) keeps only what is known."""
    year, month, day = raw[:4], raw[4:6], raw[6:]
    if not 1 <= int(month) <= 12:
        return year
    if not 1 <= int(day) <= 31:
        return year + month
    return raw


# --- header -------------------------------------------------------------------------------------


def _header(
    root: Element, header: DocumentHeader, doc_type: t.DocumentType, service: Service
) -> None:
    sub(root, "realmCode", code="FR")
    sub(root, "typeId", root=TYPE_ID_ROOT, extension=TYPE_ID_EXTENSION)
    for template_root, extension in doc_type.template_ids:
        if extension:
            sub(root, "templateId", root=template_root, extension=extension)
        else:
            sub(root, "templateId", root=template_root)
    sub(root, "id", root=header.document_id)
    code(root, "code", doc_type.type_code)
    sub(root, "title", service.title)
    sub(root, "effectiveTime", value=hl7_ts(header.effective_time))
    code(root, "confidentialityCode", t.NORMAL_CONFIDENTIALITY)
    sub(root, "languageCode", code="fr-FR")
    sub(root, "setId", root=header.set_id or header.document_id)
    sub(root, "versionNumber", value=str(header.version))
    _record_target(root, header)
    author_block(root, header.effective_time, header.author, header.organisation)
    _custodian(root, header)
    _legal_authenticator(root, header, doc_type)
    _documentation_of(root, header, doc_type, service)
    _component_of(root, header, service)


def _record_target(root: Element, header: DocumentHeader) -> None:
    patient = header.patient
    if not may_send_ins(patient.status, patient.on_work_list):
        raise InsNotQualifiedError()
    role = sub(sub(root, "recordTarget"), "patientRole")
    sub(role, "id", root=patient.ins.oid.value, extension=patient.ins.matricule)
    person = sub(role, "patient", classCode="PSN")
    name = sub(person, "name")
    traits = patient.traits
    sub(name, "family", traits.birth_name, qualifier="BR")
    # INS traits: the list of birth given names, then the first one (qualifier BR)
    sub(name, "given", " ".join(traits.given_names))
    if traits.given_names:
        sub(name, "given", traits.given_names[0], qualifier="BR")
    gender = traits.sex.value
    sub(
        person,
        "administrativeGenderCode",
        code=gender,
        codeSystem=t.ADMIN_GENDER,
        displayName=t.GENDERS[gender],
    )
    sub(person, "birthTime", value=_birth_ts(traits.birth_date.raw))
    if traits.birthplace:
        sub(sub(sub(sub(person, "birthplace"), "place"), "addr"), "county", traits.birthplace)


def _custodian(root: Element, header: DocumentHeader) -> None:
    assigned = sub(sub(root, "custodian"), "assignedCustodian")
    organisation = sub(assigned, "representedCustodianOrganization")
    organisation_id(organisation, header.organisation)
    sub(organisation, "name", header.organisation.name)


def _legal_authenticator(root: Element, header: DocumentHeader, doc_type: t.DocumentType) -> None:
    legal = sub(root, "legalAuthenticator")
    sub(legal, "time", value=hl7_ts(header.effective_time))
    sub(legal, "signatureCode", code="S")
    assigned_entity(legal, header.author, header.organisation, doc_type.practice_setting)


def _documentation_of(
    root: Element, header: DocumentHeader, doc_type: t.DocumentType, service: Service
) -> None:
    event = sub(sub(root, "documentationOf"), "serviceEvent", classCode="ACT")
    code(event, "code", service.code)
    period = sub(event, "effectiveTime")
    sub(period, "low", value=hl7_ts(service.start))
    sub(period, "high", value=hl7_ts(service.stop))
    performer = sub(event, "performer", typeCode="PRF")
    assigned_entity(performer, service.performer, header.organisation, doc_type.practice_setting)


def _component_of(root: Element, header: DocumentHeader, service: Service) -> None:
    encounter = sub(sub(root, "componentOf"), "encompassingEncounter")
    code(encounter, "code", t.AMBULATORY_ENCOUNTER)
    period = sub(encounter, "effectiveTime")
    sub(period, "low", value=hl7_ts(service.start))
    facility = sub(sub(encounter, "location"), "healthCareFacility")
    code(facility, "code", t.PHARMACY_FACILITY)
    place = sub(facility, "location")
    sub(place, "name", header.organisation.name)


# --- entry points -------------------------------------------------------------------------------


def build_document(header: DocumentHeader, body: DocumentBody) -> CdaDocument:
    """Build, validate (lgo's CDA schema) and return the CDA document of ``body``."""
    doc_type = t.DOCUMENT_TYPES[body.kind]
    service_of, section_builder = BUILDERS[body.kind]
    service = service_of(header, body)
    root = etree.Element(q("ClinicalDocument"), nsmap=_NSMAP)  # type: ignore[arg-type]
    _header(root, header, doc_type, service)
    section_builder(sub(sub(sub(root, "component"), "structuredBody"), "component"), header, body)
    xml = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    validate_cda(xml)
    return CdaDocument(
        kind=body.kind,
        document_id=header.document_id,
        set_id=header.set_id or header.document_id,
        title=service.title,
        effective_time=header.effective_time.astimezone(UTC),
        ins=header.patient.ins,
        author=header.author,
        organisation=header.organisation,
        xml=xml,
        service_start=service.start,
        service_stop=service.stop,
    )


def build_vaccination_note(header: DocumentHeader, note: VaccinationNote) -> CdaDocument:
    """A VAC-NOTE 2023.01 document (one vaccination), validated."""
    return build_document(header, note)


def build_trod_result(header: DocumentHeader, result: TrodResult) -> CdaDocument:
    """A BIO-TROD 2024.01 document (one rapid test and its readings), validated."""
    return build_document(header, result)


def build_dispensing_document(header: DocumentHeader, summary: DispensingSummary) -> CdaDocument:
    """An eDISP-MED 2024.01 document (the products handed out in one dispensation), validated."""
    return build_document(header, summary)


# --- reading documents back ---------------------------------------------------------------------

_TS_FORMATS: Final = ("%Y%m%d%H%M%S%z", "%Y%m%d%H%M%z", "%Y%m%d%H%M%S", "%Y%m%d%H%M", "%Y%m%d")


def parse_ts(value: str) -> datetime:
    """An HL7 TS (what :func:`hl7_ts` writes, or a shorter precision) as an aware datetime; a
    value without offset is taken as UTC."""
    for pattern in _TS_FORMATS:
        try:
            moment = datetime.strptime(value, pattern)
        except ValueError:
            continue
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    raise DocumentInputError("Date HL7 illisible.")


def _attr(root: Element, path: str, name: str) -> str:
    found = root.find(path, {"h": NS})
    value = found.get(name) if found is not None else None
    if not value:
        raise DocumentInputError(f"Élément absent du document : {path}")
    return value


def _text_at(root: Element, path: str) -> str:
    return root.findtext(path, default="", namespaces={"h": NS}).strip()


def _author_of(root: Element) -> Element:
    """The first author who is a person (a document may also name a device as author)."""
    authors = root.findall("h:author/h:assignedAuthor", {"h": NS})
    if not authors:
        raise DocumentInputError("Élément absent du document : author")
    people = [a for a in authors if a.find("h:assignedPerson", {"h": NS}) is not None]
    return (people or authors)[0]


def _read_author(assigned: Element) -> Author:
    found = assigned.find("h:code", {"h": NS})
    return Author(
        national_id=_attr(assigned, "h:id", "extension"),
        family_name=_text_at(assigned, "h:assignedPerson/h:name/h:family"),
        given_name=_text_at(assigned, "h:assignedPerson/h:name/h:given"),
        profession_code=found.get("code", "") if found is not None else "",
        profession_label=found.get("displayName", "") if found is not None else "",
    )


def _read_organisation(assigned: Element) -> Organisation:
    organisation = assigned.find("h:representedOrganization", {"h": NS})
    if organisation is None:
        return Organisation(finess="", name="")
    struct = organisation.find("h:id", {"h": NS})
    struct_id = struct.get("extension", "") if struct is not None else ""
    if len(struct_id) == 10 and struct_id.startswith(t.IDNAT_STRUCT_FINESS_PREFIX):
        struct_id = struct_id[1:]  # idNat_Struct of a FINESS: 1 + FINESS
    return Organisation(
        finess=struct_id,
        name=_text_at(organisation, "h:name"),
        address=_text_at(organisation, "h:addr/h:streetAddressLine"),
    )


def _service_period(root: Element, effective: datetime) -> tuple[datetime, datetime]:
    period = "h:documentationOf/h:serviceEvent/h:effectiveTime"
    low = root.find(f"{period}/h:low", {"h": NS})
    high = root.find(f"{period}/h:high", {"h": NS})
    start = parse_ts(low.get("value", "")) if low is not None and low.get("value") else effective
    stop = parse_ts(high.get("value", "")) if high is not None and high.get("value") else start
    return start, stop


def read_document(xml: bytes) -> CdaDocument:
    """The :class:`CdaDocument` facts of a CI-SIS document of a kind lgo produces: ours (the
    delivery worker reads the stored document: it is the single source of its metadata) or
    another producer's (the ANS examples read back).

    The XML goes through lgo's hardened parser; conformance is checked elsewhere
    (``validate`` at build time, ``conformance.DocumentChecker`` before sending).
    """
    root = parse_xml(xml, max_bytes=MAX_READ_BYTES)
    if etree.QName(root).namespace != NS or etree.QName(root).localname != "ClinicalDocument":
        raise DocumentInputError("Document CDA attendu (ClinicalDocument).")
    code_value = _attr(root, "h:code", "code")
    kinds = {spec.type_code.code: kind for kind, spec in t.DOCUMENT_TYPES.items()}
    if code_value not in kinds:
        raise DocumentInputError("Type de document inconnu.")
    assigned = _author_of(root)
    effective = parse_ts(_attr(root, "h:effectiveTime", "value")).astimezone(UTC)
    start, stop = _service_period(root, effective)
    patient_id = "h:recordTarget/h:patientRole/h:id"
    return CdaDocument(
        kind=kinds[code_value],
        document_id=_attr(root, "h:id", "root"),
        set_id=_attr(root, "h:setId", "root"),
        title=_text_at(root, "h:title"),
        effective_time=effective,
        ins=Ins.of(_attr(root, patient_id, "extension"), _attr(root, patient_id, "root")),
        author=_read_author(assigned),
        organisation=_read_organisation(assigned),
        xml=xml,
        service_start=start,
        service_stop=stop,
    )
