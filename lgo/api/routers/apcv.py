"""``POST /v1/apcv/exchange``: the beneficiaries behind a scanned apCV (appli carte Vitale) code.

The counter passes the ``scan_id`` of the scan (``/v1/scans`` or a scanner): the single-use token
stays inside the daemon, the page never handles it. The answer has the same shape as a carte Vitale
read (``/v1/readers/vitale/{id}``), so the page chooses the beneficiary the same way and creates the
patient with ``POST /v1/patients`` (``source: "apcv"``). The exchange is an act of the professional
session (its RPPS is the author of the teleservice call) and is never retried (single-use token).
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from lgo.api.contract import NATIONAL_ERRORS, problem_responses
from lgo.api.deps import ApcvDep, CounterDep, ScansDep, SessionDep
from lgo.core.errors import InvalidInput, NotFound, PharmacistSessionRequired
from lgo.national.errors import ApcvTokenExpired, ApcvTokenUnknown, ApcvTokenUsed

router = APIRouter(prefix="/v1/apcv", tags=["patients"])


class ExchangeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scan_id: str = Field(min_length=1, max_length=64, description="Id du code apCV scanné")


class ApcvBeneficiaryOut(BaseModel):
    rank: int
    family_name: str
    given_name: str
    birth_date_raw: str
    nir: str
    ins: str | None


class ExchangeOut(BaseModel):
    context_id: str
    beneficiaries: list[ApcvBeneficiaryOut]


@router.post(
    "/exchange",
    response_model=ExchangeOut,
    summary="Lire l'identité d'une apCV scannée",
    responses=problem_responses(
        PharmacistSessionRequired,
        NotFound,
        InvalidInput,
        ApcvTokenUnknown,
        ApcvTokenUsed,
        ApcvTokenExpired,
        *NATIONAL_ERRORS,
    ),
)
def exchange(
    body: ExchangeIn, scans: ScansDep, apcv: ApcvDep, _counter: CounterDep, session: SessionDep
) -> ExchangeOut:
    if session is None:
        raise PharmacistSessionRequired("ouvrez la session CPS ou e-CPS pour lire une apCV")
    record = scans.get(body.scan_id)
    if record is None:
        raise NotFound("code scanné inconnu (seuls les 50 derniers sont gardés)")
    token = record.classification.fields.get("token")
    if record.classification.kind.value != "apcv" or not token:
        raise InvalidInput("ce code scanné n'est pas une apCV")
    identity = apcv.exchange(token, author_rpps=session.identity.rpps)
    return ExchangeOut(
        context_id=identity.context_id,
        beneficiaries=[
            ApcvBeneficiaryOut(
                rank=b.rank,
                family_name=b.family_name,
                given_name=b.given_name,
                birth_date_raw=b.birth_date,
                nir=b.nir,
                ins=b.ins,
            )
            for b in identity.beneficiaries
        ],
    )
