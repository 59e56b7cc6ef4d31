"""Answers of /v1/trod (rapid tests and the antibiotic under protocol)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from lgo.api.schemas import DocumentProblem, View
from lgo.api.schemas.vaccinations import CodedReason


class TrodKit(View):
    manufacturer: str
    reference: str
    lot: str
    expiry: str | None


class TrodCriteria(View):
    """The criteria as recorded, with the patient's age range and the score computed."""

    temperature_c: str | None
    no_cough: bool
    tender_nodes: bool
    tonsil_swelling: bool
    exclusions: list[str]
    previous_episodes_12_months: int
    allergy: str
    weight_kg: str | None
    age_min: int
    age_max: int
    sex: str | None
    score: int | None = Field(description="Score de Mac Isaac (angine, 15 ans et plus).")


class ProtocolRegimen(View):
    code: str
    label: str
    first_line: bool


class TrodProtocol(View):
    applies: bool = Field(description="Le test ouvre droit à une dispensation sous protocole.")
    within: bool = Field(description="Le patient entre dans les critères du protocole.")
    score: int | None
    refusals: list[CodedReason]
    regimens: list[ProtocolRegimen]
    next: Literal["none", "dispensed", "refer", "dispense"] = Field(
        description="Suite au comptoir : dispenser, orienter vers le médecin, ou rien."
    )


class TrodProfessional(View):
    rpps: str
    national_id: str
    name: str
    session_id: str
    counter: str | None


class TrodView(View):
    id: str
    patient_id: str
    test: str = Field(description="angine, cystite, …")
    performed_at: str
    created_at: str
    kit: TrodKit
    readings: dict[str, str] = Field(description="Lecture par analyte.")
    positive: bool
    criteria: TrodCriteria
    protocol: TrodProtocol
    professional: TrodProfessional
    document_id: str | None
    document_skipped: str | None
    dispensation_id: str | None
    document_problem: DocumentProblem | None = Field(
        None, description="Présent quand le document n'a pas pu être produit (cette réponse)."
    )
