"""lgo's documents against the ANS CI-SIS conformance kit: the normative schema (CDA_extended.xsd)
and the schematron of each volet (eDISP-MED 2024.01, VAC-NOTE 2023.01, BIO-TROD 2024.01).

The kit is external: ``LGO_CISIS_KIT_DIR`` names it (``./dev test`` sets it when
``../shared/conformance/cisis-cda`` exists); without it these tests skip, saying why.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from lxml import etree

from lgo.documents.cda import NS, build_document, read_document
from lgo.documents.conformance import VOLETS, CisisKit, DocumentChecker, rule_id
from lgo.documents.errors import CdaNonConformantError, CisisKitUnusable
from lgo.documents.models import (
    DocumentBody,
    DocumentKind,
    TrodKind,
    TrodKit,
    TrodOutcome,
    VaccinationNote,
    VaccinationRoute,
)
from lgo.documents.render import render_html
from tests.fixtures.documents import (
    make_dispensing_summary,
    make_header,
    make_trod_result,
    make_vaccination_note,
)

H = {"h": NS}


def _bodies() -> list[DocumentBody]:
    minimal = replace(
        make_vaccination_note().vaccinations[0],
        site=None,
        dose_number=None,
        expiry=None,
        route=VaccinationRoute.SUBCUTANEOUS,
        comment="RAS",
    )
    bodies: list[DocumentBody] = [
        make_dispensing_summary(),
        make_vaccination_note(),
        VaccinationNote((minimal,)),
    ]
    for test in TrodKind:
        bodies += [make_trod_result(test, outcome) for outcome in TrodOutcome]
    # a kit without UDI (maker, reference, lot, expiry in the narrative) and a comment
    bodies.append(replace(make_trod_result(), kit=TrodKit("FABRICANT", "R1", "L1"), comment="x"))
    return bodies


def _id(body: DocumentBody) -> str:
    test = getattr(body, "test", None)
    readings = getattr(body, "readings", ())
    return (
        f"{body.kind.value}-{test.value if test else ''}-{readings[0].outcome if readings else ''}"
    )


@pytest.mark.parametrize("body", _bodies(), ids=_id)
def test_every_document_passes_the_schema_and_its_volet(
    cisis_kit: CisisKit, body: DocumentBody
) -> None:
    xml = build_document(make_header(), body).xml
    assert cisis_kit.schema_errors(xml) == []
    assert [str(rule) for rule in cisis_kit.failed_asserts(VOLETS[body.kind], xml)] == []


def test_the_kit_finds_what_was_wrong_with_the_old_documents(cisis_kit: CisisKit) -> None:
    """The checks would fail on the documents of 61a262e: their header templateIds (lgo's own
    2.25 OIDs), no FR-Dispensation-medicaments section, no displayName on the profession."""
    xml = build_document(make_header(), make_dispensing_summary()).xml
    root = etree.fromstring(xml)
    for template in root.findall("h:templateId", H)[2:]:
        root.remove(template)
    section = root.find(".//h:section", H)
    assert section is not None
    for template in section.findall("h:templateId", H):
        if template.get("root") == "1.2.250.1.213.1.1.2.236":
            section.remove(template)
    rules = cisis_kit.failed_asserts(VOLETS[DocumentKind.DISPENSING_SUMMARY], etree.tostring(root))
    texts = " ".join(str(rule) for rule in rules)
    assert "1.3.6.1.4.1.19376.1.9.1.1.3" in texts and "1.2.250.1.213.1.1.1.54" in texts
    assert "FR-Dispensation-medicaments" in texts

    note = etree.fromstring(build_document(make_header(), make_vaccination_note()).xml)
    code = note.find(".//h:substanceAdministration/h:author/h:assignedAuthor/h:code", H)
    assert code is not None
    del code.attrib["displayName"]
    act = note.find(".//h:substanceAdministration/h:code", H)
    assert act is not None
    del act.attrib["displayName"]
    rules = cisis_kit.failed_asserts(VOLETS[DocumentKind.VACCINATION_NOTE], etree.tostring(note))
    assert len(rules) == 2
    assert all(rule.text.startswith("[") and "displayName" in rule.text for rule in rules)


def test_a_code_outside_its_value_set_fails(cisis_kit: CisisKit) -> None:
    xml = build_document(make_header(), make_trod_result()).xml.replace(b"10828004", b"99999999")
    rules = cisis_kit.failed_asserts(VOLETS[DocumentKind.TROD_RESULT], xml)
    assert [rule_id(rule.text) for rule in rules] == ["dansJeuDeValeurs"]
    assert "JDV_ResultatDepistage_CISIS" in rules[0].text


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("eDISP-MED_2024.01.xml", DocumentKind.DISPENSING_SUMMARY),
        ("VAC-NOTE_2023.01.xml", DocumentKind.VACCINATION_NOTE),
        ("BIO-TROD_2024.01_Angine.xml", DocumentKind.TROD_RESULT),
        ("BIO-TROD_2024.01_Cystite.xml", DocumentKind.TROD_RESULT),
    ],
)
def test_official_examples_pass_the_kit_and_read_back(
    cisis_kit: CisisKit, name: str, kind: DocumentKind
) -> None:
    xml = (cisis_kit.kit_dir / "examples" / name).read_bytes()
    assert cisis_kit.failed_asserts(VOLETS[kind], xml) == []  # the runner agrees with the ANS
    facts = read_document(xml)
    assert facts.kind is kind
    root = etree.fromstring(xml)
    assert facts.document_id == root.find("h:id", H).get("root")  # type: ignore[union-attr]
    assert facts.ins.matricule == root.find(".//h:patientRole/h:id", H).get("extension")  # type: ignore[union-attr]
    assert facts.author.national_id.startswith("8")  # a person (idNat_PS), not the DP device
    assert facts.service_start <= facts.service_stop
    assert f"<h1>{facts.title}</h1>" in render_html(xml)  # the counter can open it too


def test_checker_refuses_a_broken_document_with_the_rules_in_french(cisis_kit: CisisKit) -> None:
    checker = DocumentChecker(cisis_kit)
    xml = build_document(make_header(), make_vaccination_note()).xml
    broken = xml.replace(b'root="1.2.250.1.213.1.1.1.46"', b'root="1.2.3.4"')
    assert checker.check(DocumentKind.VACCINATION_NOTE, xml).ok
    with pytest.raises(CdaNonConformantError) as refused:
        checker.require(DocumentKind.VACCINATION_NOTE, broken)
    problem = refused.value.problem()
    assert problem["status"] == 422 and problem["volet"] == "VAC-NOTE_2023.01"
    assert any(
        "Erreur de conformité" in rule and "1.2.250.1.213.1.1.1.46" in rule
        for rule in problem["failed_rules"]
    )


def test_compiled_schematrons_go_to_the_cache_not_the_kit(
    cisis_kit: CisisKit, tmp_path: Path
) -> None:
    kit = CisisKit(cisis_kit.kit_dir, tmp_path)
    xml = build_document(make_header(), make_dispensing_summary()).xml
    assert kit.failed_asserts(VOLETS[DocumentKind.DISPENSING_SUMMARY], xml) == []
    compiled = list(tmp_path.rglob("*.xsl"))
    assert [p.name for p in compiled] == ["CI-SIS_eDISP-MED_2024.01.xsl"]
    assert (compiled[0].parent.parent / "jeuxDeValeurs").is_dir()  # the layout is kept
    assert not list(cisis_kit.kit_dir.rglob("CI-SIS_eDISP-MED_2024.01.xsl"))


def test_a_configured_but_unusable_kit_blocks_sending(tmp_path: Path) -> None:
    checker = DocumentChecker.configured(tmp_path / "nowhere", tmp_path / "cache")
    assert "inutilisable" in checker.describe()
    xml = build_document(make_header(), make_dispensing_summary()).xml
    with pytest.raises(CisisKitUnusable):
        checker.require(DocumentKind.DISPENSING_SUMMARY, xml)
    # without a kit: lgo's schema only, the document passes
    DocumentChecker.configured(None, tmp_path).require(DocumentKind.DISPENSING_SUMMARY, xml)


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("[Entete_VAC-NOTE] Erreur de conformité : …", "Entete_VAC-NOTE"),
        (
            "[1] [S_dispensationMedicaments.sch] Erreur de conformité CI-SIS : …",
            "S_dispensationMedicaments",
        ),
        ("[[E_FR-Resultat-examens] Erreur de conformité", "E_FR-Resultat-examens"),
        (
            "[dansJeuDeValeurs] L'élément … [99999999:positif:2.16.840.1.113883.6.96] doit …",
            "dansJeuDeValeurs",
        ),
        ("Schéma CDA, ligne 2: SCHEMAV_ELEMENT_CONTENT", "schéma CDA"),
        ("texte sans identifiant [positif]", "règle"),
    ],
)
def test_rule_ids_never_carry_the_rule_text(message: str, expected: str) -> None:
    assert rule_id(message) == expected


def test_warm_compiles_every_volet_into_the_cache(cisis_kit: CisisKit, tmp_path: Path) -> None:
    kit = CisisKit(cisis_kit.kit_dir, tmp_path)
    kit.warm()
    compiled = sorted(p.name for p in tmp_path.rglob("*.xsl"))
    assert compiled == sorted(v.replace(".sch", ".xsl") for v in VOLETS.values())
