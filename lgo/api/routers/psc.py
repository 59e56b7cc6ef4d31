"""e-CPS sign-in through Pro Santé Connect: ``/v1/cps/session/psc/...``.

The session itself is read and closed at ``/v1/cps/session`` (both kinds, ``cps`` and ``ecps``);
closing an e-CPS session revokes its provider grant. Here:

- ``POST /ciba`` sends the sign-in request to the professional's phone; ``POST /ciba/{id}/poll``
  (at the returned ``interval``) answers ``pending`` or the opened session, or a problem
  (``psc-login-refused``, ``psc-login-expired``); ``DELETE /ciba/{id}`` gives up.
- ``POST /authorize`` returns the provider URL for the counter page (authorization code + PKCE);
  the page brings ``code`` and ``state`` back to ``POST /callback``.
- ``POST /refresh`` renews the e-CPS session.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from lgo.api.contract import NATIONAL_ERRORS, problem_responses
from lgo.api.deps import CounterDep, PscLoginDep
from lgo.api.schemas.sessions import SessionInfo
from lgo.national.psc import (
    PscGrantInvalid,
    PscLoginExpired,
    PscLoginRefused,
    PscTokenInvalid,
    PscUnknownProfessional,
)
from lgo.services.psc_login import EcpsSessionRequired, PscLoginUnknown

# What a Pro Santé Connect sign-in may end in (the national service, the pending login).
_PSC_RESPONSES = problem_responses(
    PscLoginUnknown,
    EcpsSessionRequired,
    PscLoginRefused,
    PscLoginExpired,
    PscUnknownProfessional,
    PscGrantInvalid,
    PscTokenInvalid,
    *NATIONAL_ERRORS,
)
router = APIRouter(
    prefix="/v1/cps/session/psc", tags=["session professionnelle"], responses=_PSC_RESPONSES
)

LOGIN_HINT = Field(
    min_length=9,
    max_length=16,
    pattern=r"^[0-9A-Za-z]+$",
    description="Numéro RPPS (11 chiffres) ou identifiant national (8 + RPPS)",
)


class CibaStartRequest(BaseModel):
    login_hint: str = LOGIN_HINT
    binding_message: str | None = Field(
        None, max_length=64, description="Texte affiché sur le téléphone (défaut : nom du poste)"
    )


class CibaStartResponse(BaseModel):
    login_id: str
    expires_in: int
    interval: int


class LoginOutcome(BaseModel):
    status: Literal["pending", "approved"]
    session: SessionInfo | None = None


class AuthorizeRequest(BaseModel):
    login_hint: str | None = LOGIN_HINT


class AuthorizeResponse(BaseModel):
    authorization_url: str
    state: str


class CallbackRequest(BaseModel):
    code: str = Field(min_length=1, max_length=512, repr=False)  # OAuth authorization code
    state: str = Field(min_length=1, max_length=128)


@router.post(
    "/ciba",
    status_code=202,
    response_model=CibaStartResponse,
    summary="Demander la connexion e-CPS sur le téléphone du professionnel (CIBA)",
)
def start_ciba(
    body: CibaStartRequest, login: PscLoginDep, counter: CounterDep
) -> CibaStartResponse:
    started = login.start_ciba(
        body.login_hint, binding_message=body.binding_message or counter.name
    )
    return CibaStartResponse(
        login_id=started.login_id, expires_in=started.expires_in, interval=started.interval
    )


@router.post(
    "/ciba/{login_id}/poll",
    response_model=LoginOutcome,
    summary="Où en est la connexion e-CPS ? (à appeler à l'intervalle donné)",
)
def poll_ciba(login_id: str, login: PscLoginDep, _: CounterDep) -> LoginOutcome:
    session = login.poll(login_id)
    if session is None:
        return LoginOutcome(status="pending")
    return LoginOutcome(status="approved", session=session.public())


@router.delete("/ciba/{login_id}", status_code=204, summary="Abandonner la connexion e-CPS")
def cancel_ciba(login_id: str, login: PscLoginDep, _: CounterDep) -> Response:
    login.cancel(login_id)
    return Response(status_code=204)


@router.post(
    "/authorize",
    response_model=AuthorizeResponse,
    summary="Adresse de connexion Pro Santé Connect pour la page (code d'autorisation + PKCE)",
)
def authorize(body: AuthorizeRequest, login: PscLoginDep, _: CounterDep) -> AuthorizeResponse:
    page = login.start_page_login(body.login_hint)
    return AuthorizeResponse(authorization_url=page.authorization_url, state=page.state)


@router.post(
    "/callback",
    response_model=LoginOutcome,
    summary="Retour de Pro Santé Connect vers la page : ouvre la session e-CPS",
)
def callback(body: CallbackRequest, login: PscLoginDep, _: CounterDep) -> LoginOutcome:
    session = login.finish_page_login(body.code, body.state)
    return LoginOutcome(status="approved", session=session.public())


@router.post("/refresh", response_model=LoginOutcome, summary="Prolonger la session e-CPS en cours")
def refresh(login: PscLoginDep, _: CounterDep) -> LoginOutcome:
    session = login.refresh()
    return LoginOutcome(status="approved", session=session.public())
