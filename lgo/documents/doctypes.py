"""The catalogue of document types: the CI-SIS volet each one follows, its template ids, and the
codes of its CDA header and XDS metadata.

Adding a document type = one :class:`DocumentType` here, one body dataclass in ``models.py``, one
section builder registered in ``sections.py`` and its volet schematron in ``conformance.py``.

Sources: the ANS CI-SIS volets and their value sets (JDV_J02 facility type, JDV_J04 practice
setting, JDV_J07 type code, JDV_J08 confidentiality, JDV_J01 author specialty), as carried by the
CI-SIS conformance kit; the format codes from JDV_J10/J60 (TRE_A11 IHE format codes and TRE_A06
CI-SIS format codes). The class code (JDV_J06, deduced from the type code by the ANS table
ASS_X04) is not in the kit: see ``docs/documents.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from lgo.documents.models import (
    DocumentKind,
    TrodAnalyte,
    TrodKind,
    TrodOutcome,
    VaccinationAct,
    VaccinationRoute,
    VaccinationSite,
)

LOINC: Final = "2.16.840.1.113883.6.1"
SNOMED: Final = "2.16.840.1.113883.6.96"
CIM10: Final = "2.16.840.1.113883.6.3"
ATC: Final = "2.16.840.1.113883.6.73"
EDQM: Final = "0.4.0.127.0.16.1.1.2.1"
CIS: Final = "1.2.250.1.213.2.3.1"
CIP: Final = "1.2.250.1.213.2.3.2"
ACT_CODE: Final = "2.16.840.1.113883.5.4"
IDNAT_PS: Final = "1.2.250.1.71.4.2.1"
IDNAT_STRUCT: Final = "1.2.250.1.71.4.2.2"
IDNAT_STRUCT_FINESS_PREFIX: Final = "1"
AUTHOR_SPECIALTY: Final = "1.2.250.1.213.1.1.4.5"  # TRE_G15/R38 via JDV_J01-XdsAuthorSpecialty
PRACTICE_SETTING: Final = "1.2.250.1.213.1.1.4.9"  # JDV_J04-XdsPracticeSettingCode
FACILITY_TYPE: Final = "1.2.250.1.71.4.2.4"  # JDV_J02-XdsHealthcareFacilityTypeCode
CONFIDENTIALITY: Final = "2.16.840.1.113883.5.25"
ADMIN_GENDER: Final = "2.16.840.1.113883.5.1"
UDI_GS1: Final = "2.51.1.1"
IHE_FORMAT_SYSTEM: Final = "1.3.6.1.4.1.19376.1.2.3"  # TRE_A11-IheFormatCode
CISIS_FORMAT_SYSTEM: Final = "1.2.250.1.213.1.1.4.2.282"  # TRE_A06-FormatCodeComplementaire
CLASS_SYSTEM: Final = "1.2.250.1.213.1.1.4.1"  # TRE_A03-ClasseDocument

HL7_FRANCE_TEMPLATE: Final = "2.16.840.1.113883.2.8.2.1"
CISIS_HEADER_TEMPLATE: Final = "1.2.250.1.213.1.1.1.1"
IHE_PCC_MEDICAL_DOCUMENT: Final = "1.3.6.1.4.1.19376.1.5.3.1.1.1"


@dataclass(frozen=True)
class Code:
    code: str
    system: str
    display: str


@dataclass(frozen=True)
class DocumentType:
    kind: DocumentKind
    volet: str  # CI-SIS volet and version, e.g. "eDISP-MED 2024.01"
    title: str  # French: shown in the DMP and on the counter
    type_code: Code  # CDA ClinicalDocument/code and XDS typeCode (JDV_J07)
    # header templateIds: (root, extension or None), in the order of the volet's example
    template_ids: tuple[tuple[str, str | None], ...]
    practice_setting: Code  # XDS practiceSettingCode (JDV_J04)
    format_code: Code  # XDS formatCode (JDV_J10)
    class_code: Code  # XDS classCode (JDV_J06)


PHARMACY_FACILITY: Final = Code("SA33", FACILITY_TYPE, "Pharmacie d'officine")
AMBULATORY: Final = Code("AMBULATOIRE", PRACTICE_SETTING, "Ambulatoire")
SCREENING: Final = Code("DEPISTAGE", PRACTICE_SETTING, "Dépistage")
NORMAL_CONFIDENTIALITY: Final = Code("N", CONFIDENTIALITY, "Normal")
AMBULATORY_ENCOUNTER: Final = Code("AMB", ACT_CODE, "Ambulatoire (hors établissement)")
PHARMACIST: Final = Code("G15_21", AUTHOR_SPECIALTY, "Pharmacien")
REPORT_CLASS: Final = Code("10", CLASS_SYSTEM, "Compte rendu")
GENDERS: Final = {"F": "Féminin", "M": "Masculin"}
# JDV_J01 labels of the professions that may author a pharmacy document (TRE_G15 codes)
PROFESSIONS: Final = {"21": "Pharmacien", "10": "Médecin", "60": "Infirmier", "50": "Sage-Femme"}

DOCUMENT_TYPES: Final[dict[DocumentKind, DocumentType]] = {
    DocumentKind.DISPENSING_SUMMARY: DocumentType(
        kind=DocumentKind.DISPENSING_SUMMARY,
        volet="eDISP-MED 2024.01",
        title="Dispensation médicamenteuse",
        type_code=Code("60593-1", LOINC, "Dispensation médicamenteuse"),
        template_ids=(
            (HL7_FRANCE_TEMPLATE, None),
            (CISIS_HEADER_TEMPLATE, None),
            (IHE_PCC_MEDICAL_DOCUMENT, None),
            ("1.3.6.1.4.1.19376.1.9.1.1.3", None),  # IHE Pharm DIS
            ("1.2.250.1.213.1.1.1.54", "2024.01"),
        ),
        practice_setting=AMBULATORY,
        format_code=Code(
            "urn:ihe:pharm:dis:2010", IHE_FORMAT_SYSTEM, "Dispensation médicamenteuse"
        ),
        class_code=REPORT_CLASS,
    ),
    DocumentKind.VACCINATION_NOTE: DocumentType(
        kind=DocumentKind.VACCINATION_NOTE,
        volet="VAC-NOTE 2023.01",
        title="Note de vaccination",
        type_code=Code("87273-9", LOINC, "Note de vaccination"),
        template_ids=(
            (HL7_FRANCE_TEMPLATE, None),
            (CISIS_HEADER_TEMPLATE, None),
            ("1.3.6.1.4.1.19376.1.5.3.1.1.18.1.2", None),  # IHE PCC Immunization Content
            ("1.2.250.1.213.1.1.1.46", "2023.01"),
        ),
        practice_setting=AMBULATORY,
        format_code=Code(
            "urn:asip:ci-sis:vac-note:2021", CISIS_FORMAT_SYSTEM, "Note de vaccination"
        ),
        class_code=REPORT_CLASS,
    ),
    DocumentKind.TROD_RESULT: DocumentType(
        kind=DocumentKind.TROD_RESULT,
        volet="BIO-TROD 2024.01",
        title="Test rapide d'orientation diagnostique",
        type_code=Code("96173-0", LOINC, "Test rapide d'orientation diagnostique"),
        template_ids=(
            (HL7_FRANCE_TEMPLATE, None),
            (IHE_PCC_MEDICAL_DOCUMENT, None),
            (CISIS_HEADER_TEMPLATE, None),
            ("1.2.250.1.213.1.1.1.59", "2024.01"),
        ),
        practice_setting=SCREENING,
        format_code=Code(
            "urn:ans:ci-sis:trod:2024",
            CISIS_FORMAT_SYSTEM,
            "Test rapide d'orientation diagnostique",
        ),
        class_code=REPORT_CLASS,
    ),
}

# --- vaccination (VAC-NOTE) value sets --------------------------------------------------------

VACCINATION_ACTS: Final = {
    VaccinationAct.FIRST_SERIES: Code("INITIMMUNIZ", ACT_CODE, "1ère série vaccinante"),
    VaccinationAct.BOOSTER: Code("BOOSTER", ACT_CODE, "Rappel de vaccin"),
    VaccinationAct.UNSPECIFIED: Code("IMMUNIZ", ACT_CODE, "Vaccination sans autre précision"),
}
VACCINATION_ROUTES: Final = {
    VaccinationRoute.INTRAMUSCULAR: Code("20035000", EDQM, "Voie intramusculaire"),
    VaccinationRoute.INTRADERMAL: Code("20030000", EDQM, "Voie intradermique"),
    VaccinationRoute.INHALED: Code("20020000", EDQM, "Voie inhalée"),
    VaccinationRoute.ORAL: Code("20053000", EDQM, "Voie orale"),
    VaccinationRoute.SUBCUTANEOUS: Code("20066000", EDQM, "Voie sous-cutanée"),
}
VACCINATION_SITES: Final = {
    VaccinationSite.RIGHT_FOREARM: Code("64262003", SNOMED, "avant-bras droit"),
    VaccinationSite.LEFT_FOREARM: Code("66480008", SNOMED, "avant-bras gauche"),
    VaccinationSite.RIGHT_DELTOID: Code("16217661000119109", SNOMED, "deltoïde droit"),
    VaccinationSite.LEFT_DELTOID: Code("16217701000119102", SNOMED, "deltoïde gauche"),
    VaccinationSite.RIGHT_SHOULDER: Code("91774008", SNOMED, "épaule droite"),
    VaccinationSite.LEFT_SHOULDER: Code("91775009", SNOMED, "épaule gauche"),
    VaccinationSite.RIGHT_THIGH: Code("11207009", SNOMED, "cuisse droite"),
    VaccinationSite.LEFT_THIGH: Code("61396006", SNOMED, "cuisse gauche"),
    VaccinationSite.RIGHT_BUTTOCK: Code("723980000", SNOMED, "fesse droite"),
    VaccinationSite.LEFT_BUTTOCK: Code("723979003", SNOMED, "fesse gauche"),
}
IMMUNIZATIONS_SECTION: Final = Code("11369-6", LOINC, "Historique des vaccinations")
VACCINATION_RANK: Final = Code("30973-2", LOINC, "Rang de la vaccination")
COMMENT: Final = Code("48767-8", LOINC, "Commentaire")

# --- dispensing (eDISP-MED) ------------------------------------------------------------------

DISPENSED_SECTION: Final = Code("60590-7", LOINC, "Médicaments délivrés")
BOX: Final = "30009000"  # EDQM packaging "Boîte": the unit of a dispensed quantity


# --- rapid tests (BIO-TROD) ------------------------------------------------------------------


@dataclass(frozen=True)
class TrodSpec:
    disease: Code  # documentationOf/serviceEvent/code (CIM-10)
    section: Code  # laboratory specialty section (LOINC)
    battery: Code  # FR-Resultats-examens-de-biologie-medicale act code (LOINC)
    label: str  # French, for the title and the narrative


TROD_SPECS: Final[dict[TrodKind, TrodSpec]] = {
    TrodKind.ANGINE: TrodSpec(
        Code("J02.0", CIM10, "Pharyngite à streptocoques"),
        Code("18725-2", LOINC, "Microbiologie"),
        Code("92894-5", LOINC, "Sérologie bactérienne"),
        "TROD Angine",
    ),
    TrodKind.CYSTITE: TrodSpec(
        Code("N30", CIM10, "Cystite"),
        Code("18719-5", LOINC, "Biochimie"),
        Code("18729-4", LOINC, "Examens urinaires - cristallurie"),
        "TROD Cystite",
    ),
    TrodKind.COVID_19: TrodSpec(
        Code("U07.1", CIM10, "COVID-19, virus identifié"),
        Code("18725-2", LOINC, "Microbiologie"),
        Code("18725-2", LOINC, "Microbiologie"),
        "TROD COVID-19",
    ),
    TrodKind.GRIPPE: TrodSpec(
        Code("J11", CIM10, "Grippe, virus non identifié"),
        Code("18725-2", LOINC, "Microbiologie"),
        Code("18725-2", LOINC, "Microbiologie"),
        "TROD Grippe",
    ),
}
_RAPID: Final = "Qualitatif ; Immunoanalyse rapide"
_STRIP: Final = "Urine ; Qualitatif ; Bandelette réactive"
_UPPER_AIRWAYS: Final = "[Présence/Seuil] Voies respiratoires supérieures"

# LOINC code of each reading (as in the ANS examples) and its French label for the narrative
TROD_ANALYTE_CODES: Final[dict[TrodAnalyte, tuple[Code, str]]] = {
    TrodAnalyte.STREP_A: (
        Code("78012-2", LOINC, f"Streptococcus pyogenes Ag [Présence/Seuil] Gorge ; {_RAPID}"),
        "Dépistage Angine (S. pyogenes)",
    ),
    TrodAnalyte.LEUKOCYTES: (
        Code("5799-2", LOINC, f"Leucocyte estérase [Présence/Seuil] {_STRIP}"),
        "Recherche de leucocytes estérases",
    ),
    TrodAnalyte.NITRITES: (
        Code("5802-4", LOINC, f"Nitrites [Présence/Seuil] {_STRIP}"),
        "Recherche de nitrites urinaires",
    ),
    TrodAnalyte.SARS_COV_2: (
        Code("94558-4", LOINC, f"SARS-CoV-2 Ag [Présence/Seuil] Voies respiratoires ; {_RAPID}"),
        "Dépistage COVID-19 (antigène SARS-CoV-2)",
    ),
    TrodAnalyte.INFLUENZA_A: (
        Code("80382-5", LOINC, f"Influenza virus A Ag {_UPPER_AIRWAYS} ; {_RAPID}"),
        "Dépistage grippe A",
    ),
    TrodAnalyte.INFLUENZA_B: (
        Code("80383-3", LOINC, f"Influenza virus B Ag {_UPPER_AIRWAYS} ; {_RAPID}"),
        "Dépistage grippe B",
    ),
}
# JDV_ResultatDepistage_CISIS (1.2.250.1.213.1.1.5.761)
TROD_OUTCOMES: Final = {
    TrodOutcome.POSITIVE: Code("10828004", SNOMED, "positif"),
    TrodOutcome.NEGATIVE: Code("260385009", SNOMED, "négatif"),
    TrodOutcome.INDETERMINATE: Code("373068000", SNOMED, "indéterminé(e)"),
    TrodOutcome.UNSATISFACTORY: Code(
        "125154007", SNOMED, "échantillon insatisfaisant pour l'évaluation"
    ),
}
