"""Scanned codes: ``POST /v1/scans`` (a typed or injected payload) and ``GET /v1/scans``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from lgo.api.contract import problem_responses
from lgo.api.deps import CounterDep, ScansDep
from lgo.core.errors import NotFound

router = APIRouter(prefix="/v1/scans", tags=["codes scannés"])


class ScanIn(BaseModel):
    payload: str = Field(
        min_length=1,
        max_length=4096,
        description="Le code tel que lu ou saisi (préfixe AIM, GS \\u001d et CR/LF acceptés)",
    )
    source: str = Field("api", max_length=64, pattern=r"^[a-z0-9:_./-]+$")


class ScanOut(BaseModel):
    id: str
    at: str
    source: str
    kind: str
    aim_id: str | None
    reason: str | None = Field(description="Code stable du refus (non reconnu).")
    reason_label: str | None = Field(description="Pourquoi le code n'est pas reconnu, en français.")
    fields: dict[str, Any] = Field(
        description="Champs non personnels seulement (produit, n° d'ordonnance) ; jamais le jeton "
        "apCV ni le contenu d'un DataMatrix INS, qui restent dans le démon",
    )


@router.post("", status_code=201, response_model=ScanOut, summary="Classer un code saisi ou scanné")
def submit_scan(body: ScanIn, scans: ScansDep, counter: CounterDep) -> ScanOut:
    source = body.source if body.source != "api" else f"api:{counter.name}"[:64]
    return ScanOut(**scans.submit(body.payload, source).api_data())


@router.get(
    "", response_model=list[ScanOut], summary="Derniers codes scannés (plus récent d'abord)"
)
def recent_scans(scans: ScansDep, _counter: CounterDep) -> list[ScanOut]:
    return [ScanOut(**record.api_data()) for record in scans.recent()]


@router.get(
    "/{scan_id}",
    response_model=ScanOut,
    summary="Un code scanné",
    responses=problem_responses(NotFound),
)
def get_scan(scan_id: str, scans: ScansDep, _counter: CounterDep) -> ScanOut:
    record = scans.get(scan_id)
    if record is None:
        raise NotFound("code scanné inconnu (seuls les 50 derniers sont gardés)")
    return ScanOut(**record.api_data())
