"""Answers of /v1/vaccinations."""

from __future__ import annotations

from pydantic import Field

from lgo.api.schemas import DocumentProblem, View


class CodedReason(View):
    code: str
    message: str = Field(description="Message en français.")


class VaccineInfo(View):
    code: str = Field(description="Valence : grippe, covid-19, hpv, dtcap…")
    label: str
    atc: str
    live: bool = Field(description="Vaccin vivant atténué.")
    min_age: int
    max_age: int | None


class VaccinationEligibility(View):
    vaccine: str
    label: str
    eligible: bool
    age_min: int | None = Field(description="Âge minimal possible ce jour (None : illisible).")
    age_max: int | None
    refusals: list[CodedReason]
    warnings: list[CodedReason]


class VaccineProduct(View):
    gtin: str
    cip13: str | None
    cis: str | None
    label: str
    lot: str
    expiry: str
    serial: str | None


class ActProfessional(View):
    rpps: str
    national_id: str
    session_id: str
    counter: str | None


class VaccinationView(View):
    id: str
    patient_id: str
    vaccine: str
    vaccine_label: str
    administered_at: str
    created_at: str
    product: VaccineProduct
    dose_number: int | None
    act: str
    route: str
    site: str | None
    professional: ActProfessional
    eligibility: VaccinationEligibility = Field(description="Contrôles faits avant l'injection.")
    document_id: str | None = Field(description="Note de vaccination (VAC-NOTE) produite.")
    document_skipped: str | None = Field(description="Pourquoi la note n'a pas été produite.")
    document_problem: DocumentProblem | None = Field(
        None, description="Présent quand la note n'a pas été produite (cette réponse seulement)."
    )
