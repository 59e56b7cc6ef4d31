"""Render a CDA document (ours or one read from the DMP) to sanitised HTML for the counter.

Nothing of the source document is copied as markup: a new HTML tree is built from an allow-list of
narrative elements (paragraph, list, table, content, br …) and their *text*. Attributes, scripts,
links, styles, processing instructions and unknown elements are dropped (unknown elements keep
their text). lxml escapes text on serialisation, so a ``<script>`` written as text stays text.
The producer's stylesheet is never run (no XSLT on untrusted input).
"""

from __future__ import annotations

from typing import Final

from lxml import etree, html

from lgo.core.safe_xml import parse_xml
from lgo.documents.cda import NS
from lgo.documents.validate import MAX_CDA_BYTES

Element = etree._Element

# CDA narrative element -> HTML element
NARRATIVE_TAGS: Final = {
    "paragraph": "p",
    "list": "ul",
    "item": "li",
    "table": "table",
    "caption": "caption",
    "thead": "thead",
    "tbody": "tbody",
    "tr": "tr",
    "th": "th",
    "td": "td",
    "content": "span",
    "br": "br",
    "sub": "sub",
    "sup": "sup",
}


def _all_text(element: Element) -> str:
    return "".join(str(part) for part in element.itertext())


def _local(element: Element) -> str:
    tag = element.tag
    if not isinstance(tag, str):  # comment or processing instruction
        return ""
    return etree.QName(tag).localname


def _first(parent: Element, path: str) -> Element | None:
    found = parent.find(path, {"h": NS})
    return found


def _text(parent: Element, path: str) -> str:
    found = _first(parent, path)
    return _all_text(found).strip() if found is not None else ""


def _copy_narrative(source: Element, target: Element) -> None:
    """Append to ``target`` the allowed narrative of ``source`` (text always kept)."""
    last: Element | None = None
    _append_text(target, last, source.text)
    for child in source:
        name = _local(child)
        html_tag = NARRATIVE_TAGS.get(name)
        if html_tag is not None:
            if name == "list" and child.get("listType") == "ordered":
                html_tag = "ol"
            new = etree.SubElement(target, html_tag)
            _copy_narrative(child, new)
            last = new
        elif name:  # unknown element: keep its text only
            _append_text(target, last, _all_text(child))
        _append_text(target, last, child.tail)


def _append_text(target: Element, last: Element | None, text: str | None) -> None:
    if not text:
        return
    if last is None:
        target.text = (target.text or "") + text
    else:
        last.tail = (last.tail or "") + text


def _patient_line(root: Element) -> str:
    patient = _first(root, "h:recordTarget/h:patientRole/h:patient")
    if patient is None:
        return ""
    family = _text(patient, "h:name/h:family")
    # CI-SIS names: the list of given names, then the first one again (qualifier BR): show the list
    given = _text(patient, "h:name/h:given")
    birth = _first(patient, "h:birthTime")
    born = birth.get("value", "") if birth is not None else ""
    return f"Patient : {family} {given}".strip() + (f" — né(e) le {_date(born)}" if born else "")


def _author_line(root: Element) -> str:
    person = _first(root, "h:author/h:assignedAuthor/h:assignedPerson/h:name")
    organisation = _text(root, "h:author/h:assignedAuthor/h:representedOrganization/h:name")
    name = " ".join(_all_text(p).strip() for p in person) if person is not None else ""
    return f"Auteur : {name}" + (f" ({organisation})" if organisation else "")


def _date(ts: str) -> str:
    if len(ts) >= 8:
        return f"{ts[6:8]}/{ts[4:6]}/{ts[:4]}"
    return ts


def render_html(xml: bytes) -> str:
    """A self-contained, sanitised HTML fragment (``<article>``) of the CDA ``xml``."""
    root = parse_xml(xml, max_bytes=MAX_CDA_BYTES)
    article = etree.Element("article", {"class": "cda-document"})
    etree.SubElement(article, "h1").text = _text(root, "h:title") or "Document"
    meta = etree.SubElement(article, "p", {"class": "cda-meta"})
    effective = _first(root, "h:effectiveTime")
    lines = [
        _patient_line(root),
        _author_line(root),
        f"Date : {_date(effective.get('value', ''))}" if effective is not None else "",
    ]
    for index, line in enumerate(x for x in lines if x):
        if index:
            etree.SubElement(meta, "br")
        _append_text(meta, meta[-1] if len(meta) else None, line)
    for section in root.iterfind(".//h:section", {"h": NS}):
        block = etree.SubElement(article, "section")
        etree.SubElement(block, "h2").text = _text(section, "h:title")
        text = _first(section, "h:text")
        if text is not None:
            _copy_narrative(text, etree.SubElement(block, "div"))
    return str(html.tostring(article, encoding="unicode"))
