"""Card readers: ``GET /v1/readers`` (state of every reader) and the Vitale read of a card."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from lgo.api.contract import problem_responses
from lgo.api.deps import CounterDep, HardwareDep
from lgo.services.hardware_errors import ReaderNotFound

router = APIRouter(prefix="/v1/readers", tags=["lecteurs"])


class ReaderOut(BaseModel):
    name: str
    card_present: bool
    card_kind: str | None
    atr: str | None
    vitale_read_id: str | None


class ReadersOut(BaseModel):
    degraded: str | None
    readers: list[ReaderOut]


class BeneficiaryOut(BaseModel):
    rank: int
    family_name: str
    given_name: str
    birth_date_raw: str
    birth_date: str | None
    nir: str


class VitaleOut(BaseModel):
    read_id: str
    reader: str
    validity_start_raw: str | None
    beneficiaries: list[BeneficiaryOut]


@router.get("", response_model=ReadersOut, summary="Lecteurs de cartes et cartes insérées")
def list_readers(hardware: HardwareDep, _counter: CounterDep) -> ReadersOut:
    return ReadersOut(
        degraded=hardware.degraded,
        readers=[ReaderOut(**reader) for reader in hardware.readers()],
    )


@router.get(
    "/vitale/{read_id}",
    response_model=VitaleOut,
    summary="Contenu de la carte Vitale lue (tant qu'elle reste insérée)",
    responses=problem_responses(ReaderNotFound),
)
def vitale_read(read_id: str, hardware: HardwareDep, _counter: CounterDep) -> VitaleOut:
    read = hardware.vitale(read_id)
    return VitaleOut(
        read_id=read.read_id,
        reader=read.reader,
        validity_start_raw=read.card.validity_start_raw,
        beneficiaries=[
            BeneficiaryOut(
                rank=b.rank,
                family_name=b.family_name,
                given_name=b.given_name,
                birth_date_raw=b.birth_date_raw,
                birth_date=b.birth_date.isoformat() if b.birth_date else None,
                nir=b.nir,
            )
            for b in read.card.beneficiaries
        ],
    )
