"""The dispensation's patient must be the prescription's patient (checked before anything is written).

The rule itself is pure (:mod:`lgo.domain.patient_match`); this module maps the stored patient to
it and raises the problem the pharmacist reads. The problem names both patients: it is shown at the
counter so the pharmacist can switch to the right one. It is never logged (only its slug).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import Any, Protocol

from lgo.core.errors import Conflict
from lgo.domain.patient_match import (
    TRAIT_LABELS_FR,
    PatientMatch,
    PatientTraits,
    birth_date_digits,
    display_birth_date,
    match_patient,
)
from lgo.domain.prescription import Prescription, PrescriptionSource


class PatientRecord(Protocol):
    """What the commit's rules read of a stored patient: the ORM :class:`Patient` or the plain
    :class:`StoredPatient` the commit reads with one Core select."""

    @property
    def id(self) -> str: ...
    @property
    def birth_name(self) -> str: ...
    @property
    def used_name(self) -> str | None: ...
    @property
    def given_names(self) -> str: ...
    @property
    def sex(self) -> str | None: ...
    @property
    def birth_date_raw(self) -> str: ...
    @property
    def ins_matricule(self) -> str | None: ...
    @property
    def ins_oid(self) -> str | None: ...
    @property
    def identity_status(self) -> str: ...
    @property
    def on_work_list(self) -> bool: ...


@dataclass(frozen=True)
class StoredPatient:
    """The stored patient as the commit reads it: only the columns its rules use, as plain values
    (an ORM object costs its instrumentation on every dispensation, for a row never written)."""

    id: str
    birth_name: str
    used_name: str | None
    given_names: str
    sex: str | None
    birth_date_raw: str
    ins_matricule: str | None
    ins_oid: str | None
    identity_status: str
    on_work_list: bool


# The ``patients`` columns to select for a StoredPatient, in its field order.
STORED_PATIENT_COLUMNS = tuple(f.name for f in fields(StoredPatient))


class PrescriptionPatientMismatch(Conflict):
    slug = "prescription-patient-mismatch"
    status = 409
    title = "Cette ordonnance est au nom d'un autre patient"


class PrescriptionPatientUnknown(Conflict):
    """An e-prescription copy cached before the patient was kept with it (an upgrade in degraded
    mode): the patient cannot be checked, so nothing is dispensed on it (fail closed)."""

    slug = "prescription-patient-unknown"
    status = 409
    title = (
        "Patient de l'ordonnance inconnu (copie enregistrée avant la mise à jour) : recharger "
        "l'ordonnance quand le service de l'ordonnance numérique répond"
    )


def _given(raw: str | None) -> tuple[str, ...]:
    return tuple(p for p in re.split(r"[,\s]+", raw or "") if p)


def card_traits(
    family_name: str,
    given_names: str,
    birth_date: str,
    sex: str = "U",
    ins: str | None = None,
    ins_oid: str | None = None,
) -> PatientTraits:
    """A beneficiary as a card or apCV gives it (not stored yet), for the switch the page offers.
    ``ValueError`` for a birth date that is not 8 digits or an ISO date."""
    return PatientTraits(
        family_names=(family_name,),
        given_names=_given(given_names),
        birth_date=birth_date_digits(birth_date),
        sex=sex,
        ins=ins,
        ins_oid=ins_oid if ins else None,
    )


def traits_of(patient: PatientRecord) -> PatientTraits:
    """The stored patient as the rule compares it. The INS counts only when it came from INSi
    (``ins_matricule``) and no failed re-verification put the identity on the work list."""
    families = tuple(n for n in (patient.birth_name, patient.used_name) if n)
    try:
        birth = birth_date_digits(patient.birth_date_raw)
    except ValueError:
        birth = "00000000"  # unreadable: matches nothing but by INS
    usable_ins = patient.ins_matricule if not patient.on_work_list else None
    return PatientTraits(
        family_names=families or ("",),
        given_names=_given(patient.given_names),
        birth_date=birth,
        sex=patient.sex if patient.sex in ("M", "F") else "U",
        ins=usable_ins,
        ins_oid=patient.ins_oid if usable_ins else None,
    )


def _described(traits: PatientTraits) -> str:
    born = {"F": "née", "M": "né"}.get(traits.sex, "né(e)")
    return f"{traits.display_name}, {born} le {display_birth_date(traits.birth_date)}"


def public_patient(traits: PatientTraits) -> dict[str, Any]:
    return {"name": traits.display_name, "birth_date": display_birth_date(traits.birth_date)}


def ensure_prescription_patient(prescription: Prescription, patient: PatientRecord) -> None:
    """Raise :class:`PrescriptionPatientMismatch` unless ``patient`` is the prescription's patient.
    A typed paper copy names no patient: it is typed for the patient at the counter."""
    prescribed = prescription.patient
    if prescribed is None:
        if prescription.source is PrescriptionSource.EPRESCRIPTION:
            raise PrescriptionPatientUnknown(f"ordonnance {prescription.prescription_id}")
        return
    mine = traits_of(patient)
    result: PatientMatch = match_patient(prescribed, mine)
    if result.same:
        return
    differing = ", ".join(TRAIT_LABELS_FR[t] for t in result.differing)
    raise PrescriptionPatientMismatch(
        f"L'ordonnance {prescription.prescription_id} est au nom de {_described(prescribed)} ; "
        f"le patient sélectionné est {_described(mine)} (différence : {differing}). "
        "Rien n'a été enregistré : sélectionner le patient de l'ordonnance.",
        prescription_patient=public_patient(prescribed),
        selected_patient=public_patient(mine),
        differing=[t.value for t in result.differing],
    )


@dataclass(frozen=True)
class PatientMatchResult:
    """The commit's patient rule applied before the commit (the page warns with it)."""

    matches: bool
    rule: str  # ins, traits, paper (no patient named), unknown (copy without its patient)
    differing: list[str]


def match_view(prescription: Prescription, patient: PatientRecord) -> PatientMatchResult:
    """The rule's answer for the counter (the page warns with it before the commit, which runs
    :func:`ensure_prescription_patient` on the same rule): ``rule`` is ``ins``, ``traits``, or
    ``unknown`` for an e-prescription copy without its patient (refused at commit)."""
    return candidate_match(prescription, traits_of(patient))


def candidate_match(prescription: Prescription, candidate: PatientTraits) -> PatientMatchResult:
    """As :func:`match_view` for identity traits not stored yet (a card's beneficiary)."""
    prescribed = prescription.patient
    if prescribed is None:
        paper = prescription.source is not PrescriptionSource.EPRESCRIPTION
        return PatientMatchResult(paper, "paper" if paper else "unknown", [])
    result = match_patient(prescribed, candidate)
    return PatientMatchResult(result.same, result.basis.value, [t.value for t in result.differing])
