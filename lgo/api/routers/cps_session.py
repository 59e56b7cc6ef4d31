"""The professional session: ``/v1/cps/session``.

- ``GET`` the open session (any kind: ``cps`` card or ``ecps`` Pro Santé Connect) and the CPS
  card(s) present;
- ``POST`` opens a session with the CPS card and its PIN (``kind: "cps"``). The PIN is tried
  once: a wrong PIN answers ``cps-pin-incorrect`` with ``tries_left``; on the final try the call
  must say ``confirm_final_try: true``. e-CPS sign-in lives under ``/v1/cps/session/psc/...``;
- ``DELETE`` closes the open session, whatever its kind.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field, SecretStr

from lgo.api.contract import answers, problem_responses
from lgo.api.deps import CounterDep, CpsDep, SessionsDep
from lgo.api.schemas import view_of
from lgo.api.schemas.sessions import CardStatus, SessionInfo
from lgo.services import hardware_errors as hw
from lgo.services.cps import CpsService
from lgo.services.cps_revocation import CpsCertificateUntrusted, CpsRevocationUnknown
from lgo.services.sessions import SessionRegistry

router = APIRouter(prefix="/v1/cps/session", tags=["session professionnelle"])


class CpsLoginRequest(BaseModel):
    kind: Literal["cps"] = "cps"
    pin: SecretStr = Field(description="Code porteur (4 à 8 chiffres), essayé une seule fois")
    reader: str | None = Field(None, max_length=200, description="Lecteur de la carte CPS")
    confirm_final_try: bool = False


class SessionOut(BaseModel):
    kind: Literal["cps", "ecps"] | None
    session: SessionInfo | None
    cps_readers: list[str]


def _out(sessions: SessionRegistry, cps: CpsService) -> SessionOut:
    session = sessions.current()
    return SessionOut(
        kind=session.kind.value if session else None,
        session=session.public() if session else None,
        cps_readers=cps.readers(),
    )


@router.get("", response_model=SessionOut, summary="Session professionnelle ouverte")
def read_session(sessions: SessionsDep, cps: CpsDep, _counter: CounterDep) -> SessionOut:
    return _out(sessions, cps)


# Reading the CPS card (PC/SC) may end in these.
_CARD_ERRORS = (
    hw.CpsCardMissing,
    hw.ReaderNotFound,
    hw.CpsReaderAmbiguous,
    hw.CardReadFailed,
    hw.CardRemovedDuringRead,
    hw.HardwareUnavailable,
    hw.HardwareTimeout,
)


@router.get(
    "/card",
    summary="Carte CPS insérée : numéro de série et essais de code restants",
    **answers(CardStatus, *_CARD_ERRORS),
)
async def card_status(cps: CpsDep, _counter: CounterDep, reader: str | None = None) -> CardStatus:
    status = await cps.card_status_with_deadline(reader)
    # the PIN state only when known: the answer says nothing rather than null
    return view_of(CardStatus, status, omit_none=("pin_locked", "pin_final_try", "token_found"))


@router.post(
    "",
    status_code=201,
    response_model=SessionOut,
    summary="Ouvrir la session avec la carte CPS et son code porteur",
    responses=problem_responses(
        hw.CpsPinFormat,
        hw.CpsPinIncorrect,
        hw.CpsPinFinalTry,
        hw.CpsPinLocked,
        hw.CpsLoginFailed,
        hw.CpsMiddlewareUnavailable,
        CpsCertificateUntrusted,
        CpsRevocationUnknown,
        *_CARD_ERRORS,
    ),
)
async def open_session(
    body: CpsLoginRequest, sessions: SessionsDep, cps: CpsDep, _counter: CounterDep
) -> SessionOut:
    await cps.login_with_deadline(
        body.pin.get_secret_value(), reader=body.reader, confirm_final_try=body.confirm_final_try
    )
    return _out(sessions, cps)


@router.delete("", status_code=204, summary="Fermer la session professionnelle")
def close_session(sessions: SessionsDep, _counter: CounterDep) -> Response:
    sessions.close("logout")
    return Response(status_code=204)
