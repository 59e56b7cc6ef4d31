"""Answers of /v1/ordonnancier."""

from __future__ import annotations

from pydantic import Field

from lgo.api.schemas import View


class OrdonnancierLine(View):
    """One entry of the ordonnancier (append-only, hash-chained)."""

    number: int = Field(description="Numéro d'ordre, sans trou.")
    recorded_at: str = Field(description="Inscription (ISO 8601, UTC).")
    dispensation_id: str
    line_no: int
    prescription_id: str
    prescriber_rpps: str
    prescriber_name: str
    patient_id: str
    patient_name: str
    patient_address: str
    product_code: str
    designation: str
    regulatory_list: str
    quantity_units: int
    pharmacist_rpps: str
    prescriber_address: str | None
    bearer_name: str | None = Field(description="Porteur, si autre que le patient.")
    bearer_address: str | None
    hash: str = Field(description="Empreinte SHA-256 chaînée de l'entrée.")


class ChainVerification(View):
    ok: bool
    checked: int = Field(description="Entrées vérifiées.")
    first_broken: int | None = Field(description="Première entrée en défaut.")
    problem: str | None = Field(description="Nature du défaut (missing_entries, …).")
