"""HTML rendering of CDA documents: content shown, markup from the document never copied."""

from __future__ import annotations

from lxml import etree

from lgo.documents.cda import NS, build_document
from lgo.documents.render import render_html
from tests.fixtures.documents import make_dispensing_summary, make_header


def _with_hostile_narrative() -> bytes:
    xml = build_document(make_header(), make_dispensing_summary()).xml
    root = etree.fromstring(xml)
    text = root.find(".//h:section/h:text", {"h": NS})
    assert text is not None
    paragraph = etree.SubElement(text, f"{{{NS}}}paragraph", onclick="steal()")
    paragraph.text = "Avant "
    script = etree.SubElement(paragraph, "{http://www.w3.org/1999/xhtml}script")
    script.text = "alert('x')"
    script.tail = " après"
    link = etree.SubElement(text, f"{{{NS}}}linkHtml", href="javascript:alert(1)")
    link.text = "lien"
    return etree.tostring(root)


def test_renders_title_patient_and_table() -> None:
    html = render_html(build_document(make_header(), make_dispensing_summary()).xml)
    assert "<h1>Dispensation médicamenteuse</h1>" in html
    assert "FICTIF ALICE MARIE" in html
    assert "<td><span>PARACETAMOL FICTIF 500 mg, comprimé</span></td>" in html


def test_foreign_markup_and_attributes_are_dropped_text_kept() -> None:
    html = render_html(_with_hostile_narrative())
    assert "<script" not in html
    assert "onclick" not in html
    assert "javascript:" not in html
    assert "href" not in html
    # the text of dropped elements is kept, escaped, in order
    assert "Avant alert('x') après" in html.replace("&#39;", "'")
    assert "lien" in html
