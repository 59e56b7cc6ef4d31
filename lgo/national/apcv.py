"""apCV (appli carte Vitale) client: a scanned single-use token → the identity a Vitale card gives.

The real protocol (SESAM-Vitale addendum 8) is restricted; the token is treated as an opaque
printable string (formats.md §3.2) and exchanged over REST:
``POST {base}/v1/exchange {"token": ...}`` → :class:`ApcvIdentity`. Refusals are problem+json with a
``code``: ``token-unknown``, ``token-used``, ``token-expired``, each its own typed error.

The exchange is **not** retried after the request may have left: the token is single-use, a retry
would burn nothing new and answer "already used". The token never reaches a log line.
"""

from __future__ import annotations

from typing import Any, Protocol

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lgo.national.errors import (
    ApcvTokenExpired,
    ApcvTokenRefused,
    ApcvTokenUnknown,
    ApcvTokenUsed,
    MalformedResponse,
)
from lgo.national.transport import (
    ServiceClient,
    decode_json,
    json_or_none,
    refusal_error,
)

SERVICE = "apcv"
MAX_TOKEN_CHARS = 256


class _Dto(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class ApcvBeneficiary(_Dto):
    family_name: str = Field(min_length=1, max_length=80)
    given_name: str = Field(min_length=1, max_length=80)
    birth_date: str = Field(
        pattern=r"^\d{8}$", description="Raw YYYYMMDD as on the card; lunar dates (00) kept."
    )
    nir: str = Field(pattern=r"^[0-9]{5}[0-9AB][0-9]{9}$|^[0-9]{15}$")
    rank: int = Field(ge=1, le=99)
    quality: str | None = Field(None, max_length=2)
    ins: str | None = Field(None, pattern=r"^[0-9]{5}[0-9AB][0-9]{9}$|^[0-9]{15}$")
    ins_oid: str | None = Field(None, max_length=64)


class ApcvCoverage(_Dto):
    regime: str = Field(max_length=2)
    caisse: str = Field(max_length=3)
    centre: str = Field(max_length=4)


class ApcvRight(_Dto):
    start: str = Field(max_length=10)
    end: str | None = Field(None, max_length=10)
    code: str = Field(max_length=16)


class ApcvIdentity(_Dto):
    """What the service returns for a token: the card's beneficiaries, plus coverage and rights."""

    context_id: str = Field(min_length=1, max_length=64)
    coverage: ApcvCoverage | None = None
    beneficiaries: tuple[ApcvBeneficiary, ...] = Field(min_length=1, max_length=20)
    rights: tuple[ApcvRight, ...] = ()


class ApcvService(Protocol):
    def exchange(self, token: str, *, author_rpps: str) -> ApcvIdentity: ...


_REFUSALS: dict[str, type[ApcvTokenRefused]] = {
    "token-unknown": ApcvTokenUnknown,
    "token-used": ApcvTokenUsed,
    "token-expired": ApcvTokenExpired,
}


def identity_from_json(data: Any) -> ApcvIdentity:
    """Validate the service's answer; only :class:`MalformedResponse` escapes."""
    try:
        return ApcvIdentity.model_validate(data)
    except (ValidationError, ValueError, TypeError, RecursionError) as exc:
        raise MalformedResponse(f"{SERVICE}: invalid identity ({type(exc).__name__})") from None


def _raise_for_refusal(response: httpx.Response) -> None:
    data = json_or_none(response, SERVICE)
    code = data.get("code") if isinstance(data, dict) else None
    error = _REFUSALS.get(code) if isinstance(code, str) else None
    detail = f"HTTP {response.status_code}"
    raise refusal_error(response, error, detail, not_found=ApcvTokenUnknown)


class ApcvClient(ServiceClient):
    service = SERVICE

    def exchange(self, token: str, *, author_rpps: str) -> ApcvIdentity:
        """Exchange a scanned token once. Refusals raise an :class:`ApcvTokenRefused` subclass."""
        token = token.strip()
        if not token or len(token) > MAX_TOKEN_CHARS or not token.isprintable():
            raise ApcvTokenUnknown("jeton mal formé")
        response = self._http.request(
            "apcv.exchange",
            "POST",
            "/v1/exchange",
            author_rpps=author_rpps,
            idempotent=False,  # single-use token: never resent once it may have left
            json_body={"token": token},
        )
        if response.status_code != 200:
            _raise_for_refusal(response)
        return identity_from_json(decode_json(response, SERVICE))


def _conforms(client: ApcvClient) -> ApcvService:
    return client  # mypy checks that the client keeps the Protocol's shape
