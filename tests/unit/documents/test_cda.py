"""CDA R2 builder: every produced document validates; the header carries what the DMP needs."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime

import pytest
from lxml import etree

from lgo.documents.cda import NS, build_document, read_document
from lgo.documents.errors import CdaInvalidError, DocumentInputError, InsNotQualifiedError
from lgo.documents.models import (
    DocumentBody,
    TrodAnalyte,
    TrodKind,
    TrodOutcome,
    TrodReading,
    VaccinationNote,
)
from lgo.documents.validate import schema_errors, validate_cda
from lgo.domain.identity import IdentityStatus
from tests.fixtures.documents import (
    FICTIVE_NIR,
    FICTIVE_RPPS,
    make_dispensing_summary,
    make_header,
    make_patient,
    make_trod_result,
    make_vaccination_note,
)

BODIES = [make_vaccination_note(), make_dispensing_summary(), make_trod_result()]

H = {"h": NS}


def _root(xml: bytes) -> etree._Element:
    return etree.fromstring(xml)


@pytest.mark.parametrize("body", BODIES, ids=lambda b: b.kind.value)
def test_every_document_type_validates_against_the_schema(body: DocumentBody) -> None:
    document = build_document(make_header(), body)
    assert schema_errors(document.xml) == []


def test_header_carries_ins_author_custodian_and_dates() -> None:
    header = make_header()
    root = _root(build_document(header, make_vaccination_note()).xml)
    patient_id = root.find("h:recordTarget/h:patientRole/h:id", H)
    assert patient_id is not None
    assert patient_id.get("extension") == FICTIVE_NIR
    assert patient_id.get("root") == "1.2.250.1.213.1.4.10"
    author_id = root.find("h:author/h:assignedAuthor/h:id", H)
    assert author_id is not None and author_id.get("extension") == "8" + FICTIVE_RPPS
    custodian = root.find(
        "h:custodian/h:assignedCustodian/h:representedCustodianOrganization/h:id", H
    )
    assert custodian is not None and custodian.get("extension") == "1750000000"
    assert root.find("h:effectiveTime", H).get("value") == "20260315103000+0100"  # type: ignore[union-attr]
    assert root.find("h:id", H).get("root") == header.document_id  # type: ignore[union-attr]
    assert root.find("h:code", H).get("code") == "87273-9"  # type: ignore[union-attr]


def test_vaccination_entry_is_structured() -> None:
    root = _root(build_document(make_header(), make_vaccination_note()).xml)
    act = root.find(".//h:entry/h:substanceAdministration", H)
    assert act is not None
    material = act.find("h:consumable//h:manufacturedMaterial", H)
    assert material is not None
    code = material.find("h:code", H)
    assert code is not None
    # VAC-NOTE: the CIS code, with the ATC class and the CIP presentation as translations
    assert (code.get("code"), code.get("codeSystem")) == ("60000001", "1.2.250.1.213.2.3.1")
    translations = {t.get("codeSystem"): t.get("code") for t in code.findall("h:translation", H)}
    assert translations == {
        "2.16.840.1.113883.6.73": "J07BB02",
        "1.2.250.1.213.2.3.2": "3400930000001",
    }
    assert material.findtext("h:lotNumberText", namespaces=H) == "LOT-42A"
    assert act.find("h:effectiveTime", H).get("value") == "20260315"  # type: ignore[union-attr]
    assert act.find("h:code", H).get("code") == "BOOSTER"  # type: ignore[union-attr]
    assert act.find("h:routeCode", H).get("code") == "20035000"  # type: ignore[union-attr]
    assert act.find("h:approachSiteCode", H).get("code") == "16217701000119102"  # type: ignore[union-attr]
    rank = act.find("h:entryRelationship/h:observation/h:value", H)
    assert rank is not None and rank.get("value") == "1"


def test_vaccination_note_needs_cis_and_atc_and_holds_one_vaccination() -> None:
    vaccination = make_vaccination_note().vaccinations[0]
    with pytest.raises(DocumentInputError, match="CIS"):
        build_document(make_header(), VaccinationNote((replace(vaccination, cis_code=""),)))
    with pytest.raises(DocumentInputError, match="une seule"):
        build_document(make_header(), VaccinationNote((vaccination, vaccination)))


def test_trod_document_codes_the_test_and_each_reading() -> None:
    document = build_document(make_header(), make_trod_result(TrodKind.CYSTITE))
    root = _root(document.xml)
    assert document.title == "Test rapide d'orientation diagnostique : TROD Cystite"
    event = root.find("h:documentationOf/h:serviceEvent", H)
    assert event is not None and event.find("h:code", H).get("code") == "N30"  # type: ignore[union-attr]
    practice = event.find(".//h:representedOrganization/h:standardIndustryClassCode", H)
    assert practice is not None and practice.get("code") == "DEPISTAGE"
    observations = root.findall(".//h:entry/h:act/h:entryRelationship/h:observation", H)
    assert [o.find("h:code", H).get("code") for o in observations] == ["5799-2", "5802-4"]  # type: ignore[union-attr]
    assert {o.find("h:value", H).get("code") for o in observations} == {"10828004"}  # type: ignore[union-attr]
    udi = root.find(".//h:participant[@typeCode='DEV']/h:participantRole/h:id", H)
    assert udi is not None and udi.get("root") == "2.51.1.1"


def test_trod_readings_must_match_the_test() -> None:
    angine = make_trod_result(TrodKind.ANGINE)
    wrong = replace(angine, readings=(TrodReading(TrodAnalyte.NITRITES, TrodOutcome.POSITIVE),))
    with pytest.raises(DocumentInputError):
        build_document(make_header(), wrong)
    with pytest.raises(DocumentInputError):
        build_document(make_header(), replace(angine, readings=angine.readings * 2))


def test_dispensing_summary_has_one_supply_per_item() -> None:
    document = build_document(make_header(), make_dispensing_summary())
    root = _root(document.xml)
    supplies = root.findall(".//h:entry/h:supply", H)
    assert [s.find("h:quantity", H).get("value") for s in supplies] == ["2", "1"]  # type: ignore[union-attr]
    assert document.service_start == make_dispensing_summary().dispensed_at


@pytest.mark.parametrize("status", [IdentityStatus.PROV, IdentityStatus.RECUP, IdentityStatus.VALI])
def test_unqualified_identity_is_refused(status: IdentityStatus) -> None:
    with pytest.raises(InsNotQualifiedError):
        build_document(make_header(make_patient(status)), make_vaccination_note())


def test_qualified_identity_on_work_list_is_refused() -> None:
    patient = make_patient()
    on_list = type(patient)(patient.ins, patient.traits, patient.status, on_work_list=True)
    with pytest.raises(InsNotQualifiedError):
        build_document(make_header(on_list), make_vaccination_note())


def test_empty_bodies_and_naive_dates_are_refused() -> None:
    with pytest.raises(DocumentInputError):
        build_document(make_header(), VaccinationNote(vaccinations=()))
    with pytest.raises(DocumentInputError):
        build_document(make_header(effective_time=datetime(2026, 3, 15)), make_vaccination_note())


def test_text_is_escaped_not_interpreted() -> None:
    note = make_vaccination_note()
    hostile = replace(note.vaccinations[0], product_label="<script>alert(1)</script>")
    xml = build_document(make_header(), VaccinationNote((hostile,))).xml
    assert b"<script>" not in xml
    assert b"&lt;script&gt;" in xml


def test_schema_rejects_what_the_normative_schema_rejects() -> None:
    xml = build_document(make_header(), make_vaccination_note()).xml
    root = _root(xml)
    # recordTarget is mandatory (1..*) in POCD_MT000040.ClinicalDocument
    root.remove(root.find("h:recordTarget", H))  # type: ignore[arg-type]
    with pytest.raises(CdaInvalidError):
        validate_cda(etree.tostring(root))
    # wrong typeId root
    root = _root(xml)
    root.find("h:typeId", H).set("root", "1.2.3")  # type: ignore[union-attr]
    assert schema_errors(etree.tostring(root))
    # children out of the normative order (title after effectiveTime)
    root = _root(xml)
    title = root.find("h:title", H)
    root.remove(title)  # type: ignore[arg-type]
    root.find("h:effectiveTime", H).addnext(title)  # type: ignore[union-attr,arg-type]
    assert schema_errors(etree.tostring(root))
    # an unknown element in the narrative block
    root = _root(xml)
    text = root.find(".//h:section/h:text", H)
    etree.SubElement(text, f"{{{NS}}}script").text = "x"  # type: ignore[arg-type]
    assert schema_errors(etree.tostring(root))


def test_schema_errors_never_echo_patient_values() -> None:
    root = _root(build_document(make_header(), make_vaccination_note()).xml)
    birth = root.find(".//h:recordTarget//h:birthTime", H)
    assert birth is not None
    birth.set("value", "31-12-1999 TESTNOM")
    with pytest.raises(CdaInvalidError) as invalid:
        validate_cda(etree.tostring(root))
    problem = json.dumps(invalid.value.problem())
    assert "SCHEMAV_CVC_PATTERN_VALID" in problem  # the error type and line stay
    for value in ("31-12-1999", "TESTNOM", "birthTime"):
        assert value not in problem


def test_reading_a_document_parses_it_once_with_the_hardened_parser(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    document = build_document(make_header(), make_vaccination_note())
    made: list[dict[str, object]] = []
    real_parser = etree.XMLParser

    def recording_parser(**options: object) -> etree.XMLParser:
        made.append(options)
        return real_parser(**options)  # type: ignore[arg-type]

    monkeypatch.setattr(etree, "XMLParser", recording_parser)
    facts = read_document(document.xml)
    assert facts.document_id == document.document_id
    assert len(made) == 1 and made[0]["load_dtd"] is False and made[0]["huge_tree"] is False


def test_lunar_birth_date_keeps_known_precision() -> None:
    patient = make_patient()
    lunar = type(patient.traits)(
        patient.traits.birth_name,
        patient.traits.given_names,
        patient.traits.sex,
        type(patient.traits.birth_date)("19850000"),
    )
    record = type(patient)(patient.ins, lunar, patient.status)
    root = _root(build_document(make_header(record), make_vaccination_note()).xml)
    assert root.find(".//h:patient/h:birthTime", H).get("value") == "1985"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("body", "volet_template", "code"),
    [
        (make_dispensing_summary(), ("1.2.250.1.213.1.1.1.54", "2024.01"), "60593-1"),
        (make_vaccination_note(), ("1.2.250.1.213.1.1.1.46", "2023.01"), "87273-9"),
        (make_trod_result(), ("1.2.250.1.213.1.1.1.59", "2024.01"), "96173-0"),
    ],
    ids=["dispensing", "vaccination", "trod"],
)
def test_header_declares_the_cisis_volet_and_the_author_profession(
    body: DocumentBody, volet_template: tuple[str, str], code: str
) -> None:
    """What the volets check first (the documents of 61a262e failed here): the CI-SIS header
    templateIds with the volet's version, the document code, the profession with its label."""
    root = _root(build_document(make_header(), body).xml)
    templates = [(t.get("root"), t.get("extension")) for t in root.findall("h:templateId", H)]
    assert ("2.16.840.1.113883.2.8.2.1", None) in templates
    assert ("1.2.250.1.213.1.1.1.1", None) in templates
    assert volet_template in templates
    assert root.find("h:code", H).get("code") == code  # type: ignore[union-attr]
    profession = root.find("h:author/h:assignedAuthor/h:code", H)
    assert profession is not None
    assert (profession.get("code"), profession.get("displayName")) == ("G15_21", "Pharmacien")
    facility = root.find(
        "h:componentOf/h:encompassingEncounter/h:location/h:healthCareFacility/h:code", H
    )
    assert facility is not None and facility.get("code") == "SA33"


def test_dispensed_quantities_take_the_french_plural() -> None:
    from decimal import Decimal

    from lgo.documents.sections import quantity_with_unit

    assert quantity_with_unit(Decimal("1"), "boîte") == "1 boîte"
    assert quantity_with_unit(Decimal("2"), "boîte") == "2 boîtes"
    assert quantity_with_unit(Decimal("1.5"), "comprimé") == "1.5 comprimé"
    assert quantity_with_unit(Decimal("30"), "comprimé pelliculé") == "30 comprimé pelliculé"
    assert quantity_with_unit(Decimal("3"), "unités") == "3 unités"
