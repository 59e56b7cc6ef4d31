"""Pro Santé Connect client: OpenID Connect, CIBA (counter) and authorization code + PKCE (page).

The provider is found by its discovery document; its signing keys come from its JWKS (fetched
again once when a token names a key id we do not know, which is how providers rotate keys).
Every ID token is verified with joserfc before anything in it is believed: signature by the
provider's keys, issuer, audience (our client id), expiry and issue time (with a small leeway),
the level of authentication (``acr`` = ``eidas1``), and the nonce (code flow) or the
``auth_req_id`` claim (CIBA) that binds it to our request.

Tokens never reach a log line; the shared :class:`NationalHttpClient` traces each call with its
action and status only. The professional identity is returned as a :class:`PscProfessional`;
turning it into a counter session is the service layer's job (``lgo/services/psc_login.py``).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

import httpx

from lgo.domain.professionals import parse_idnat
from lgo.national.errors import MalformedResponse, NationalServiceError, RequestRejected
from lgo.national.transport import NationalHttpClient, decode_json

if TYPE_CHECKING:  # joserfc (~50 ms at import) is loaded when an ID token is first checked
    from joserfc import jwt
    from joserfc.jwk import KeySet

CIBA_GRANT = "urn:openid:params:grant-type:ciba"
AUTH_REQ_CLAIM = "urn:openid:params:jwt:claim:auth_req_id"
ALLOWED_ALGORITHMS = ("ES256", "ES384", "RS256", "PS256")
DEFAULT_SCOPE = "openid scope_all"
STRONG_ACR = "eidas1"  # PSC's level for CPS / e-CPS authentication (substantial, two factors)


# -- errors ---------------------------------------------------------------------------------


class PscError(NationalServiceError):
    slug = "psc-error"
    status = 502
    title = "Erreur de Pro Santé Connect"


class PscLoginRefused(PscError):
    slug = "psc-login-refused"
    status = 403
    title = "Connexion e-CPS refusée sur le téléphone du professionnel"


class PscLoginExpired(PscError):
    slug = "psc-login-expired"
    status = 410
    title = "Demande de connexion e-CPS expirée sans réponse : recommencer"


class PscUnknownProfessional(PscError):
    slug = "psc-unknown-professional"
    status = 404
    title = "Professionnel inconnu de Pro Santé Connect : vérifier le numéro RPPS"


class PscGrantInvalid(PscError):
    slug = "psc-grant-invalid"
    status = 401
    title = "Autorisation Pro Santé Connect expirée ou révoquée : se reconnecter"


class PscTokenInvalid(PscError):
    """An ID token failed verification; ``reason`` says which check (never the token)."""

    slug = "psc-token-invalid"
    status = 502
    title = "Jeton Pro Santé Connect refusé (signature, émetteur, audience ou validité)"

    def __init__(self, reason: str) -> None:
        super().__init__(f"vérification du jeton : {reason}", reason=reason)
        self.reason = reason


# -- data -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProviderMetadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    backchannel_authentication_endpoint: str | None
    revocation_endpoint: str | None
    end_session_endpoint: str | None
    userinfo_endpoint: str | None


@dataclass(frozen=True)
class CibaStart:
    auth_req_id: str = field(repr=False)
    expires_in: int
    interval: int


@dataclass(frozen=True)
class CibaPending:
    """No answer yet. ``slow_down``: we polled too fast; CIBA §11 says add 5 s to the interval."""

    slow_down: bool = False


@dataclass(frozen=True)
class PscProfessional:
    """The professional identity a verified ID token asserts."""

    subject: str
    national_id: str
    rpps: str
    family_name: str
    given_name: str
    profession_code: str
    structure_id: str | None
    structure_name: str | None


@dataclass(frozen=True)
class TokenSet:
    access_token: str
    refresh_token: str | None
    expires_in: int
    professional: PscProfessional

    def __repr__(self) -> str:  # tokens must not leak through a debug print or a traceback
        who = self.professional.national_id
        return f"TokenSet(national_id={who!r}, expires_in={self.expires_in})"


@dataclass(frozen=True)
class PkcePair:
    verifier: str
    challenge: str

    @classmethod
    def generate(cls) -> PkcePair:
        return cls.from_verifier(secrets.token_urlsafe(48))  # 64 chars, within 43..128

    @classmethod
    def from_verifier(cls, verifier: str) -> PkcePair:
        """The S256 challenge of ``verifier`` (RFC 7636 §4.2)."""
        digest = hashlib.sha256(verifier.encode("ascii")).digest()
        challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
        return cls(verifier, challenge)


# -- client -----------------------------------------------------------------------------------


class PscClient:
    """OIDC relying party of the daemon (confidential client, ``client_secret_basic``)."""

    def __init__(
        self,
        http: NationalHttpClient,
        *,
        client_id: str,
        client_secret: str,
        scope: str = DEFAULT_SCOPE,
        leeway_s: int = 30,
        required_acr: str | None = STRONG_ACR,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._http = http
        self.required_acr = required_acr
        self.client_id = client_id
        self._secret = client_secret
        self.scope = scope
        self.leeway_s = leeway_s
        self._clock = clock
        self._lock = threading.Lock()
        self._metadata: ProviderMetadata | None = None
        self._keys: KeySet | None = None

    # -- provider documents -----------------------------------------------------------

    def metadata(self) -> ProviderMetadata:
        with self._lock:
            cached = self._metadata
        if cached is not None:
            return cached
        response = self._http.request(
            "psc_discovery",
            "GET",
            "/.well-known/openid-configuration",
            author_rpps=None,
            idempotent=True,
        )
        body = _json_object(response, ok=200)
        metadata = _parse_metadata(body)
        with self._lock:
            self._metadata = metadata
        return metadata

    def _key_set(self, refresh: bool = False) -> KeySet:
        from joserfc.errors import JoseError
        from joserfc.jwk import KeySet

        with self._lock:
            cached = None if refresh else self._keys
        if cached is not None:
            return cached
        url = self.metadata().jwks_uri
        response = self._http.request("psc_jwks", "GET", url, author_rpps=None, idempotent=True)
        try:
            keys = KeySet.import_key_set(_json_object(response, ok=200))  # type: ignore[arg-type]
        except (JoseError, ValueError, TypeError, KeyError) as exc:
            raise MalformedResponse(f"psc: JWKS unusable ({type(exc).__name__})") from None
        with self._lock:
            self._keys = keys
        return keys

    # -- CIBA ---------------------------------------------------------------------------

    def start_ciba(
        self,
        login_hint: str,
        *,
        binding_message: str | None = None,
        requested_expiry: int | None = None,
    ) -> CibaStart:
        endpoint = self.metadata().backchannel_authentication_endpoint
        if endpoint is None:
            raise PscError("le fournisseur ne propose pas CIBA")
        form = {"scope": self.scope, "login_hint": login_hint}
        if binding_message:
            form["binding_message"] = binding_message
        if requested_expiry is not None:
            form["requested_expiry"] = str(requested_expiry)
        body = self._post_form("psc_ciba_start", endpoint, form, rpps_of(login_hint))
        try:
            return CibaStart(
                auth_req_id=str(body["auth_req_id"]),
                expires_in=int(body["expires_in"]),
                interval=int(body.get("interval", 5)),
            )
        except (KeyError, TypeError, ValueError):
            raise MalformedResponse("psc: CIBA answer without auth_req_id") from None

    def poll_ciba(self, auth_req_id: str) -> TokenSet | CibaPending:
        """Tokens once the professional approved; :class:`CibaPending` while waiting."""
        form = {"grant_type": CIBA_GRANT, "auth_req_id": auth_req_id}
        try:
            body = self._post_form("psc_ciba_poll", self.metadata().token_endpoint, form, None)
        except _OAuthAnswer as answer:
            if answer.error == "authorization_pending":
                return CibaPending(slow_down=False)
            if answer.error == "slow_down":
                return CibaPending(slow_down=True)
            raise
        return self._token_set(body, nonce=None, auth_req_id=auth_req_id)

    # -- authorization code + PKCE ---------------------------------------------------------

    def authorization_url(
        self,
        *,
        redirect_uri: str,
        state: str,
        nonce: str,
        code_challenge: str,
        login_hint: str | None = None,
    ) -> str:
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": redirect_uri,
            "scope": self.scope,
            "state": state,
            "nonce": nonce,
            "code_challenge": code_challenge,
            "code_challenge_method": "S256",
        }
        if login_hint:
            params["login_hint"] = login_hint
        return self.metadata().authorization_endpoint + "?" + urlencode(params)

    def exchange_code(
        self, *, code: str, redirect_uri: str, code_verifier: str, nonce: str
    ) -> TokenSet:
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": code_verifier,
        }
        body = self._post_form("psc_code_exchange", self.metadata().token_endpoint, form, None)
        return self._token_set(body, nonce=nonce, auth_req_id=None)

    # -- refresh and logout --------------------------------------------------------------

    def refresh(self, refresh_token: str, author_rpps: str | None = None) -> TokenSet:
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        body = self._post_form("psc_refresh", self.metadata().token_endpoint, form, author_rpps)
        return self._token_set(body, nonce=None, auth_req_id=None)

    def revoke(self, token: str, author_rpps: str | None = None) -> None:
        """Revoke a refresh token at the provider (RFC 7009); unknown tokens are not an error."""
        endpoint = self.metadata().revocation_endpoint
        if endpoint is None:
            return
        form = {"token": token, "token_type_hint": "refresh_token"}
        self._post_form("psc_revoke", endpoint, form, author_rpps, expect_json=False)

    # -- verification --------------------------------------------------------------------

    def verify_id_token(
        self, id_token: str, *, nonce: str | None, auth_req_id: str | None
    ) -> dict[str, Any]:
        """The claims of a verified ID token; :class:`PscTokenInvalid` with the failed check."""
        token = self._decode(id_token)
        options: dict[str, Any] = {
            "iss": {"essential": True, "value": self.metadata().issuer},
            "aud": {"essential": True, "value": self.client_id},
            "exp": {"essential": True},
            "iat": {"essential": True},
            "sub": {"essential": True},
        }
        if nonce is not None:
            options["nonce"] = {"essential": True, "value": nonce}
        if auth_req_id is not None:
            options[AUTH_REQ_CLAIM] = {"essential": True, "value": auth_req_id}
        if self.required_acr is not None:
            options["acr"] = {"essential": True, "value": self.required_acr}
        from joserfc import jwt
        from joserfc.errors import ExpiredTokenError, InvalidClaimError, MissingClaimError

        registry = jwt.JWTClaimsRegistry(
            now=lambda: int(self._clock()), leeway=self.leeway_s, **options
        )
        try:
            registry.validate(token.claims)
        except ExpiredTokenError:
            raise PscTokenInvalid("expired") from None
        except MissingClaimError as exc:
            raise PscTokenInvalid(f"missing_claim:{exc.claim}") from None
        except InvalidClaimError as exc:
            raise PscTokenInvalid(_claim_reason(exc.claim)) from None
        audiences = token.claims["aud"]
        several = isinstance(audiences, list) and len(audiences) > 1
        if several and token.claims.get("azp") != self.client_id:  # OIDC Core §3.1.3.7
            raise PscTokenInvalid("wrong_audience")
        return dict(token.claims)

    def _decode(self, id_token: str) -> jwt.Token:
        from joserfc import jwt
        from joserfc.errors import (
            BadSignatureError,
            InvalidKeyIdError,
            JoseError,
            UnsupportedAlgorithmError,
        )

        for refresh in (False, True):  # an unknown kid may be a rotated key: fetch JWKS once more
            try:
                return jwt.decode(id_token, self._key_set(refresh), algorithms=ALLOWED_ALGORITHMS)
            except BadSignatureError:
                raise PscTokenInvalid("bad_signature") from None
            except InvalidKeyIdError:
                if refresh:
                    raise PscTokenInvalid("unknown_key") from None
            except UnsupportedAlgorithmError:
                raise PscTokenInvalid("algorithm_not_allowed") from None
            except (JoseError, ValueError):
                raise PscTokenInvalid("malformed") from None
        raise PscTokenInvalid("unknown_key")  # not reached: the second pass returns or raises

    def _token_set(
        self, body: Mapping[str, Any], *, nonce: str | None, auth_req_id: str | None
    ) -> TokenSet:
        id_token = body.get("id_token")
        access_token = body.get("access_token")
        if not isinstance(id_token, str) or not isinstance(access_token, str):
            raise MalformedResponse("psc: token answer without id_token/access_token")
        claims = self.verify_id_token(id_token, nonce=nonce, auth_req_id=auth_req_id)
        if "SubjectRefPro" not in claims:
            claims = self._with_userinfo(claims, access_token)
        refresh_token = body.get("refresh_token")
        return TokenSet(
            access_token=access_token,
            refresh_token=refresh_token if isinstance(refresh_token, str) else None,
            expires_in=_lifetime(body.get("expires_in")),
            professional=professional_from_claims(claims),
        )

    def userinfo(self, access_token: str) -> dict[str, Any]:
        """The professional data of the userinfo endpoint (JSON) for this access token."""
        endpoint = self.metadata().userinfo_endpoint
        if endpoint is None:
            raise PscError("le fournisseur ne publie pas de userinfo")
        response = self._http.request(
            "psc_userinfo",
            "GET",
            endpoint,
            author_rpps=None,
            idempotent=True,
            headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"},
        )
        if response.status_code == 401:
            raise PscGrantInvalid()
        return _json_object(response, ok=200)

    def _with_userinfo(self, claims: dict[str, Any], access_token: str) -> dict[str, Any]:
        """ID token claims completed by userinfo; both must name the same subject
        (OIDC Core §5.3.2), and the verified ID token wins on any claim both carry."""
        info = self.userinfo(access_token)
        if info.get("sub") != claims.get("sub"):
            raise PscTokenInvalid("userinfo_subject_mismatch")
        return {**info, **claims}

    # -- transport -------------------------------------------------------------------------

    def _post_form(
        self,
        action: str,
        url: str,
        form: Mapping[str, str],
        author_rpps: str | None,
        *,
        expect_json: bool = True,
    ) -> dict[str, Any]:
        credentials = base64.b64encode(f"{self.client_id}:{self._secret}".encode()).decode()
        response = self._http.request(
            action,
            "POST",
            url,
            author_rpps=author_rpps,
            idempotent=False,  # token grants are single use: never replay them
            content=urlencode(form).encode("ascii"),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Authorization": f"Basic {credentials}",
                "Accept": "application/json",
            },
        )
        if response.status_code in (400, 401, 403):
            raise _oauth_error(response)
        if not expect_json and response.status_code == 200:
            return {}
        return _json_object(response, ok=200)


class _OAuthAnswer(PscError):
    """An OAuth error answer we did not map to a more precise error."""

    slug = "psc-request-rejected"
    status = 502
    title = "Pro Santé Connect a refusé la demande"

    def __init__(self, error: str) -> None:
        super().__init__(f"erreur OAuth : {error}", oauth_error=error)
        self.error = error


def _oauth_error(response: httpx.Response) -> PscError:
    try:
        body = decode_json(response, "psc")
        error = str(body.get("error", "")) if isinstance(body, dict) else ""
    except MalformedResponse:
        error = ""
    mapped: dict[str, type[PscError]] = {
        "access_denied": PscLoginRefused,
        "expired_token": PscLoginExpired,
        "unknown_user_id": PscUnknownProfessional,
        "invalid_grant": PscGrantInvalid,
    }
    if error in mapped:
        return mapped[error]()
    if error in ("authorization_pending", "slow_down") or error:
        return _OAuthAnswer(error)
    return _OAuthAnswer(f"http_{response.status_code}")


def _lifetime(value: Any) -> int:
    """``expires_in`` of a token answer (RFC 6749 §5.1: seconds, optional): a bad one is malformed."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 2**31:
        raise MalformedResponse("psc: token answer with an invalid expires_in")
    return int(value)


def _json_object(response: httpx.Response, *, ok: int) -> dict[str, Any]:
    if response.status_code != ok:
        raise RequestRejected(f"psc: HTTP {response.status_code}")
    body = decode_json(response, "psc")
    if not isinstance(body, dict):
        raise MalformedResponse("psc: JSON object expected")
    return body


def _parse_metadata(body: Mapping[str, Any]) -> ProviderMetadata:
    def required(name: str) -> str:
        value = body.get(name)
        if not isinstance(value, str) or not value:
            raise MalformedResponse(f"psc: discovery without {name}")
        return value

    def optional(name: str) -> str | None:
        value = body.get(name)
        return value if isinstance(value, str) and value else None

    metadata = ProviderMetadata(
        issuer=required("issuer"),
        authorization_endpoint=required("authorization_endpoint"),
        token_endpoint=required("token_endpoint"),
        jwks_uri=required("jwks_uri"),
        backchannel_authentication_endpoint=optional("backchannel_authentication_endpoint"),
        revocation_endpoint=optional("revocation_endpoint"),
        end_session_endpoint=optional("end_session_endpoint"),
        userinfo_endpoint=optional("userinfo_endpoint"),
    )
    _same_origin(metadata)
    return metadata


def _same_origin(metadata: ProviderMetadata) -> None:
    """Endpoints must live on the issuer's origin: a tampered discovery cannot send our secret
    or tokens elsewhere."""
    origin = urlsplit(metadata.issuer)[:2]
    for url in (
        metadata.authorization_endpoint,
        metadata.token_endpoint,
        metadata.jwks_uri,
        metadata.backchannel_authentication_endpoint,
        metadata.revocation_endpoint,
        metadata.end_session_endpoint,
        metadata.userinfo_endpoint,
    ):
        if url is not None and urlsplit(url)[:2] != origin:
            raise MalformedResponse("psc: discovery endpoint outside the issuer's origin")


def _claim_reason(claim: str) -> str:
    return {
        "aud": "wrong_audience",
        "iss": "wrong_issuer",
        "nonce": "wrong_nonce",
        "iat": "issued_in_future",
        "acr": "weak_authentication",
        AUTH_REQ_CLAIM: "wrong_auth_req_id",
    }.get(claim, f"invalid_claim:{claim}")


def rpps_of(login_hint: str) -> str | None:
    """The RPPS inside an idNat_PS (``8`` + RPPS), for trace lines; ``None`` otherwise."""
    parsed = parse_idnat(login_hint)
    return parsed.number if parsed is not None and parsed.idnat.startswith("8") else None


def professional_from_claims(claims: Mapping[str, Any]) -> PscProfessional:
    """Map PSC claims (``SubjectNameID``/``preferred_username``, ``SubjectRefPro``)."""
    national_id = claims.get("SubjectNameID") or claims.get("preferred_username")
    if not isinstance(national_id, str):
        raise PscTokenInvalid("missing_claim:SubjectNameID")
    parsed = parse_idnat(national_id)
    if parsed is None:
        raise PscTokenInvalid("invalid_national_id")
    exercise, activity = _first_exercise(claims.get("SubjectRefPro"))
    return PscProfessional(
        subject=str(claims.get("sub", "")),
        national_id=national_id,
        rpps=parsed.number,
        family_name=str(exercise.get("nomDexercice") or claims.get("family_name") or ""),
        given_name=str(exercise.get("prenomDexercice") or claims.get("given_name") or ""),
        profession_code=str(exercise.get("codeProfession") or ""),
        structure_id=_str_or_none(activity.get("numeroFinessSite")),
        structure_name=_str_or_none(activity.get("raisonSocialeSite")),
    )


def _first_exercise(ref_pro: object) -> tuple[dict[str, Any], dict[str, Any]]:
    if not isinstance(ref_pro, dict):
        return {}, {}
    exercises = ref_pro.get("exercices")
    if not isinstance(exercises, list) or not exercises or not isinstance(exercises[0], dict):
        return {}, {}
    exercise: dict[str, Any] = exercises[0]
    activities = exercise.get("activities")
    if isinstance(activities, list) and activities and isinstance(activities[0], dict):
        return exercise, activities[0]
    return exercise, {}


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
