"""The body of each CI-SIS document lgo produces, and the service event its header documents.

- eDISP-MED 2024.01: section FR-Dispensation-medicaments, one FR-Traitement-dispense (``supply``)
  per product handed out.
- VAC-NOTE 2023.01: section FR-Vaccinations with exactly one FR-Vaccination entry (CIS code, ATC
  class, lot, route, site, rank, performer and author).
- BIO-TROD 2024.01: section FR-CR-BIO-Chapitre, one FR-Resultats-examens-de-biologie-medicale
  entry: the device used (UDI or maker/reference/lot/expiry) and one observation per reading.

Each builder gets the ``structuredBody/component`` element to fill; the narrative (``text``) is
written first and the entries point to it with ``reference`` (the volets ask for it).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Final

from lgo.documents import doctypes as t
from lgo.documents.elements import (
    XSI_TYPE,
    Element,
    assigned_entity,
    author_block,
    code,
    comment_entry,
    hl7_date,
    hl7_ts,
    reference,
    sub,
    table,
    template_ids,
)
from lgo.documents.errors import DocumentInputError
from lgo.documents.models import (
    TROD_ANALYTES,
    Author,
    DispensingSummary,
    DocumentBody,
    DocumentHeader,
    DocumentKind,
    TrodResult,
    Vaccination,
    VaccinationNote,
)


@dataclass(frozen=True)
class Service:
    """What ``documentationOf/serviceEvent`` says: the act, its period and who performed it."""

    code: t.Code
    start: datetime
    stop: datetime
    performer: Author
    title: str


def _uuid() -> str:
    return str(uuid.uuid4()).upper()


def _local(moment: datetime) -> str:
    return moment.strftime("%d/%m/%Y %H:%M")


# --- eDISP-MED ----------------------------------------------------------------------------------


def _quantity_text(quantity: Decimal) -> str:
    return format(quantity.normalize(), "f")


def quantity_with_unit(quantity: Decimal, unit: str) -> str:
    """``2 boîtes``, ``1 boîte``, ``1.5 comprimé``: French takes the plural from 2 on. A unit of
    several words is left as written (its agreement is not a suffix rule)."""
    if quantity >= 2 and " " not in unit and not unit.endswith(("s", "x", "z")):
        unit += "s"
    return f"{_quantity_text(quantity)} {unit}"


def dispensing_service(header: DocumentHeader, body: DocumentBody) -> Service:
    assert isinstance(body, DispensingSummary)
    if not body.items:
        raise DocumentInputError("Aucun produit délivré à documenter.")
    doc_type = t.DOCUMENT_TYPES[body.kind]
    return Service(
        doc_type.type_code, body.dispensed_at, body.dispensed_at, header.author, doc_type.title
    )


def dispensing_section(component: Element, _header: DocumentHeader, body: DocumentBody) -> None:
    assert isinstance(body, DispensingSummary)
    section = sub(component, "section", classCode="DOCSECT", moodCode="EVN")
    template_ids(
        section,
        "1.3.6.1.4.1.19376.1.9.1.2.3",
        "2.16.840.1.113883.10.20.1.8",
        "1.2.250.1.213.1.1.2.236",
    )
    sub(section, "id", root=_uuid())
    code(section, "code", t.DISPENSED_SECTION)
    sub(section, "title", t.DISPENSED_SECTION.display)
    rows = [
        [
            (i.product_label, f"med-{n}"),
            (i.product_code, None),
            (quantity_with_unit(i.quantity, i.unit), None),
        ]
        for n, i in enumerate(body.items, 1)
    ]
    table(sub(section, "text"), ["Médicament", "Code CIP", "Quantité délivrée"], rows)
    for n, item in enumerate(body.items, 1):
        supply = sub(sub(section, "entry"), "supply", classCode="SPLY", moodCode="EVN")
        template_ids(
            supply,
            "2.16.840.1.113883.10.20.1.34",
            "1.3.6.1.4.1.19376.1.5.3.1.4.7.3",
            "1.3.6.1.4.1.19376.1.9.1.3.4",
            "1.2.250.1.213.1.1.3.204",
        )
        sub(supply, "id", root=_uuid())
        reference(sub(supply, "text"), f"med-{n}")
        sub(supply, "effectiveTime", value=hl7_ts(body.dispensed_at))
        sub(supply, "quantity", value=_quantity_text(item.quantity), unit=t.BOX)
        product = sub(sub(supply, "product"), "manufacturedProduct", classCode="MANU")
        template_ids(
            product,
            "2.16.840.1.113883.10.20.1.53",
            "1.3.6.1.4.1.19376.1.5.3.1.4.7.2",
            "1.2.250.1.213.1.1.3.43",
        )
        material = sub(product, "manufacturedMaterial", classCode="MMAT", determinerCode="KIND")
        template_ids(material, "1.3.6.1.4.1.19376.1.9.1.3.1")
        material_code = sub(material, "code")
        reference(sub(material_code, "originalText"), f"med-{n}")
        code(material_code, "translation", t.Code(item.product_code, t.CIP, item.product_label))
        sub(material, "name", item.product_label)


# --- VAC-NOTE -----------------------------------------------------------------------------------


def _the_vaccination(body: DocumentBody) -> Vaccination:
    assert isinstance(body, VaccinationNote)
    if not body.vaccinations:
        raise DocumentInputError("Aucune vaccination à documenter.")
    if len(body.vaccinations) > 1:
        raise DocumentInputError("Une note de vaccination documente une seule vaccination.")
    vaccination = body.vaccinations[0]
    if not vaccination.cis_code or not vaccination.atc_code:
        raise DocumentInputError(
            "Code CIS et classe ATC du vaccin requis pour la note de vaccination."
        )
    if not vaccination.lot_number:
        raise DocumentInputError("Numéro de lot du vaccin requis.")
    return vaccination


def vaccination_service(header: DocumentHeader, body: DocumentBody) -> Service:
    vaccination = _the_vaccination(body)
    doc_type = t.DOCUMENT_TYPES[DocumentKind.VACCINATION_NOTE]
    moment = vaccination.administered_at
    return Service(
        doc_type.type_code, moment, moment, vaccination.performer or header.author, doc_type.title
    )


def vaccination_section(component: Element, header: DocumentHeader, body: DocumentBody) -> None:
    vaccination = _the_vaccination(body)
    performer = vaccination.performer or header.author
    section = sub(component, "section")
    template_ids(
        section,
        "2.16.840.1.113883.10.20.1.6",
        "1.3.6.1.4.1.19376.1.5.3.1.3.23",
        "1.2.250.1.213.1.1.2.147",
    )
    sub(section, "id", root=_uuid())
    code(section, "code", t.IMMUNIZATIONS_SECTION)
    sub(section, "title", "Note de vaccination")
    route = t.VACCINATION_ROUTES[vaccination.route]
    site = t.VACCINATION_SITES[vaccination.site] if vaccination.site else None
    row = [
        (_local(vaccination.administered_at), None),
        (vaccination.product_label, "vac-1"),
        (vaccination.lot_number, None),
        (str(vaccination.dose_number or ""), None),
        (route.display, None),
        (site.display if site else "", "vac-1-site" if site else None),
        (vaccination.comment, "vac-1-comment" if vaccination.comment else None),
        (f"{performer.given_name} {performer.family_name}".strip(), None),
    ]
    headings = [
        "Date",
        "Vaccin",
        "Lot n°",
        "Rang",
        "Voie d'administration",
        "Région d'administration",
        "Commentaire",
        "Vaccinateur",
    ]
    table(sub(section, "text"), headings, [row])
    _vaccination_entry(sub(section, "entry"), header, vaccination, route, site)


def _vaccination_entry(
    entry: Element,
    header: DocumentHeader,
    vaccination: Vaccination,
    route: t.Code,
    site: t.Code | None,
) -> None:
    act = sub(
        entry, "substanceAdministration", classCode="SBADM", moodCode="EVN", negationInd="false"
    )
    template_ids(
        act,
        "2.16.840.1.113883.10.20.1.24",
        "1.3.6.1.4.1.19376.1.5.3.1.4.12",
        "1.2.250.1.213.1.1.3.45",
    )
    sub(act, "id", root=_uuid())
    code(act, "code", t.VACCINATION_ACTS[vaccination.act])
    reference(sub(act, "text"), "vac-1")
    sub(act, "statusCode", code="completed")
    # VAC-NOTE: the day of the vaccination, AAAAMMJJ, in the pharmacy's local time
    sub(act, "effectiveTime", value=hl7_date(vaccination.administered_at.date()))
    code(act, "routeCode", route)
    if site is not None:
        reference(sub(code(act, "approachSiteCode", site), "originalText"), "vac-1-site")
    _vaccine(act, vaccination)
    performer = vaccination.performer or header.author
    assigned_entity(
        sub(act, "performer", typeCode="PRF"), performer, header.organisation, t.AMBULATORY
    )
    author_block(act, header.effective_time, header.author, header.organisation)
    if vaccination.dose_number is not None:
        _rank(act, vaccination.dose_number)
    if vaccination.comment:
        comment_entry(act, "vac-1-comment", vaccination.comment)


def _vaccine(act: Element, vaccination: Vaccination) -> None:
    product = sub(sub(act, "consumable", typeCode="CSM"), "manufacturedProduct")
    template_ids(
        product,
        "2.16.840.1.113883.10.20.1.53",
        "1.3.6.1.4.1.19376.1.5.3.1.4.7.2",
        "1.2.250.1.213.1.1.3.43",
    )
    material = sub(product, "manufacturedMaterial")
    cis = code(material, "code", t.Code(vaccination.cis_code, t.CIS, vaccination.product_label))
    reference(sub(cis, "originalText"), "vac-1")
    atc_label = vaccination.atc_label or vaccination.product_label
    code(cis, "translation", t.Code(vaccination.atc_code, t.ATC, atc_label))
    code(cis, "translation", t.Code(vaccination.product_code, t.CIP, vaccination.product_label))
    sub(material, "name", atc_label)
    sub(material, "lotNumberText", vaccination.lot_number)


def _rank(act: Element, rank: int) -> None:
    observation = sub(
        sub(act, "entryRelationship", typeCode="SUBJ"),
        "observation",
        classCode="OBS",
        moodCode="EVN",
    )
    template_ids(observation, "2.16.840.1.113883.10.20.1.46", "1.2.250.1.213.1.1.3.82")
    code(observation, "code", t.VACCINATION_RANK)
    sub(observation, "statusCode", code="completed")
    sub(observation, "value", value=str(rank)).set(XSI_TYPE, "INT")


# --- BIO-TROD -----------------------------------------------------------------------------------


def _checked_trod(body: DocumentBody) -> TrodResult:
    assert isinstance(body, TrodResult)
    expected = TROD_ANALYTES[body.test]
    if sorted(r.analyte for r in body.readings) != sorted(expected):
        names = ", ".join(a.value for a in expected)
        raise DocumentInputError(f"Un test {body.test.value} donne un résultat par : {names}.")
    if not (body.kit.udi or (body.kit.manufacturer and body.kit.lot_number)):
        raise DocumentInputError("Dispositif du test requis (UDI, ou fabricant et lot).")
    return body


def trod_service(header: DocumentHeader, body: DocumentBody) -> Service:
    result = _checked_trod(body)
    spec = t.TROD_SPECS[result.test]
    doc_type = t.DOCUMENT_TYPES[DocumentKind.TROD_RESULT]
    return Service(
        spec.disease,
        result.performed_at,
        result.performed_at,
        result.performer or header.author,
        f"{doc_type.title} : {spec.label}",
    )


def _device_text(result: TrodResult) -> str:
    expiry = result.kit.expiry.strftime("%d/%m/%Y") if result.kit.expiry else ""
    return " | ".join(
        (result.kit.manufacturer, result.kit.reference, result.kit.lot_number, expiry)
    )


def trod_section(component: Element, _header: DocumentHeader, body: DocumentBody) -> None:
    result = _checked_trod(body)
    spec = t.TROD_SPECS[result.test]
    section = sub(component, "section")
    template_ids(section, "1.3.6.1.4.1.19376.1.3.3.2.1", "1.2.250.1.213.1.1.2.70")
    code(section, "code", spec.section)
    sub(section, "title", "Résultat du test rapide d'orientation diagnostique")
    text = sub(section, "text")
    rows: list[list[tuple[str, str | None]]] = []
    for n, reading in enumerate(result.readings, 1):
        label = t.TROD_ANALYTE_CODES[reading.analyte][1]
        outcome = t.TROD_OUTCOMES[reading.outcome].display
        rows.append([(label, f"examen-{n}"), (outcome, f"resultat-{n}")])
    table(text, ["Pathologie/Substance dépistée", "Résultat"], rows)
    device: list[list[tuple[str, str | None]]] = [
        [(result.kit.udi, None), (_device_text(result), "dispositif")]
    ]
    table(
        text,
        [
            "Code UDI du dispositif utilisé",
            "Fabricant | Référence | N° de lot | Date de péremption",
        ],
        device,
    )
    if result.comment:
        sub(sub(text, "paragraph"), "content", result.comment, ID="commentaire")
    _trod_entry(section, result, spec)


def _trod_entry(section: Element, result: TrodResult, spec: t.TrodSpec) -> None:
    entry = sub(section, "entry", typeCode="DRIV")
    template_ids(entry, "1.3.6.1.4.1.19376.1.3.1", "1.2.250.1.213.1.1.3.21")
    act = sub(entry, "act", classCode="ACT", moodCode="EVN")
    code(act, "code", spec.battery)
    sub(act, "statusCode", code="completed")
    role = sub(sub(act, "participant", typeCode="DEV"), "participantRole", classCode="MANU")
    if result.kit.udi:
        sub(role, "id", root=t.UDI_GS1, extension=result.kit.udi)
    device = sub(role, "playingDevice", classCode="DEV", determinerCode="INSTANCE")
    reference(sub(sub(device, "code"), "originalText"), "dispositif")
    for n, reading in enumerate(result.readings, 1):
        observation = sub(
            sub(act, "entryRelationship", typeCode="COMP"),
            "observation",
            classCode="OBS",
            moodCode="EVN",
        )
        template_ids(observation, "1.3.6.1.4.1.19376.1.3.1.6", "1.2.250.1.213.1.1.3.80")
        analyte = code(observation, "code", t.TROD_ANALYTE_CODES[reading.analyte][0])
        reference(sub(analyte, "originalText"), f"examen-{n}")
        sub(observation, "statusCode", code="completed")
        sub(observation, "effectiveTime", value=hl7_ts(result.performed_at))
        outcome = t.TROD_OUTCOMES[reading.outcome]
        value = sub(
            observation,
            "value",
            code=outcome.code,
            codeSystem=outcome.system,
            displayName=outcome.display,
        )
        value.set(XSI_TYPE, "CD")
        reference(sub(value, "originalText"), f"resultat-{n}")
        if result.comment and n == 1:
            comment_entry(observation, "commentaire", result.comment)


ServiceOf = Callable[[DocumentHeader, DocumentBody], Service]
BodyBuilder = Callable[[Element, DocumentHeader, DocumentBody], None]

BUILDERS: Final[dict[DocumentKind, tuple[ServiceOf, BodyBuilder]]] = {
    DocumentKind.DISPENSING_SUMMARY: (dispensing_service, dispensing_section),
    DocumentKind.VACCINATION_NOTE: (vaccination_service, vaccination_section),
    DocumentKind.TROD_RESULT: (trod_service, trod_section),
}
