"""``GET /v1/prescribers/{rpps}``: is this prescriber a practising professional? (Annuaire Santé)"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from lgo.api.deps import ContainerDep, CounterDep, SessionDep
from lgo.services.psc_part import prescriber_checker_of

router = APIRouter(prefix="/v1/prescribers", tags=["prescripteurs"])

RppsPath = Annotated[
    str, Path(pattern=r"^[0-9]{11}$", description="Numéro RPPS du prescripteur (11 chiffres)")
]


@router.get(
    "/{rpps}",
    summary="Vérifier un prescripteur dans l'Annuaire Santé",
    description=(
        "`status` : `active`, `inactive`, `unknown`, `invalid_number` ou `unverified` (annuaire "
        "injoignable). Tout autre statut que `active` porte un avertissement (`warning`) que le "
        "pharmacien doit confirmer avant de délivrer."
    ),
)
def check_prescriber(
    rpps: RppsPath, container: ContainerDep, _: CounterDep, session: SessionDep
) -> dict[str, Any]:
    author = session.identity.rpps if session is not None else None
    check = prescriber_checker_of(container).check(rpps, author_rpps=author)
    return check.public()
