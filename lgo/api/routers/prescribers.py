"""``GET /v1/prescribers/{rpps}``: is this prescriber a practising professional? (Annuaire Santé)"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path
from pydantic import BaseModel

from lgo.api.deps import CounterDep, PrescriberCheckDep, SessionDep

router = APIRouter(prefix="/v1/prescribers", tags=["prescripteurs"])

RppsPath = Annotated[
    str, Path(pattern=r"^[0-9]{11}$", description="Numéro RPPS du prescripteur (11 chiffres)")
]


class RoleOut(BaseModel):
    profession_code: str | None
    specialty_code: str | None
    current: bool
    organization_name: str | None
    organization_finess: str | None


class PractitionerOut(BaseModel):
    national_id: str
    prefix: str | None
    family_name: str
    given_name: str
    active: bool
    profession_codes: list[str]
    roles: list[RoleOut]


class PrescriberCheckOut(BaseModel):
    rpps: str
    status: Literal["active", "inactive", "unknown", "invalid_number", "unverified"]
    checked_on: str
    requires_acknowledgement: bool
    warning: str | None
    practitioner: PractitionerOut | None


@router.get(
    "/{rpps}",
    response_model=PrescriberCheckOut,
    summary="Vérifier un prescripteur dans l'Annuaire Santé",
    description=(
        "`status` : `active`, `inactive`, `unknown`, `invalid_number` ou `unverified` (annuaire "
        "injoignable). Tout autre statut que `active` porte un avertissement (`warning`) que le "
        "pharmacien doit confirmer avant de délivrer."
    ),
)
def check_prescriber(
    rpps: RppsPath, prescribers: PrescriberCheckDep, _: CounterDep, session: SessionDep
) -> PrescriberCheckOut:
    author = session.identity.rpps if session is not None else None
    check = prescribers.check(rpps, author_rpps=author)
    return PrescriberCheckOut.model_validate(check.public())
