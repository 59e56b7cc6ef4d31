"""Simulated apCV service: a single-use, short-lived token → the identity a Vitale card gives.

- ``POST /apcv/v1/exchange`` ``{"token": "..."}`` → 200 identity (context id, coverage,
  beneficiaries with raw 8-character birth dates, NIRs, INS when known, rights). Refusals are
  problem+json with ``code``: ``token-unknown`` (404), ``token-used`` (409), ``token-expired``
  (410), ``invalid`` (400).
- Control: ``POST /_sim/apcv/tokens`` ``{"identity": "camille", "ttl_s": 120}`` issues a token
  (``APCVTEST-`` + 32 hex, formats.md §3.2) as the patient's phone would show it.

Fixtures: ``fixtures/national/apcv_identities.json``.
"""

from __future__ import annotations

import json
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from hwsim.national.context import SimDep, SimState

NAME = "apcv"
DEFAULT_TTL_S = 120.0
MAX_TOKEN_CHARS = 256

router = APIRouter(tags=["apCV"])
control = APIRouter(tags=["apCV control"])


@dataclass
class Token:
    identity: str
    expires_at: datetime
    used: bool = False


@dataclass
class ApcvStore:
    identities: dict[str, dict[str, Any]]
    tokens: dict[str, Token] = field(default_factory=dict)
    exchanges: int = 0


def store_of(sim: SimState) -> ApcvStore:
    store: ApcvStore = sim.stores[NAME]
    return store


def setup(sim: SimState) -> None:
    data = json.loads((sim.fixtures_dir / "apcv_identities.json").read_text(encoding="utf-8"))
    sim.stores[NAME] = ApcvStore(identities=data["identities"])


def issue_token(sim: SimState, identity: str, ttl_s: float | None = None) -> tuple[str, Token]:
    """Issue a token for a fixture identity (tests may call it directly)."""
    store = store_of(sim)
    if identity not in store.identities:
        raise KeyError(identity)
    ttl = ttl_s if ttl_s is not None else sim.settings.get("apcv_ttl_s", DEFAULT_TTL_S)
    value = "APCVTEST-" + secrets.token_hex(16)
    token = Token(identity=identity, expires_at=sim.clock.now() + timedelta(seconds=ttl))
    store.tokens[value] = token
    return value, token


def _refusal(status: int, code: str, title: str) -> JSONResponse:
    body = {"type": f"urn:hwsim:apcv:{code}", "title": title, "status": status, "code": code}
    return JSONResponse(body, status_code=status, media_type="application/problem+json")


@router.post("/v1/exchange")
async def exchange(request: Request, sim: SimDep) -> JSONResponse:
    try:
        data = json.loads(await request.body())
        token_value = data["token"] if isinstance(data, dict) else None
    except (ValueError, KeyError, RecursionError):
        token_value = None
    if not isinstance(token_value, str) or not 0 < len(token_value) <= MAX_TOKEN_CHARS:
        return _refusal(400, "invalid", "Jeton absent ou mal formé")
    store = store_of(sim)
    token = store.tokens.get(token_value)
    if token is None:
        return _refusal(404, "token-unknown", "Jeton inconnu")
    if token.used:
        return _refusal(409, "token-used", "Jeton déjà utilisé")
    if sim.clock.now() >= token.expires_at:
        return _refusal(410, "token-expired", "Jeton expiré")
    token.used = True  # single use: burnt before answering, as a replay must never work
    store.exchanges += 1
    identity = store.identities[token.identity]
    body = {
        "context_id": str(uuid.uuid4()),
        "coverage": identity["coverage"],
        "beneficiaries": identity["beneficiaries"],
        "rights": identity["rights"],
    }
    return JSONResponse(body)


class TokenRequest(BaseModel):
    identity: str = Field("camille", description="Key in apcv_identities.json.")
    ttl_s: float | None = Field(None, gt=0, le=86_400)


@control.post("/tokens")
async def new_token(sim: SimDep, spec: TokenRequest) -> JSONResponse:
    try:
        value, token = issue_token(sim, spec.identity, spec.ttl_s)
    except KeyError:
        return JSONResponse({"detail": f"unknown identity {spec.identity!r}"}, status_code=404)
    return JSONResponse({"token": value, "expires_at": token.expires_at.isoformat()})
