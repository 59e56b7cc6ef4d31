"""What an ordonnancier entry must hold, by law (pure).

Code de la santé publique, the data this module requires before a dispensation is recorded:

- R.5132-10 (every delivery of a liste I, liste II or stupéfiant medicine, and their renewals):
  a distinct sequential number (ordonnancier number), the prescriber's name and address, the
  patient's name and address, the date of delivery, the medicine's name, the quantity delivered.
  The number and the date are the daemon's (gapless chain, the commit's clock); the others come
  from the prescription, the patient record and the request.
- R.5132-35 (stupéfiants): when the person who brings the prescription is not the patient, their
  name and address are recorded too (the pharmacist checks an identity document). The request must
  say which: the bearer is the patient, or the bearer's name and address.

A missing datum refuses the dispensation before anything is written; the message names it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

ADDRESS_MIN = 5  # "1 rue" at least: an address a letter could reach, not a placeholder


class Datum(StrEnum):
    PRESCRIBER_NAME = "prescriber_name"
    PRESCRIBER_ADDRESS = "prescriber_address"
    PATIENT_NAME = "patient_name"
    PATIENT_ADDRESS = "patient_address"
    DESIGNATION = "designation"
    QUANTITY = "quantity"
    BEARER = "bearer"
    BEARER_NAME = "bearer_name"
    BEARER_ADDRESS = "bearer_address"


LABELS_FR: Final = {
    Datum.PRESCRIBER_NAME: "nom du prescripteur",
    Datum.PRESCRIBER_ADDRESS: "adresse du prescripteur",
    Datum.PATIENT_NAME: "nom du patient",
    Datum.PATIENT_ADDRESS: "adresse du patient",
    Datum.DESIGNATION: "dénomination du médicament",
    Datum.QUANTITY: "quantité délivrée",
    Datum.BEARER: "porteur de l'ordonnance (le patient, ou le nom et l'adresse du porteur)",
    Datum.BEARER_NAME: "nom du porteur de l'ordonnance",
    Datum.BEARER_ADDRESS: "adresse du porteur de l'ordonnance",
}

ARTICLES: Final = {
    Datum.PRESCRIBER_NAME: "R.5132-10",
    Datum.PRESCRIBER_ADDRESS: "R.5132-10",
    Datum.PATIENT_NAME: "R.5132-10",
    Datum.PATIENT_ADDRESS: "R.5132-10",
    Datum.DESIGNATION: "R.5132-10",
    Datum.QUANTITY: "R.5132-10",
    Datum.BEARER: "R.5132-35",
    Datum.BEARER_NAME: "R.5132-35",
    Datum.BEARER_ADDRESS: "R.5132-35",
}


@dataclass(frozen=True)
class Bearer:
    """Who brought the prescription: the patient, or someone whose name and address are noted."""

    is_patient: bool
    name: str = ""
    address: str = ""

    def __repr__(self) -> str:  # identity data stays out of logs
        return f"Bearer(is_patient={self.is_patient})"


@dataclass(frozen=True)
class RecordedLine:
    """One line going to the ordonnancier (units delivered on a listed medicine)."""

    designation: str
    quantity_units: int
    narcotic: bool


@dataclass(frozen=True)
class RecordData:
    prescriber_name: str
    prescriber_address: str
    patient_name: str
    patient_address: str
    bearer: Bearer | None
    lines: Sequence[RecordedLine]

    def __repr__(self) -> str:
        return f"RecordData(lines={len(self.lines)})"


def _blank(text: str, minimum: int = 1) -> bool:
    return len(text.strip()) < minimum


def missing_data(data: RecordData) -> list[Datum]:
    """The data the law requires and ``data`` lacks (empty when nothing goes to the
    ordonnancier). Order: prescriber, patient, lines, bearer."""
    if not data.lines:
        return []
    missing: list[Datum] = []
    checks = (
        (Datum.PRESCRIBER_NAME, _blank(data.prescriber_name)),
        (Datum.PRESCRIBER_ADDRESS, _blank(data.prescriber_address, ADDRESS_MIN)),
        (Datum.PATIENT_NAME, _blank(data.patient_name)),
        (Datum.PATIENT_ADDRESS, _blank(data.patient_address, ADDRESS_MIN)),
        (Datum.DESIGNATION, any(_blank(line.designation) for line in data.lines)),
        (Datum.QUANTITY, any(line.quantity_units <= 0 for line in data.lines)),
    )
    missing.extend(datum for datum, absent in checks if absent)
    if any(line.narcotic for line in data.lines):
        missing.extend(_bearer_missing(data.bearer))
    return missing


def _bearer_missing(bearer: Bearer | None) -> list[Datum]:
    if bearer is None:
        return [Datum.BEARER]
    if bearer.is_patient:
        return []
    missing = []
    if _blank(bearer.name):
        missing.append(Datum.BEARER_NAME)
    if _blank(bearer.address, ADDRESS_MIN):
        missing.append(Datum.BEARER_ADDRESS)
    return missing


def describe_fr(missing: Sequence[Datum]) -> str:
    """« adresse du patient (R.5132-10), … » for the problem's detail."""
    return ", ".join(f"{LABELS_FR[d]} (art. {ARTICLES[d]} CSP)" for d in missing)
