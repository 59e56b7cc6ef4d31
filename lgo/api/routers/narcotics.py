"""``/v1/narcotics``: registre des stupéfiants (receipts, destructions, balance, inventory)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from lgo.api.contract import answers
from lgo.api.deps import ContainerDep, PharmacistDep, require_counter
from lgo.api.direct import CounterRoute
from lgo.api.schemas.narcotics import InventoryResult, MonthlyBalance, RegisterLine
from lgo.core.errors import InvalidInput
from lgo.domain.narcotics import Movement
from lgo.services import narcotics
from lgo.store.columns import utcnow

router = APIRouter(
    tags=["narcotics"], dependencies=[Depends(require_counter)], route_class=CounterRoute
)


class MovementIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product_code: str = Field(pattern=r"^\d{13}$")
    designation: str = Field(min_length=1, max_length=200)
    movement: Literal["receipt", "destruction"]
    units: int = Field(gt=0, le=100_000, description="Unités de prise.")
    reference: str | None = Field(None, max_length=200)


class InventoryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product_code: str = Field(pattern=r"^\d{13}$")
    designation: str = Field(min_length=1, max_length=200)
    counted_units: int = Field(ge=0, le=1_000_000)
    note: str = Field(min_length=1, max_length=150)


@router.post(
    "/v1/narcotics/movements",
    status_code=201,
    summary="Entrée ou destruction",
    **answers(RegisterLine, InvalidInput),
)
def add_movement(
    body: MovementIn, container: ContainerDep, session: PharmacistDep
) -> dict[str, Any]:
    return narcotics.record(
        container.db,
        product_code=body.product_code,
        designation=body.designation,
        movement=Movement(body.movement),
        units=body.units,
        reference=body.reference,
        rpps=session.identity.rpps,
        now=utcnow(),
    )


@router.post(
    "/v1/narcotics/inventory",
    summary="Inventaire (écart enregistré)",
    **answers(InventoryResult),
)
def take_inventory(
    body: InventoryIn, container: ContainerDep, session: PharmacistDep
) -> dict[str, Any]:
    return narcotics.take_inventory(
        container.db,
        product_code=body.product_code,
        designation=body.designation,
        counted=body.counted_units,
        note=body.note,
        rpps=session.identity.rpps,
        now=utcnow(),
    )


@router.get(
    "/v1/narcotics/balance",
    summary="Balance mensuelle d'un produit",
    **answers(MonthlyBalance),
)
def monthly_balance(
    container: ContainerDep,
    product_code: Annotated[str, Query(pattern=r"^\d{13}$")],
    # Years 1900-2099 only: "0000-01" or "9999-12" would overflow the date arithmetic (a 500).
    month: Annotated[str, Query(pattern=r"^(19|20)\d{2}-(0[1-9]|1[0-2])$")],
) -> dict[str, Any]:
    year, number = (int(part) for part in month.split("-"))
    return narcotics.balance(container.db, product_code, year, number)


@router.get("/v1/narcotics/register", summary="Lignes du registre", **answers(list[RegisterLine]))
def read_register(
    container: ContainerDep,
    product_code: Annotated[str | None, Query(pattern=r"^\d{13}$")] = None,
    day_from: Annotated[date | None, Query(alias="from")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> list[dict[str, Any]]:
    return narcotics.register(container.db, product_code, day_from, limit)
