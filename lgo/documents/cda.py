"""Build CDA R2 documents with lxml: one shared header, one section builder per document type.

The header carries the patient's INS (only for a qualified identity: checked here too, as a last
line of defence), the author pharmacist (idNat_PS from the CPS session), the pharmacy as author
structure and custodian, the dates and the confidentiality. The body is a structured body with one
coded section: human-readable narrative (``text``) plus machine-readable entries.

Every document is validated against the CDA schema before it is returned (``CdaInvalidError``
otherwise): nothing invalid can reach the outbox.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Final

from lxml import etree

from lgo.documents import types as t
from lgo.documents.errors import DocumentInputError, InsNotQualifiedError
from lgo.documents.models import (
    Author,
    CdaDocument,
    DispensingSummary,
    DocumentBody,
    DocumentHeader,
    DocumentKind,
    Organisation,
    TrodResult,
    VaccinationNote,
)
from lgo.documents.validate import validate_cda, validated_root
from lgo.domain.identity import Ins, may_send_ins

NS: Final = "urn:hl7-org:v3"
XSI: Final = "http://www.w3.org/2001/XMLSchema-instance"
_NSMAP: Final = {None: NS, "xsi": XSI}
TYPE_ID_ROOT: Final = "2.16.840.1.113883.1.3"
TYPE_ID_EXTENSION: Final = "POCD_HD000040"

Element = etree._Element
SectionBuilder = Callable[[Element, DocumentHeader, DocumentBody], tuple[datetime, datetime]]


def _q(tag: str) -> str:
    return f"{{{NS}}}{tag}"


def _sub(parent: Element, tag: str, text: str | None = None, **attrs: str) -> Element:
    element = etree.SubElement(parent, _q(tag), attrib=attrs)
    if text is not None:
        element.text = text
    return element


def _code(parent: Element, tag: str, code: t.Code) -> Element:
    return _sub(parent, tag, code=code.code, codeSystem=code.system, displayName=code.display)


def hl7_ts(moment: datetime) -> str:
    """HL7 TS with seconds and UTC offset (``20260315103000+0100``); naive datetimes refused."""
    if moment.tzinfo is None:
        raise DocumentInputError("Date sans fuseau horaire.")
    return moment.strftime("%Y%m%d%H%M%S%z")


def _birth_ts(raw: str) -> str:
    """Birth date as TS precision: a lunar date (``00`` month/day) keeps only what is known."""
    year, month, day = raw[:4], raw[4:6], raw[6:]
    if not 1 <= int(month) <= 12:
        return year
    if not 1 <= int(day) <= 31:
        return year + month
    return raw


# --- header -------------------------------------------------------------------------------------


def _header(root: Element, header: DocumentHeader, doc_type: t.DocumentType) -> None:
    _sub(root, "realmCode", code="FR")
    _sub(root, "typeId", root=TYPE_ID_ROOT, extension=TYPE_ID_EXTENSION)
    _sub(root, "templateId", root=t.CISIS_HEADER_TEMPLATE)
    _sub(root, "templateId", root=doc_type.template_id)
    _sub(root, "id", root=header.document_id)
    _code(root, "code", doc_type.type_code)
    _sub(root, "title", doc_type.title)
    _sub(root, "effectiveTime", value=hl7_ts(header.effective_time))
    _code(root, "confidentialityCode", t.NORMAL_CONFIDENTIALITY)
    _sub(root, "languageCode", code="fr-FR")
    _sub(root, "setId", root=header.set_id or header.document_id)
    _sub(root, "versionNumber", value=str(header.version))
    _record_target(root, header)
    _author(root, header)
    _custodian(root, header)
    _legal_authenticator(root, header)


def _record_target(root: Element, header: DocumentHeader) -> None:
    patient = header.patient
    if not may_send_ins(patient.status, patient.on_work_list):
        raise InsNotQualifiedError()
    role = _sub(_sub(root, "recordTarget"), "patientRole")
    _sub(role, "id", root=patient.ins.oid.value, extension=patient.ins.matricule)
    person = _sub(role, "patient")
    name = _sub(person, "name")
    _sub(name, "family", patient.traits.birth_name, qualifier="BR")
    for given in patient.traits.given_names:
        _sub(name, "given", given)
    gender = patient.traits.sex.value
    _sub(person, "administrativeGenderCode", code=gender, codeSystem=t.ADMIN_GENDER)
    _sub(person, "birthTime", value=_birth_ts(patient.traits.birth_date.raw))


def _assigned_person(parent: Element, header: DocumentHeader) -> None:
    name = _sub(_sub(parent, "assignedPerson"), "name")
    _sub(name, "family", header.author.family_name)
    _sub(name, "given", header.author.given_name)


def _organisation_ids(parent: Element, header: DocumentHeader) -> None:
    struct_id = t.IDNAT_STRUCT_FINESS_PREFIX + header.organisation.finess
    _sub(parent, "id", root=t.IDNAT_STRUCT, extension=struct_id)


def _organisation(parent: Element, tag: str, header: DocumentHeader) -> None:
    organisation = _sub(parent, tag)
    _organisation_ids(organisation, header)
    _sub(organisation, "name", header.organisation.name)
    if header.organisation.address:
        _sub(_sub(organisation, "addr"), "streetAddressLine", header.organisation.address)


def _author(root: Element, header: DocumentHeader) -> None:
    author = _sub(root, "author")
    _sub(author, "time", value=hl7_ts(header.effective_time))
    assigned = _sub(author, "assignedAuthor")
    _sub(assigned, "id", root=t.IDNAT_PS, extension=header.author.national_id)
    profession = t.Code(
        header.author.profession_code, t.TRE_G15_PROFESSION, header.author.profession_label
    )
    _code(assigned, "code", profession)
    _assigned_person(assigned, header)
    _organisation(assigned, "representedOrganization", header)


def _custodian(root: Element, header: DocumentHeader) -> None:
    assigned = _sub(_sub(root, "custodian"), "assignedCustodian")
    organisation = _sub(assigned, "representedCustodianOrganization")
    _organisation_ids(organisation, header)
    _sub(organisation, "name", header.organisation.name)


def _legal_authenticator(root: Element, header: DocumentHeader) -> None:
    legal = _sub(root, "legalAuthenticator")
    _sub(legal, "time", value=hl7_ts(header.effective_time))
    _sub(legal, "signatureCode", code="S")
    entity = _sub(legal, "assignedEntity")
    _sub(entity, "id", root=t.IDNAT_PS, extension=header.author.national_id)
    _assigned_person(entity, header)


def _documentation_of(
    root: Element, doc_type: t.DocumentType, start: datetime, stop: datetime
) -> None:
    event = _sub(_sub(root, "documentationOf"), "serviceEvent")
    _code(event, "code", doc_type.type_code)
    period = _sub(event, "effectiveTime")
    _sub(period, "low", value=hl7_ts(start))
    _sub(period, "high", value=hl7_ts(stop))


# --- bodies -------------------------------------------------------------------------------------


def _section(root: Element, doc_type: t.DocumentType) -> Element:
    body = _sub(_sub(root, "component"), "structuredBody")
    section = _sub(_sub(body, "component"), "section")
    _sub(section, "templateId", root=doc_type.template_id)
    _code(section, "code", doc_type.section_code)
    _sub(section, "title", doc_type.section_code.display)
    return section


def _table(section: Element, headings: list[str], rows: list[list[str]]) -> None:
    table = _sub(_sub(section, "text"), "table", border="1")
    head_row = _sub(_sub(table, "thead"), "tr")
    for heading in headings:
        _sub(head_row, "th", heading)
    body = _sub(table, "tbody")
    for row in rows:
        tr = _sub(body, "tr")
        for cell in row:
            _sub(tr, "td", cell)


def _material(parent: Element, code: str, label: str, lot: str | None) -> None:
    product = _sub(parent, "manufacturedProduct")
    material = _sub(product, "manufacturedMaterial")
    _sub(material, "code", code=code, codeSystem=t.CIP, displayName=label)
    _sub(material, "name", label)
    if lot:
        _sub(material, "lotNumberText", lot)


def _local(moment: datetime) -> str:
    return moment.strftime("%d/%m/%Y %H:%M")


def _vaccination_section(
    section: Element, _header: DocumentHeader, body: DocumentBody
) -> tuple[datetime, datetime]:
    assert isinstance(body, VaccinationNote)
    if not body.vaccinations:
        raise DocumentInputError("Aucune vaccination à documenter.")
    rows = [
        [_local(v.administered_at), v.product_label, v.product_code, v.lot_number, v.dose_label]
        for v in body.vaccinations
    ]
    _table(section, ["Date", "Vaccin", "Code CIP", "Lot", "Dose"], rows)
    for vaccination in body.vaccinations:
        act = _sub(
            _sub(section, "entry"), "substanceAdministration", classCode="SBADM", moodCode="EVN"
        )
        _sub(act, "statusCode", code="completed")
        _sub(act, "effectiveTime", value=hl7_ts(vaccination.administered_at))
        consumable = _sub(act, "consumable")
        _material(
            consumable, vaccination.product_code, vaccination.product_label, vaccination.lot_number
        )
    moments = [v.administered_at for v in body.vaccinations]
    return min(moments), max(moments)


def _quantity_text(quantity: Decimal) -> str:
    return format(quantity.normalize(), "f")


def _dispensing_section(
    section: Element, _header: DocumentHeader, body: DocumentBody
) -> tuple[datetime, datetime]:
    assert isinstance(body, DispensingSummary)
    if not body.items:
        raise DocumentInputError("Aucun produit délivré à documenter.")
    rows = [
        [i.product_label, i.product_code, f"{_quantity_text(i.quantity)} {i.unit}"]
        for i in body.items
    ]
    _table(section, ["Produit", "Code CIP", "Quantité"], rows)
    for item in body.items:
        supply = _sub(_sub(section, "entry"), "supply", classCode="SPLY", moodCode="EVN")
        _sub(supply, "statusCode", code="completed")
        _sub(supply, "effectiveTime", value=hl7_ts(body.dispensed_at))
        _sub(supply, "quantity", value=_quantity_text(item.quantity), unit="1")
        _material(_sub(supply, "product"), item.product_code, item.product_label, None)
    return body.dispensed_at, body.dispensed_at


SECTION_BUILDERS: Final[dict[DocumentKind, SectionBuilder]] = {
    DocumentKind.VACCINATION_NOTE: _vaccination_section,
    DocumentKind.DISPENSING_SUMMARY: _dispensing_section,
}


# --- entry point --------------------------------------------------------------------------------


def build_document(header: DocumentHeader, body: DocumentBody) -> CdaDocument:
    """Build, validate and return the CDA document of ``body`` (any registered type)."""
    doc_type = t.DOCUMENT_TYPES[body.kind]
    root = etree.Element(_q("ClinicalDocument"), nsmap=_NSMAP)  # type: ignore[arg-type]
    _header(root, header, doc_type)
    # documentationOf precedes component in the schema, but its period comes from the body:
    # build the body on a scratch element first, then attach it in order.
    scratch = etree.Element(_q("scratch"))
    section = _section(scratch, doc_type)
    start, stop = SECTION_BUILDERS[body.kind](section, header, body)
    _documentation_of(root, doc_type, start, stop)
    root.append(scratch[0])
    xml = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    validate_cda(xml)
    return CdaDocument(
        kind=body.kind,
        document_id=header.document_id,
        set_id=header.set_id or header.document_id,
        title=doc_type.title,
        effective_time=header.effective_time.astimezone(UTC),
        ins=header.patient.ins,
        author=header.author,
        organisation=header.organisation,
        xml=xml,
        service_start=start,
        service_stop=stop,
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


# --- reading our own documents back ---------------------------------------------------------------


def parse_ts(value: str) -> datetime:
    """HL7 TS with seconds and offset (what :func:`hl7_ts` writes) back to an aware datetime."""
    try:
        return datetime.strptime(value, "%Y%m%d%H%M%S%z")
    except ValueError:
        raise DocumentInputError("Date HL7 illisible.") from None


def _attr(root: Element, path: str, name: str) -> str:
    found = root.find(path, {"h": NS})
    value = found.get(name) if found is not None else None
    if not value:
        raise DocumentInputError(f"Élément absent du document : {path}")
    return value


def _text_at(root: Element, path: str) -> str:
    return root.findtext(path, default="", namespaces={"h": NS}).strip()


def read_document(xml: bytes) -> CdaDocument:
    """The :class:`CdaDocument` facts of a document built by :func:`build_document` (validated).

    Used by the delivery worker: the stored document is the single source of its metadata.
    """
    root = validated_root(xml)
    code = _attr(root, "h:code", "code")
    kinds = {spec.type_code.code: kind for kind, spec in t.DOCUMENT_TYPES.items()}
    if code not in kinds:
        raise DocumentInputError("Type de document inconnu.")
    author = "h:author/h:assignedAuthor"
    organisation = f"{author}/h:representedOrganization"
    struct_id = _attr(root, f"{organisation}/h:id", "extension")
    return CdaDocument(
        kind=kinds[code],
        document_id=_attr(root, "h:id", "root"),
        set_id=_attr(root, "h:setId", "root"),
        title=_text_at(root, "h:title"),
        effective_time=parse_ts(_attr(root, "h:effectiveTime", "value")).astimezone(UTC),
        ins=Ins.of(
            _attr(root, "h:recordTarget/h:patientRole/h:id", "extension"),
            _attr(root, "h:recordTarget/h:patientRole/h:id", "root"),
        ),
        author=Author(
            national_id=_attr(root, f"{author}/h:id", "extension"),
            family_name=_text_at(root, f"{author}/h:assignedPerson/h:name/h:family"),
            given_name=_text_at(root, f"{author}/h:assignedPerson/h:name/h:given"),
            profession_code=_attr(root, f"{author}/h:code", "code"),
            profession_label=_attr(root, f"{author}/h:code", "displayName"),
        ),
        organisation=Organisation(
            finess=struct_id.removeprefix(t.IDNAT_STRUCT_FINESS_PREFIX),
            name=_text_at(root, f"{organisation}/h:name"),
            address=_text_at(root, f"{organisation}/h:addr/h:streetAddressLine"),
        ),
        xml=xml,
        service_start=parse_ts(
            _attr(root, "h:documentationOf/h:serviceEvent/h:effectiveTime/h:low", "value")
        ),
        service_stop=parse_ts(
            _attr(root, "h:documentationOf/h:serviceEvent/h:effectiveTime/h:high", "value")
        ),
    )
