"""The ordonnancier entry is complete before the dispensation is written (rule in
:mod:`lgo.domain.legal_record`): the service gathers the data from the prescription, the patient
record and the request, and refuses with the missing data named."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from lgo.core.errors import InvalidInput
from lgo.domain.dispensing import LineDecision
from lgo.domain.legal_record import (
    ARTICLES,
    LABELS_FR,
    Bearer,
    Datum,
    RecordData,
    RecordedLine,
    describe_fr,
    missing_data,
)
from lgo.domain.prescription import Prescription
from lgo.domain.products import RegulatoryList
from lgo.services.prescription_patient import PatientRecord


class LegalRecordIncomplete(InvalidInput):
    slug = "legal-record-incomplete"
    title = "Données obligatoires de l'ordonnancier manquantes : rien n'a été enregistré"


def patient_name(patient: PatientRecord) -> str:
    """The name written in the ordonnancier: used (or birth) name and given names."""
    return " ".join(p for p in (patient.used_name or patient.birth_name, patient.given_names) if p)


def prescriber_address(prescription: Prescription, typed: str) -> str:
    """The prescription's prescriber address, or the one typed at the counter."""
    return prescription.extra.get("prescriber_address") or typed.strip()


def recorded_lines(
    prescription: Prescription, decisions: Sequence[LineDecision], designations: Mapping[int, str]
) -> list[RecordedLine]:
    lines = []
    for decision in decisions:
        listed = prescription.line(decision.line_no).regulatory_list
        if decision.units > 0 and listed.goes_to_ordonnancier:
            lines.append(
                RecordedLine(
                    designations.get(decision.line_no, ""),
                    decision.units,
                    narcotic=listed is RegulatoryList.STUPEFIANT,
                )
            )
    return lines


def missing_record_data(
    prescription: Prescription,
    patient: PatientRecord,
    *,
    patient_address: str,
    typed_prescriber: str,
    bearer: Bearer | None,
    lines: Sequence[RecordedLine],
) -> list[Datum]:
    """What the ordonnancier entries would lack (empty: complete)."""
    return missing_data(
        RecordData(
            prescriber_name=prescription.extra.get("prescriber_name", ""),
            prescriber_address=prescriber_address(prescription, typed_prescriber),
            patient_name=patient_name(patient),
            patient_address=patient_address,
            bearer=bearer,
            lines=lines,
        )
    )


def public_missing(missing: Sequence[Datum]) -> list[dict[str, str]]:
    return [{"datum": d.value, "label": LABELS_FR[d], "article": ARTICLES[d]} for d in missing]


def ensure_complete(missing: Sequence[Datum]) -> None:
    """Raise :class:`LegalRecordIncomplete` naming each missing datum and its article."""
    if missing:
        raise LegalRecordIncomplete(
            f"À compléter avant de délivrer : {describe_fr(missing)}.",
            missing=public_missing(missing),
        )
