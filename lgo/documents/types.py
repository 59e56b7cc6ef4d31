"""The catalogue of document types: codes for the CDA header and the XDS metadata.

Adding a document type = one :class:`DocumentType` here, one body dataclass in ``models.py`` and one
section builder registered in ``cda.py``.

Codes: LOINC for document and section types (as the French CI-SIS does). The XDS class, facility
and practice-setting codes follow the structure of the DMP value sets (JDV_J06/J07/J02 …) but the
exact national values were not available to us: they are kept in one place so that the real ones
replace them in one edit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from lgo.documents.models import DocumentKind

LOINC: Final = "2.16.840.1.113883.6.1"
CIP: Final = "1.2.250.1.213.2.3.1"
IDNAT_PS: Final = "1.2.250.1.71.4.2.1"
IDNAT_STRUCT: Final = "1.2.250.1.71.4.2.2"
IDNAT_STRUCT_FINESS_PREFIX: Final = "1"
TRE_G15_PROFESSION: Final = "1.2.250.1.71.1.2.7"
CONFIDENTIALITY: Final = "2.16.840.1.113883.5.25"
ADMIN_GENDER: Final = "2.16.840.1.113883.5.1"
CISIS_HEADER_TEMPLATE: Final = "1.2.250.1.213.1.1.1.1"
IHE_FORMAT_SYSTEM: Final = "1.3.6.1.4.1.19376.1.2.3"
MIME_TYPE_SUFFICIENT: Final = "urn:ihe:iti:xds:2017:mimeTypeSufficient"


@dataclass(frozen=True)
class Code:
    code: str
    system: str
    display: str


@dataclass(frozen=True)
class DocumentType:
    kind: DocumentKind
    title: str  # French: shown in the DMP and on the counter
    type_code: Code  # CDA ClinicalDocument/code and XDS typeCode
    section_code: Code
    class_code: Code  # XDS classCode
    # lgo's own template id for the body model (a 2.25 UUID OID: no national template claimed)
    template_id: str


PHARMACY_FACILITY: Final = Code("SA33", "1.2.250.1.71.4.2.4", "Pharmacie d'officine")
PHARMACY_PRACTICE: Final = Code("PHARM", "1.2.250.1.213.1.1.4.9", "Pharmacie")
FORMAT_CODE: Final = Code(MIME_TYPE_SUFFICIENT, IHE_FORMAT_SYSTEM, "Format CDA R2 (mime suffisant)")
NORMAL_CONFIDENTIALITY: Final = Code("N", CONFIDENTIALITY, "Normal")

DOCUMENT_TYPES: Final[dict[DocumentKind, DocumentType]] = {
    DocumentKind.VACCINATION_NOTE: DocumentType(
        kind=DocumentKind.VACCINATION_NOTE,
        title="Note de vaccination",
        type_code=Code("87273-9", LOINC, "Note de vaccination"),
        section_code=Code("11369-6", LOINC, "Historique des vaccinations"),
        class_code=Code("10", "1.2.250.1.213.1.1.4.1", "Compte rendu"),
        template_id="2.25.258146431814934930774547033767226256624",
    ),
    DocumentKind.DISPENSING_SUMMARY: DocumentType(
        kind=DocumentKind.DISPENSING_SUMMARY,
        title="Dispensation médicamenteuse",
        type_code=Code("60593-1", LOINC, "Dispensation médicamenteuse"),
        section_code=Code("60590-7", LOINC, "Médicaments dispensés"),
        class_code=Code("10", "1.2.250.1.213.1.1.4.1", "Compte rendu"),
        template_id="2.25.92432277271564815598306380943736939030",
    ),
}
