"""What a shared document is made of: patient, author, organisation, and each type's body data.

Plain frozen dataclasses, no I/O. ``repr`` of anything holding identity or health data is masked so
a stray log line cannot leak it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from lgo.domain.identity import IdentityStatus, Ins, Traits


def new_document_oid() -> str:
    """A globally unique OID for a document (``2.25.<UUID as integer>``, ITU-T X.667).

    XDS ``uniqueId`` must be an OID of at most 64 characters: this one has at most 44.
    """
    return f"2.25.{uuid.uuid4().int}"


class DocumentKind(StrEnum):
    VACCINATION_NOTE = "vaccination-note"  # CI-SIS VAC-NOTE 2023.01
    DISPENSING_SUMMARY = "dispensing-summary"  # CI-SIS eDISP-MED 2024.01 (IHE Pharm DIS)
    TROD_RESULT = "trod-result"  # CI-SIS BIO-TROD 2024.01


@dataclass(frozen=True)
class PatientRecord:
    """The patient as the pharmacy knows them: INS, INS traits, and the identity status (RNIV)."""

    ins: Ins
    traits: Traits
    status: IdentityStatus
    on_work_list: bool = False
    used_given_name: str | None = None

    def __repr__(self) -> str:
        return f"PatientRecord(status={self.status.value}, <hidden>)"


@dataclass(frozen=True)
class Author:
    """The pharmacist who produces the document (from the CPS / e-CPS session)."""

    national_id: str  # idNat_PS: 8 + RPPS
    family_name: str
    given_name: str
    profession_code: str = "21"  # TRE_G15 pharmacien
    profession_label: str = "Pharmacien"


@dataclass(frozen=True)
class Organisation:
    """The pharmacy: author's structure and custodian of the document."""

    finess: str
    name: str
    address: str = ""


@dataclass(frozen=True)
class DocumentHeader:
    """Everything the CDA header needs besides the type."""

    patient: PatientRecord
    author: Author
    organisation: Organisation
    effective_time: datetime  # timezone-aware; the moment the document is produced
    document_id: str = field(default_factory=new_document_oid)
    set_id: str | None = None  # defaults to document_id (first version)
    version: int = 1


class VaccinationAct(StrEnum):
    """Type of vaccination act (CI-SIS JDV_HL7_ActSubstanceAdministrationImmunizationCode)."""

    FIRST_SERIES = "primo-vaccination"  # INITIMMUNIZ
    BOOSTER = "rappel"  # BOOSTER
    UNSPECIFIED = "vaccination"  # IMMUNIZ


class VaccinationRoute(StrEnum):
    """Route of administration (CI-SIS JDV_ImmunizationRouteCodes, EDQM codes)."""

    INTRAMUSCULAR = "intramusculaire"
    SUBCUTANEOUS = "sous-cutanee"
    INTRADERMAL = "intradermique"
    ORAL = "orale"
    INHALED = "inhalee"


class VaccinationSite(StrEnum):
    """Site of administration (CI-SIS JDV_ImmunizationApproachSiteCode, SNOMED CT codes)."""

    LEFT_DELTOID = "deltoide-gauche"
    RIGHT_DELTOID = "deltoide-droit"
    LEFT_SHOULDER = "epaule-gauche"
    RIGHT_SHOULDER = "epaule-droite"
    LEFT_FOREARM = "avant-bras-gauche"
    RIGHT_FOREARM = "avant-bras-droit"
    LEFT_THIGH = "cuisse-gauche"
    RIGHT_THIGH = "cuisse-droite"
    LEFT_BUTTOCK = "fesse-gauche"
    RIGHT_BUTTOCK = "fesse-droite"


@dataclass(frozen=True)
class Vaccination:
    """One vaccine administered at the pharmacy.

    VAC-NOTE 2023.01 requires the CIS code and the ATC class of the vaccine and its lot number; the
    builder refuses a vaccination without them (``DocumentInputError``). ``performer`` is who gave
    the injection (defaults to the document's author, the pharmacist of the session).
    """

    administered_at: datetime
    product_code: str  # CIP 13 of the vaccine (from its GS1 DataMatrix)
    product_label: str
    lot_number: str
    dose_label: str = ""  # free text, e.g. "Rappel", "1re dose"
    cis_code: str = ""  # code CIS (8 digits) of the vaccine: mandatory in VAC-NOTE
    atc_code: str = ""  # ATC class, e.g. J07BB02 (grippe): mandatory in VAC-NOTE
    atc_label: str = ""  # e.g. "vaccin de la grippe, antigène purifié"
    expiry: date | None = None
    dose_number: int | None = None  # rang de la vaccination (1, 2 …)
    act: VaccinationAct = VaccinationAct.UNSPECIFIED
    route: VaccinationRoute = VaccinationRoute.INTRAMUSCULAR
    site: VaccinationSite | None = None
    comment: str = ""
    performer: Author | None = None

    def __repr__(self) -> str:
        return "Vaccination(<hidden>)"


@dataclass(frozen=True)
class VaccinationNote:
    """A VAC-NOTE document: exactly one vaccination per note (the volet's rule)."""

    vaccinations: tuple[Vaccination, ...]
    kind: DocumentKind = DocumentKind.VACCINATION_NOTE

    def __repr__(self) -> str:
        return f"VaccinationNote({len(self.vaccinations)} item(s))"


class TrodKind(StrEnum):
    """The rapid tests (TROD) of the BIO-TROD 2024.01 volet."""

    ANGINE = "angine"  # streptocoque A (S. pyogenes), prélèvement de gorge
    CYSTITE = "cystite"  # bandelette urinaire: leucocytes et nitrites
    COVID_19 = "covid-19"  # antigène SARS-CoV-2
    GRIPPE = "grippe"  # antigènes grippe A et grippe B


class TrodAnalyte(StrEnum):
    """What one reading of a test looks for."""

    STREP_A = "streptocoque-a"
    LEUKOCYTES = "leucocytes"
    NITRITES = "nitrites"
    SARS_COV_2 = "sars-cov-2"
    INFLUENZA_A = "grippe-a"
    INFLUENZA_B = "grippe-b"


# The readings each test gives (one result per analyte).
TROD_ANALYTES: dict[TrodKind, tuple[TrodAnalyte, ...]] = {
    TrodKind.ANGINE: (TrodAnalyte.STREP_A,),
    TrodKind.CYSTITE: (TrodAnalyte.LEUKOCYTES, TrodAnalyte.NITRITES),
    TrodKind.COVID_19: (TrodAnalyte.SARS_COV_2,),
    TrodKind.GRIPPE: (TrodAnalyte.INFLUENZA_A, TrodAnalyte.INFLUENZA_B),
}


class TrodOutcome(StrEnum):
    """Result of one reading (CI-SIS JDV_ResultatDepistage, SNOMED CT codes)."""

    POSITIVE = "positif"
    NEGATIVE = "negatif"
    INDETERMINATE = "indetermine"
    UNSATISFACTORY = "echantillon-insatisfaisant"


@dataclass(frozen=True)
class TrodReading:
    analyte: TrodAnalyte
    outcome: TrodOutcome


@dataclass(frozen=True)
class TrodKit:
    """The test device used: maker, reference, lot, expiry; its GS1 UDI when scanned."""

    manufacturer: str
    reference: str
    lot_number: str
    expiry: date | None = None
    udi: str = ""  # GS1 element string, e.g. "(01)03612345678903(17)251231(10)B987654"


@dataclass(frozen=True)
class TrodResult:
    """A rapid test done at the counter, documented as BIO-TROD 2024.01.

    ``readings`` holds one result per analyte of the test (see :data:`TROD_ANALYTES`);
    ``performer`` is who did the test (defaults to the document's author).
    """

    test: TrodKind
    performed_at: datetime
    readings: tuple[TrodReading, ...]
    kit: TrodKit
    comment: str = ""
    performer: Author | None = None
    kind: DocumentKind = DocumentKind.TROD_RESULT

    @property
    def positive(self) -> bool:
        return any(r.outcome is TrodOutcome.POSITIVE for r in self.readings)

    def __repr__(self) -> str:
        return f"TrodResult({self.test.value}, {len(self.readings)} reading(s), <hidden>)"


@dataclass(frozen=True)
class DispensedItem:
    """One product handed out in a dispensation."""

    product_code: str  # CIP 13
    product_label: str
    quantity: Decimal
    unit: str = "boîte"

    def __repr__(self) -> str:
        return "DispensedItem(<hidden>)"


@dataclass(frozen=True)
class DispensingSummary:
    dispensation_id: str
    dispensed_at: datetime
    items: tuple[DispensedItem, ...]
    kind: DocumentKind = DocumentKind.DISPENSING_SUMMARY

    def __repr__(self) -> str:
        return f"DispensingSummary({self.dispensation_id}, {len(self.items)} item(s))"


DocumentBody = VaccinationNote | DispensingSummary | TrodResult


@dataclass(frozen=True)
class CdaDocument:
    """A built, schema-valid CDA document and the facts its metadata is made from."""

    kind: DocumentKind
    document_id: str
    set_id: str
    title: str
    effective_time: datetime
    ins: Ins
    author: Author
    organisation: Organisation
    xml: bytes
    service_start: datetime
    service_stop: datetime

    def __repr__(self) -> str:
        return f"CdaDocument({self.kind.value}, {self.document_id}, {len(self.xml)} B)"
