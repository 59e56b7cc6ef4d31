"""Pro Santé Connect simulator: an OpenID provider for the counter and the page.

Mounted under ``/psc``. It serves the discovery document, the JWKS, CIBA in poll mode
(``/bc-authorize`` then ``/token`` with the CIBA grant), authorization code + PKCE
(``/authorize`` answers at once with a redirect: there is no login page here), refresh,
revocation, userinfo and an end-session endpoint. Tokens are ES256 JWTs signed with a key
generated when the simulator starts (kept across ``/_sim/reset``). Time is the simulator clock.
Fixture: ``fixtures/national/psc.json``; ``create_app(psc_ciba_interval=0)`` removes the polling
interval for fast tests; ``psc_minimal_id_token=True`` puts only ``sub`` in ID tokens (the
professional data then comes from ``/userinfo``, as with the real provider).

What a CIBA request does is chosen by the user's fixture (``approve``, ``refuse``,
``timeout``: never answered, ``manual``: waits) or by a control call:
``POST /_sim/psc/ciba/decide`` (approve, refuse or expire the pending request of a user;
``GET /_sim/psc/ciba`` lists them). ``POST /_sim/psc/tokens/next`` spoils the next ID token
(bad signature, wrong audience, wrong issuer, expired, wrong nonce) so that clients can prove
they refuse it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from joserfc import jwt
from joserfc.jwk import ECKey
from pydantic import BaseModel

from hwsim.national.context import ServiceMount, SimDep, SimState

CIBA_GRANT = "urn:openid:params:grant-type:ciba"
AUTH_REQ_CLAIM = "urn:openid:params:jwt:claim:auth_req_id"
MAX_FORM_BYTES = 16_384

CibaBehaviour = Literal["approve", "refuse", "timeout", "manual"]
CibaStatus = Literal["pending", "approved", "refused", "expired", "consumed"]
TokenSpoil = Literal["bad_signature", "wrong_audience", "wrong_issuer", "expired", "wrong_nonce"]


class OAuthError(Exception):
    """An OAuth 2.0 error answer (RFC 6749 §5.2)."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(error)
        self.error = error
        self.description = description
        self.status = status

    def response(self) -> JSONResponse:
        body = {"error": self.error, "error_description": self.description}
        return JSONResponse(body, status_code=self.status, headers={"Cache-Control": "no-store"})


@dataclass
class PscUser:
    idnat: str
    civility: str
    given_name: str
    family_name: str
    profession: str
    category: str
    ciba: CibaBehaviour
    activities: list[dict[str, str]]


@dataclass
class CibaRequest:
    auth_req_id: str
    user: PscUser
    client_id: str
    scope: str
    expires_at: float
    interval: int
    binding_message: str | None
    pending_polls: int
    status: CibaStatus = "pending"
    last_poll: float | None = None


@dataclass
class AuthCode:
    user: PscUser
    client_id: str
    redirect_uri: str
    nonce: str | None
    code_challenge: str
    scope: str
    expires_at: float
    used: bool = False


@dataclass
class RefreshGrant:
    user: PscUser
    client_id: str
    scope: str
    expires_at: float


@dataclass
class ProviderState:
    ciba: dict[str, CibaRequest] = field(default_factory=dict)
    codes: dict[str, AuthCode] = field(default_factory=dict)
    refresh: dict[str, RefreshGrant] = field(default_factory=dict)
    access: dict[str, PscUser] = field(default_factory=dict)
    spoils: list[TokenSpoil] = field(default_factory=list)


def _user(raw: dict[str, Any]) -> PscUser:
    return PscUser(
        idnat=raw["idnat"],
        civility=raw.get("civility", ""),
        given_name=raw["given_name"],
        family_name=raw["family_name"],
        profession=raw["profession"],
        category=raw.get("category", "C"),
        ciba=raw.get("ciba", "approve"),
        activities=list(raw.get("activities", [])),
    )


def _pkce_s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class PscProvider:
    """The provider's keys, fixture and in-memory state (thread-safe)."""

    def __init__(self, fixture: dict[str, Any], clock: Callable[[], float] = time.time) -> None:
        self.fixture = fixture
        self.clock = clock
        self.key = ECKey.generate_key("P-256", auto_kid=True)
        self.users = {u["idnat"]: _user(u) for u in fixture["users"]}
        self.clients = {c["client_id"]: c["client_secret"] for c in fixture["clients"]}
        self._lock = threading.Lock()
        self.state = ProviderState()

    def reset(self) -> None:
        with self._lock:
            self.state = ProviderState()

    # -- keys and documents -------------------------------------------------------------

    def jwks(self) -> dict[str, Any]:
        public = self.key.as_dict(private=False)
        public.update({"use": "sig", "alg": "ES256"})
        return {"keys": [public]}

    def discovery(self, issuer: str) -> dict[str, Any]:
        return {
            "issuer": issuer,
            "authorization_endpoint": f"{issuer}/authorize",
            "token_endpoint": f"{issuer}/token",
            "userinfo_endpoint": f"{issuer}/userinfo",
            "jwks_uri": f"{issuer}/jwks",
            "revocation_endpoint": f"{issuer}/revoke",
            "end_session_endpoint": f"{issuer}/logout",
            "backchannel_authentication_endpoint": f"{issuer}/bc-authorize",
            "backchannel_token_delivery_modes_supported": ["poll"],
            "backchannel_user_code_parameter_supported": False,
            "grant_types_supported": ["authorization_code", "refresh_token", CIBA_GRANT],
            "response_types_supported": ["code"],
            "scopes_supported": ["openid", "scope_all"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": ["sub", "preferred_username", "SubjectNameID", "SubjectRefPro"],
        }

    # -- client authentication ----------------------------------------------------------

    def authenticate_client(self, request: Request, form: dict[str, str]) -> str:
        client_id, secret = form.get("client_id"), form.get("client_secret")
        header = request.headers.get("authorization", "")
        if header.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(header[6:]).decode("utf-8")
            except (ValueError, UnicodeDecodeError):
                raise OAuthError("invalid_client", "bad basic header", 401) from None
            client_id, _, secret = decoded.partition(":")
        expected = self.clients.get(client_id or "")
        if expected is None or secret is None or not secrets.compare_digest(expected, secret):
            raise OAuthError("invalid_client", "unknown client or bad secret", 401)
        assert client_id is not None
        return client_id

    # -- CIBA ---------------------------------------------------------------------------

    def start_ciba(self, client_id: str, form: dict[str, str]) -> dict[str, Any]:
        scope = form.get("scope", "")
        if "openid" not in scope.split():
            raise OAuthError("invalid_scope", "scope must contain openid")
        user = self.users.get(form.get("login_hint", ""))
        if user is None:
            raise OAuthError("unknown_user_id", "no such professional")
        settings = self.fixture["ciba"]
        expires_in = int(settings["expires_in"])
        if "requested_expiry" in form:
            expires_in = max(1, min(expires_in, int(form["requested_expiry"])))
        request = CibaRequest(
            auth_req_id=secrets.token_urlsafe(24),
            user=user,
            client_id=client_id,
            scope=scope,
            expires_at=self.clock() + expires_in,
            interval=int(settings["interval"]),
            binding_message=form.get("binding_message"),
            pending_polls=int(settings["pending_polls"]),
        )
        with self._lock:
            self.state.ciba[request.auth_req_id] = request
        return {
            "auth_req_id": request.auth_req_id,
            "expires_in": expires_in,
            "interval": request.interval,
        }

    def poll_ciba(self, client_id: str, issuer: str, auth_req_id: str) -> dict[str, Any]:
        with self._lock:
            request = self.state.ciba.get(auth_req_id)
            if request is None or request.client_id != client_id:
                raise OAuthError("invalid_grant", "unknown auth_req_id")
            now = self.clock()
            too_soon = request.last_poll is not None and now - request.last_poll < request.interval
            request.last_poll = now
            if too_soon and request.status == "pending":
                raise OAuthError("slow_down", "polled before the interval")
            self._advance(request)
            if request.status == "pending":
                raise OAuthError("authorization_pending", "waiting for the professional")
            if request.status == "refused":
                raise OAuthError("access_denied", "the professional refused")
            if request.status == "expired":
                raise OAuthError("expired_token", "the request expired")
            if request.status == "consumed":
                raise OAuthError("invalid_grant", "auth_req_id already used")
            request.status = "consumed"
        extra = {AUTH_REQ_CLAIM: auth_req_id}
        return self.issue_tokens(request.user, client_id, issuer, request.scope, None, extra)

    def _advance(self, request: CibaRequest) -> None:
        """Move a pending request along its fixture behaviour, one poll at a time."""
        if request.status != "pending":
            return
        if self.clock() >= request.expires_at:
            request.status = "expired"
            return
        if request.pending_polls > 0:
            request.pending_polls -= 1
            return
        if request.user.ciba == "approve":
            request.status = "approved"
        elif request.user.ciba == "refuse":
            request.status = "refused"

    def decide(self, decision: str, login_hint: str | None, auth_req_id: str | None) -> list[str]:
        """Apply a technician's decision to the matching pending CIBA requests."""
        outcomes: dict[str, CibaStatus] = {"approve": "approved", "refuse": "refused"}
        target = outcomes.get(decision, "expired")
        changed: list[str] = []
        with self._lock:
            for request in self.state.ciba.values():
                if request.status != "pending":
                    continue
                if auth_req_id is not None and request.auth_req_id != auth_req_id:
                    continue
                if login_hint is not None and request.user.idnat != login_hint:
                    continue
                request.status = target
                changed.append(request.auth_req_id)
        return changed

    def pending(self) -> list[dict[str, Any]]:
        with self._lock:
            return [
                {
                    "auth_req_id": r.auth_req_id,
                    "login_hint": r.user.idnat,
                    "binding_message": r.binding_message,
                    "expires_in": max(0, int(r.expires_at - self.clock())),
                }
                for r in self.state.ciba.values()
                if r.status == "pending"
            ]

    # -- authorization code + PKCE -----------------------------------------------------

    def authorize(self, params: dict[str, str]) -> str:
        """Validate an authorization request; return the redirect location."""
        client_id = params.get("client_id", "")
        redirect_uri = params.get("redirect_uri", "")
        if client_id not in self.clients or not _loopback_uri(redirect_uri):
            raise OAuthError("invalid_request", "unknown client or redirect_uri")
        state = params.get("state", "")
        user = self.users.get(params.get("login_hint") or self.fixture["default_user"])
        if params.get("response_type") != "code" or params.get("code_challenge_method") != "S256":
            return _redirect(redirect_uri, error="invalid_request", state=state)
        if not params.get("code_challenge") or "openid" not in params.get("scope", "").split():
            return _redirect(redirect_uri, error="invalid_request", state=state)
        if user is None or user.ciba == "refuse":
            return _redirect(redirect_uri, error="access_denied", state=state)
        code = secrets.token_urlsafe(24)
        with self._lock:
            self.state.codes[code] = AuthCode(
                user=user,
                client_id=client_id,
                redirect_uri=redirect_uri,
                nonce=params.get("nonce"),
                code_challenge=params["code_challenge"],
                scope=params["scope"],
                expires_at=self.clock() + int(self.fixture["code_ttl"]),
            )
        return _redirect(redirect_uri, code=code, state=state)

    def redeem_code(self, client_id: str, issuer: str, form: dict[str, str]) -> dict[str, Any]:
        with self._lock:
            grant = self.state.codes.get(form.get("code", ""))
            if grant is None or grant.used or grant.client_id != client_id:
                raise OAuthError("invalid_grant", "unknown or used code")
            grant.used = True  # single use, even when the checks below fail
            if self.clock() >= grant.expires_at:
                raise OAuthError("invalid_grant", "code expired")
            if form.get("redirect_uri") != grant.redirect_uri:
                raise OAuthError("invalid_grant", "redirect_uri mismatch")
            verifier = form.get("code_verifier", "")
            challenge = _pkce_s256(verifier) if verifier else ""
            if not secrets.compare_digest(challenge, grant.code_challenge):
                raise OAuthError("invalid_grant", "PKCE verification failed")
        return self.issue_tokens(grant.user, client_id, issuer, grant.scope, grant.nonce, {})

    # -- refresh, revocation, userinfo --------------------------------------------------

    def refresh(self, client_id: str, issuer: str, token: str) -> dict[str, Any]:
        with self._lock:
            grant = self.state.refresh.pop(token, None)  # rotation: the old one dies
        if grant is None or grant.client_id != client_id or self.clock() >= grant.expires_at:
            raise OAuthError("invalid_grant", "unknown, expired or revoked refresh token")
        return self.issue_tokens(grant.user, client_id, issuer, grant.scope, None, {})

    def revoke(self, token: str) -> None:
        with self._lock:
            self.state.refresh.pop(token, None)
            self.state.access.pop(token, None)

    def userinfo(self, access_token: str) -> dict[str, Any] | None:
        with self._lock:
            user = self.state.access.get(access_token)
        return None if user is None else self.professional_claims(user)

    # -- tokens -------------------------------------------------------------------------

    def professional_claims(self, user: PscUser) -> dict[str, Any]:
        exercise = {
            "codeProfession": user.profession,
            "codeCategorieProfessionnelle": user.category,
            "codeCivilite": user.civility,
            "nomDexercice": user.family_name,
            "prenomDexercice": user.given_name,
            "activities": [
                {
                    "codeModeExercice": a.get("mode", ""),
                    "codeSecteurDactivite": a.get("sector", ""),
                    "codeRole": a.get("role", ""),
                    "numeroFinessSite": a.get("finess", ""),
                    "raisonSocialeSite": a.get("organization", ""),
                }
                for a in user.activities
            ],
        }
        return {
            "sub": "f:sim:" + hashlib.sha256(user.idnat.encode()).hexdigest()[:24],
            "preferred_username": user.idnat,
            "SubjectNameID": user.idnat,
            "given_name": user.given_name,
            "family_name": user.family_name,
            "SubjectRefPro": {"codeCivilite": user.civility, "exercices": [exercise]},
        }

    def add_spoil(self, spoil: TokenSpoil) -> None:
        with self._lock:
            self.state.spoils.append(spoil)

    def _next_spoil(self) -> TokenSpoil | None:
        with self._lock:
            return self.state.spoils.pop(0) if self.state.spoils else None

    def issue_tokens(
        self,
        user: PscUser,
        client_id: str,
        issuer: str,
        scope: str,
        nonce: str | None,
        extra: dict[str, Any],
    ) -> dict[str, Any]:
        now = int(self.clock())
        access_ttl = int(self.fixture["access_token_ttl"])
        access_token = self._sign(
            {
                "iss": issuer,
                "sub": user.idnat,
                "aud": issuer,
                "iat": now,
                "exp": now + access_ttl,
                "scope": scope,
                "jti": secrets.token_urlsafe(12),
            },
            self.key,
        )
        refresh_token = secrets.token_urlsafe(32)
        with self._lock:
            self.state.access[access_token] = user
            self.state.refresh[refresh_token] = RefreshGrant(
                user, client_id, scope, now + int(self.fixture["refresh_token_ttl"])
            )
        claims = self.professional_claims(user)
        if self.fixture.get("minimal_id_token"):
            # Like the real PSC: the ID token names the subject; the professional data comes
            # from the userinfo endpoint.
            claims = {"sub": claims["sub"]}
        claims.update(extra)
        claims.update(
            {
                "iss": issuer,
                "aud": client_id,
                "iat": now,
                "auth_time": now,
                "exp": now + int(self.fixture["id_token_ttl"]),
                "acr": "eidas1",
            }
        )
        if nonce is not None:
            claims["nonce"] = nonce
        return {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": access_ttl,
            "refresh_token": refresh_token,
            "id_token": self._spoiled_id_token(claims),
            "scope": scope,
        }

    def _spoiled_id_token(self, claims: dict[str, Any]) -> str:
        spoil = self._next_spoil()
        key = self.key
        if spoil == "bad_signature":
            # Same kid, other key: only a signature check tells them apart.
            key = ECKey.generate_key("P-256", parameters={"kid": self.key.kid or ""})
        elif spoil == "wrong_audience":
            claims["aud"] = "another-client"
        elif spoil == "wrong_issuer":
            claims["iss"] = "https://impostor.invalid/psc"
        elif spoil == "expired":
            claims["iat"] = claims["auth_time"] = claims["iat"] - 3600
            claims["exp"] = claims["iat"] + 60
        elif spoil == "wrong_nonce":
            claims["nonce"] = "not-the-nonce-you-sent"
        return self._sign(claims, key)

    def _sign(self, claims: dict[str, Any], key: ECKey) -> str:
        return jwt.encode({"alg": "ES256", "kid": self.key.kid or ""}, claims, key)


def _loopback_uri(uri: str) -> bool:
    return uri.startswith(("http://127.0.0.1", "http://localhost", "http://[::1]"))


def _redirect(uri: str, **params: str) -> str:
    separator = "&" if "?" in uri else "?"
    return uri + separator + urlencode({k: v for k, v in params.items() if v})


async def _form(request: Request) -> dict[str, str]:
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise OAuthError("invalid_request", "body too large")
    parsed = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=False)
    return {k: v[0] for k, v in parsed.items()}


def _issuer(request: Request) -> str:
    discovery_url = str(request.url_for("psc_discovery"))
    return discovery_url.removesuffix("/.well-known/openid-configuration")


NAME = "psc"
FIXTURE_FILE = "psc.json"

router = APIRouter(tags=["Pro Santé Connect"])
control = APIRouter(tags=["Pro Santé Connect control"])


def setup(sim: SimState) -> None:
    """(Re)build the provider from fixtures; the signing key survives a reset (clients cache it)."""
    fixture = json.loads((sim.fixtures_dir / FIXTURE_FILE).read_text(encoding="utf-8"))
    if "psc_ciba_interval" in sim.settings:
        fixture["ciba"]["interval"] = sim.settings["psc_ciba_interval"]
    if "psc_minimal_id_token" in sim.settings:
        fixture["minimal_id_token"] = bool(sim.settings["psc_minimal_id_token"])
    previous = sim.stores.get(NAME)
    provider = PscProvider(fixture, clock=lambda: sim.clock.now().timestamp())
    if isinstance(previous, PscProvider):
        provider.key = previous.key
    sim.stores[NAME] = provider


def provider_of(sim: SimState) -> PscProvider:
    provider: PscProvider = sim.stores[NAME]
    return provider


@router.get("/.well-known/openid-configuration", name="psc_discovery")
def discovery(sim: SimDep, request: Request) -> dict[str, Any]:
    return provider_of(sim).discovery(_issuer(request))


@router.get("/jwks")
def jwks(sim: SimDep) -> dict[str, Any]:
    return provider_of(sim).jwks()


@router.post("/bc-authorize")
async def backchannel_authorize(sim: SimDep, request: Request) -> Response:
    provider = provider_of(sim)
    try:
        form = await _form(request)
        client_id = provider.authenticate_client(request, form)
        return JSONResponse(provider.start_ciba(client_id, form))
    except OAuthError as exc:
        return exc.response()


@router.post("/token")
async def token(sim: SimDep, request: Request) -> Response:
    provider = provider_of(sim)
    try:
        form = await _form(request)
        client_id = provider.authenticate_client(request, form)
        issuer = _issuer(request)
        grant_type = form.get("grant_type")
        if grant_type == CIBA_GRANT:
            body = provider.poll_ciba(client_id, issuer, form.get("auth_req_id", ""))
        elif grant_type == "authorization_code":
            body = provider.redeem_code(client_id, issuer, form)
        elif grant_type == "refresh_token":
            body = provider.refresh(client_id, issuer, form.get("refresh_token", ""))
        else:
            raise OAuthError("unsupported_grant_type", "grant type not supported")
        return JSONResponse(body, headers={"Cache-Control": "no-store"})
    except OAuthError as exc:
        return exc.response()


@router.get("/authorize")
def authorize(sim: SimDep, request: Request) -> Response:
    params = dict(request.query_params)
    try:
        return RedirectResponse(provider_of(sim).authorize(params), status_code=302)
    except OAuthError as exc:
        return exc.response()


@router.get("/userinfo")
def userinfo(sim: SimDep, request: Request) -> Response:
    header = request.headers.get("authorization", "")
    bearer = header[7:] if header.lower().startswith("bearer ") else None
    claims = provider_of(sim).userinfo(bearer) if bearer else None
    if claims is None:
        return JSONResponse({"error": "invalid_token"}, status_code=401)
    return JSONResponse(claims)


@router.post("/revoke")
async def revoke(sim: SimDep, request: Request) -> Response:
    provider = provider_of(sim)
    try:
        form = await _form(request)
        provider.authenticate_client(request, form)
    except OAuthError as exc:
        return exc.response()
    provider.revoke(form.get("token", ""))
    return Response(status_code=200)  # RFC 7009: 200 even for unknown tokens


@router.get("/logout")
def end_session(request: Request) -> Response:
    target = request.query_params.get("post_logout_redirect_uri", "")
    if _loopback_uri(target):
        return RedirectResponse(target, status_code=302)
    return JSONResponse({"logged_out": True})


class Decision(BaseModel):
    decision: Literal["approve", "refuse", "expire"]
    login_hint: str | None = None
    auth_req_id: str | None = None


class Spoil(BaseModel):
    spoil: TokenSpoil


@control.get("/ciba")
def sim_pending(sim: SimDep) -> list[dict[str, Any]]:
    """Pending CIBA requests (what the professional's phone would show)."""
    return provider_of(sim).pending()


@control.post("/ciba/decide")
def sim_decide(sim: SimDep, decision: Decision) -> dict[str, list[str]]:
    """The technician approves, refuses or expires pending requests (of one user, or all)."""
    changed = provider_of(sim).decide(decision.decision, decision.login_hint, decision.auth_req_id)
    return {"changed": changed}


@control.post("/tokens/next")
def sim_spoil_next(sim: SimDep, spoil: Spoil) -> dict[str, str]:
    """Spoil the next ID token issued (one-shot; several calls queue several spoils)."""
    provider_of(sim).add_spoil(spoil.spoil)
    return {"queued": spoil.spoil}


@control.get("/state")
def sim_state(sim: SimDep) -> dict[str, int]:
    """Counts only (never tokens): live refresh grants, access tokens, CIBA requests."""
    state = provider_of(sim).state
    return {
        "refresh_grants": len(state.refresh),
        "access_tokens": len(state.access),
        "ciba_requests": len(state.ciba),
    }


mount = ServiceMount(NAME, "/psc", router, setup, control)
