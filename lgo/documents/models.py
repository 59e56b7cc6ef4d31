"""What a shared document is made of: patient, author, organisation, and each type's body data.

Plain frozen dataclasses, no I/O. ``repr`` of anything holding identity or health data is masked so
a stray log line cannot leak it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from lgo.domain.identity import IdentityStatus, Ins, Traits


def new_document_oid() -> str:
    """A globally unique OID for a document (``2.25.<UUID as integer>``, ITU-T X.667).

    XDS ``uniqueId`` must be an OID of at most 64 characters: this one has at most 44.
    """
    return f"2.25.{uuid.uuid4().int}"


class DocumentKind(StrEnum):
    VACCINATION_NOTE = "vaccination-note"
    DISPENSING_SUMMARY = "dispensing-summary"


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


@dataclass(frozen=True)
class Vaccination:
    """One vaccine administered at the pharmacy."""

    administered_at: datetime
    product_code: str  # CIP 13 of the vaccine
    product_label: str
    lot_number: str
    dose_label: str = ""  # e.g. "Rappel", "1re dose"

    def __repr__(self) -> str:
        return "Vaccination(<hidden>)"


@dataclass(frozen=True)
class VaccinationNote:
    vaccinations: tuple[Vaccination, ...]
    kind: DocumentKind = DocumentKind.VACCINATION_NOTE

    def __repr__(self) -> str:
        return f"VaccinationNote({len(self.vaccinations)} item(s))"


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


DocumentBody = VaccinationNote | DispensingSummary


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
