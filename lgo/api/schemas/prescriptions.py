"""Answers of /v1/prescriptions: a prescription as the counter sees it."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from lgo.api.routers.prescribers import PractitionerOut
from lgo.api.schemas import View

PrescriberStatus = Literal["active", "inactive", "unknown", "invalid_number", "unverified"]


class Posology(View):
    """What the structured dosage defines (or the pharmacist typed on a paper line)."""

    units_per_day: str | None = Field(description="Unités par jour (décimal, « 0.286 »).")
    duration_days: int | None
    as_needed: bool = Field(description="Si besoin.")
    max_units_per_day: str | None
    needs_pharmacist_input: bool = Field(description="Le pharmacien doit saisir la quantité.")
    reason: str | None = Field(description="Pourquoi la posologie n'est pas exploitable.")


class DeliverableReason(View):
    code: str = Field(description="Code du refus ou de la limite.")
    message: str = Field(description="Message en français.")
    article: str | None = Field(description="Article du code de la santé publique.")


class Deliverable(View):
    """What may be delivered today on the line (the rule the commit enforces)."""

    allowed: bool
    max_days: int = Field(description="Jours de traitement délivrables aujourd'hui.")
    reasons: list[DeliverableReason]
    overridable: bool = Field(description="Le pharmacien peut passer outre (motif tracé).")


class PackCount(View):
    cip13: str
    units: int
    count: int


class PackProposal(View):
    days: int
    price_cents: int
    packs: list[PackCount]


class PrescriptionLineView(View):
    line_no: int
    designation: str
    product_code: str
    regulatory_list: str = Field(description="none, list_i, list_ii, stupefiant, assimile.")
    units_per_day: str | None
    duration_days: int
    renewals: int
    substitutable: bool
    non_substitution_reason: str | None = Field(description="MTE, EFG ou CIF.")
    days_dispensed: int
    deliveries: int
    remaining_days: int
    posology_text: str = Field(description="Posologie telle que rédigée par le prescripteur.")
    posology: Posology
    deliverable: Deliverable
    warnings: list[str] = Field(description="Codes des refus bloquants.")
    proposal: PackProposal | None = Field(description="Boîtes proposées (absent si bloqué).")


class PatientIns(View):
    nir: str
    oid: str


class PrescriptionPatient(View):
    family_name: str
    given_names: list[str]
    birth_date: str | None = Field(description="AAAA-MM-JJ (jour ou mois inconnus possibles).")
    sex: str = Field(description="M, F ou U.")
    ins: PatientIns | None


class PatientMatchView(View):
    """The commit's patient rule applied to the patient at the counter (docs/dispensing.md)."""

    matches: bool = Field(description="Faux : la dispensation sera refusée (409).")
    rule: Literal["ins", "traits", "paper", "unknown"] = Field(
        description="ins, traits d'identité stricts, ordonnance papier (sans patient), ou "
        "unknown (copie sans son patient : refusée)."
    )
    differing: list[Literal["ins", "family_name", "given_name", "birth_date", "sex"]]


class CandidatesMatch(View):
    matches: list[PatientMatchView] = Field(description="Dans l'ordre des candidats.")


class PrescriptionPrescriber(View):
    """The Annuaire Santé check plus who the prescription names."""

    rpps: str
    status: PrescriberStatus
    checked_on: str
    requires_acknowledgement: bool = Field(description="À acquitter lors de la dispensation.")
    warning: str | None
    practitioner: PractitionerOut | None
    name: str | None
    profession: str | None
    profession_code: str | None
    specialty: str | None
    specialty_code: str | None
    address: str | None


class PrescriptionView(View):
    prescription_id: str
    source: Literal["eprescription", "paper", "protocole"]
    prescribed_on: str
    prescriber_rpps: str
    prescriber: PrescriptionPrescriber
    patient: PrescriptionPatient | None = Field(description="Absent d'une ordonnance papier.")
    patient_match: PatientMatchView | None = Field(
        None, description="Avec ?patient_id= : ce patient est-il celui de l'ordonnance ?"
    )
    first_delivery_deadline: str
    treatment_limit: str
    degraded: bool = Field(description="Copie locale : service national injoignable.")
    lines: list[PrescriptionLineView]
