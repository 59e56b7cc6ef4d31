"""Small CDA R2 element builders shared by the header (``cda.py``) and the bodies (``sections.py``).

Element order inside each class follows the HL7 CDA R2 schema: lxml appends, so callers add
children in schema order.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Final

from lxml import etree

from lgo.documents import doctypes as t
from lgo.documents.errors import DocumentInputError
from lgo.documents.models import Author, Organisation

NS: Final = "urn:hl7-org:v3"
XSI: Final = "http://www.w3.org/2001/XMLSchema-instance"
XSI_TYPE: Final = f"{{{XSI}}}type"

Element = etree._Element


def q(tag: str) -> str:
    return f"{{{NS}}}{tag}"


def sub(parent: Element, tag: str, text: str | None = None, **attrs: str) -> Element:
    element = etree.SubElement(parent, q(tag), attrib=attrs)
    if text is not None:
        element.text = text
    return element


def code(parent: Element, tag: str, value: t.Code, **attrs: str) -> Element:
    return sub(
        parent, tag, code=value.code, codeSystem=value.system, displayName=value.display, **attrs
    )


def template_ids(parent: Element, *roots: str) -> None:
    for root in roots:
        sub(parent, "templateId", root=root)


def reference(parent: Element, target: str) -> None:
    """``<reference value="#target"/>``: points a coded element to its narrative text."""
    sub(parent, "reference", value=f"#{target}")


def hl7_ts(moment: datetime) -> str:
    """HL7 TS with seconds and UTC offset (``20260315103000+0100``); naive datetimes refused."""
    if moment.tzinfo is None:
        raise DocumentInputError("Date sans fuseau horaire.")
    return moment.strftime("%Y%m%d%H%M%S%z")


def hl7_date(day: date) -> str:
    return day.strftime("%Y%m%d")


def profession(author: Author) -> t.Code:
    """The author's profession in JDV_J01 (``G15_21`` Pharmacien …): code *and* label."""
    raw = author.profession_code.removeprefix("G15_")
    label = t.PROFESSIONS.get(raw.split("/")[0]) or author.profession_label or "Pharmacien"
    return t.Code(f"G15_{raw}", t.AUTHOR_SPECIALTY, label)


def person_name(parent: Element, author: Author) -> None:
    name = sub(sub(parent, "assignedPerson"), "name")
    # CI-SIS: family then given; an empty name part is refused by the volets' name rules
    sub(name, "family", author.family_name or "INCONNU")
    sub(name, "given", author.given_name or "INCONNU")


def organisation_id(parent: Element, organisation: Organisation) -> None:
    struct_id = t.IDNAT_STRUCT_FINESS_PREFIX + organisation.finess
    sub(parent, "id", root=t.IDNAT_STRUCT, extension=struct_id)


def organisation_element(
    parent: Element, tag: str, organisation: Organisation, practice: t.Code | None = None
) -> Element:
    element = sub(parent, tag)
    organisation_id(element, organisation)
    sub(element, "name", organisation.name)
    if organisation.address:
        sub(sub(element, "addr"), "streetAddressLine", organisation.address)
    if practice is not None:
        code(element, "standardIndustryClassCode", practice)
    return element


def assigned_entity(
    parent: Element, author: Author, organisation: Organisation, practice: t.Code | None
) -> Element:
    """``assignedEntity``: a professional (idNat_PS, profession, name) and their pharmacy."""
    entity = sub(parent, "assignedEntity")
    sub(entity, "id", root=t.IDNAT_PS, extension=author.national_id)
    code(entity, "code", profession(author))
    person_name(entity, author)
    organisation_element(entity, "representedOrganization", organisation, practice)
    return entity


def author_block(
    parent: Element, moment: datetime, author: Author, organisation: Organisation
) -> Element:
    """``author`` with time, idNat_PS, profession, name and represented organisation."""
    element = sub(parent, "author")
    sub(element, "time", value=hl7_ts(moment))
    assigned = sub(element, "assignedAuthor")
    sub(assigned, "id", root=t.IDNAT_PS, extension=author.national_id)
    code(assigned, "code", profession(author))
    person_name(assigned, author)
    organisation_element(assigned, "representedOrganization", organisation)
    return element


def comment_entry(parent: Element, target: str, text: str) -> None:
    """FR-Commentaire-ER, as an ``entryRelationship`` of ``parent``."""
    act = sub(
        sub(parent, "entryRelationship", typeCode="SUBJ"), "act", classCode="ACT", moodCode="EVN"
    )
    template_ids(
        act,
        "2.16.840.1.113883.10.20.1.40",
        "1.3.6.1.4.1.19376.1.5.3.1.4.2",
        "1.2.250.1.213.1.1.3.32",
    )
    code(act, "code", t.COMMENT)
    body = sub(act, "text")
    reference(body, target)
    body[-1].tail = text
    sub(act, "statusCode", code="completed")


def table(parent: Element, headings: list[str], rows: list[list[tuple[str, str | None]]]) -> None:
    """A narrative table; each cell is (text, ID of a ``content`` to reference, or None)."""
    element = sub(parent, "table", border="1")
    head_row = sub(sub(element, "thead"), "tr")
    for heading in headings:
        sub(head_row, "th", heading)
    body = sub(element, "tbody")
    for row in rows:
        tr = sub(body, "tr")
        for text, content_id in row:
            td = sub(tr, "td")
            if content_id:
                sub(td, "content", text, ID=content_id)
            else:
                td.text = text
