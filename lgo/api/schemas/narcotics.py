"""Answers of /v1/narcotics (registre des stupéfiants)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from lgo.api.schemas import View

MovementKind = Literal["receipt", "dispensing", "destruction", "inventory_adjustment"]


class RegisterLine(View):
    """One line of the narcotics register."""

    id: int
    recorded_at: str = Field(description="Inscription (ISO 8601, UTC).")
    business_date: str = Field(description="Jour de l'officine (AAAA-MM-JJ).")
    product_code: str
    designation: str
    movement: MovementKind
    units: int = Field(description="Unités de prise, signées (sortie négative).")
    dispensation_id: str | None
    reference: str | None
    pharmacist_rpps: str


class InventoryResult(View):
    product_code: str
    on: str = Field(description="Jour de l'inventaire (AAAA-MM-JJ).")
    expected: int
    counted: int
    discrepancy: int = Field(description="Compté moins attendu (ligne d'ajustement si non nul).")


class MonthlyBalance(View):
    product_code: str
    month: str = Field(description="AAAA-MM")
    opening: int
    received: int
    withdrawn: int
    adjusted: int
    closing: int
