"""PscClient against a fake provider (httpx.MockTransport): discovery, JWKS and ID-token checks."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey, RSAKey

from lgo.national.errors import MalformedResponse
from lgo.national.psc import (
    AUTH_REQ_CLAIM,
    CibaPending,
    PkcePair,
    PscClient,
    PscLoginExpired,
    PscLoginRefused,
    PscTokenInvalid,
    TokenSet,
    professional_from_claims,
)
from lgo.national.transport import NationalHttpClient, RetryPolicy

ISSUER = "https://psc.test/auth"
CLIENT_ID = "lgo-officine"
NOW = 1_800_000_000


class FakeProvider:
    """Discovery, JWKS and a token endpoint whose answer each test chooses."""

    def __init__(self) -> None:
        self.key = ECKey.generate_key("P-256", auto_kid=True)
        self.published: list[Any] = [self.key]
        self.discovery: dict[str, Any] = {
            "issuer": ISSUER,
            "authorization_endpoint": f"{ISSUER}/authorize",
            "token_endpoint": f"{ISSUER}/token",
            "jwks_uri": f"{ISSUER}/jwks",
            "backchannel_authentication_endpoint": f"{ISSUER}/bc",
            "revocation_endpoint": f"{ISSUER}/revoke",
            "userinfo_endpoint": f"{ISSUER}/userinfo",
        }
        self.token_answer: tuple[int, dict[str, Any]] = (200, {})
        self.jwks_calls = 0
        self.userinfo_answer: dict[str, Any] = {}
        self.forms: list[dict[str, list[str]]] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/.well-known/openid-configuration"):
            return httpx.Response(200, json=self.discovery)
        if path.endswith("/jwks"):
            self.jwks_calls += 1
            keys = [k.as_dict(private=False) for k in self.published]
            return httpx.Response(200, json={"keys": keys})
        if path.endswith("/userinfo"):
            return httpx.Response(200, json=self.userinfo_answer)
        self.forms.append(parse_qs(request.content.decode()))
        status, body = self.token_answer
        return httpx.Response(status, json=body)

    def id_token(self, key: Any = None, header: dict[str, Any] | None = None, **claims: Any) -> str:
        body: dict[str, Any] = {
            "iss": ISSUER,
            "aud": CLIENT_ID,
            "sub": "f:abc",
            "iat": NOW,
            "exp": NOW + 60,
            "acr": "eidas1",
            "SubjectNameID": "810999999997",
            "SubjectRefPro": {
                "exercices": [
                    {
                        "codeProfession": "21",
                        "nomDexercice": "TESTPHARMA",
                        "prenomDexercice": "ALEX",
                        "activities": [
                            {"numeroFinessSite": "759999999", "raisonSocialeSite": "PH"}
                        ],
                    }
                ]
            },
        }
        body.update(claims)
        body = {k: v for k, v in body.items() if v is not None}
        signing = key or self.key
        kid = getattr(signing, "kid", None) or self.key.kid
        return jwt.encode(header or {"alg": "ES256", "kid": kid}, body, signing)


@pytest.fixture
def provider() -> FakeProvider:
    return FakeProvider()


@pytest.fixture
def client(provider: FakeProvider) -> PscClient:
    http = NationalHttpClient(
        "psc",
        ISSUER,
        transport=httpx.MockTransport(provider.handler),
        retry=RetryPolicy(attempts=1),
        sleep=lambda _: None,
    )
    return PscClient(
        http, client_id=CLIENT_ID, client_secret="s3cret", leeway_s=30, clock=lambda: NOW
    )


def reason(call: Callable[[], object]) -> str:
    with pytest.raises(PscTokenInvalid) as caught:
        call()
    return caught.value.reason


def test_valid_token_gives_the_professional(client: PscClient, provider: FakeProvider) -> None:
    claims = client.verify_id_token(provider.id_token(nonce="n1"), nonce="n1", auth_req_id=None)
    pro = professional_from_claims(claims)
    assert (pro.rpps, pro.national_id, pro.profession_code) == ("10999999997", "810999999997", "21")
    assert (pro.structure_id, pro.family_name) == ("759999999", "TESTPHARMA")


@pytest.mark.parametrize(
    ("claims", "expected"),
    [
        ({"aud": "someone-else"}, "wrong_audience"),
        ({"aud": [CLIENT_ID, "other"]}, "wrong_audience"),  # several audiences without azp
        ({"iss": "https://evil.test"}, "wrong_issuer"),
        ({"exp": NOW - 31}, "expired"),  # beyond the 30 s leeway
        ({"iat": NOW + 120}, "issued_in_future"),
        ({"nonce": "other"}, "wrong_nonce"),
        ({"nonce": None}, "missing_claim:nonce"),
        ({"exp": None}, "missing_claim:exp"),
        ({"acr": "eidas0"}, "weak_authentication"),
        ({"acr": None}, "missing_claim:acr"),
    ],
)
def test_bad_claims_are_refused(
    client: PscClient, provider: FakeProvider, claims: dict[str, Any], expected: str
) -> None:
    base = {"nonce": "n1", **claims}
    token = provider.id_token(**base)
    assert reason(lambda: client.verify_id_token(token, nonce="n1", auth_req_id=None)) == expected


def test_expiry_within_leeway_is_accepted(client: PscClient, provider: FakeProvider) -> None:
    token = provider.id_token(exp=NOW - 10)
    assert client.verify_id_token(token, nonce=None, auth_req_id=None)["sub"] == "f:abc"


def test_several_audiences_with_our_azp_are_accepted(
    client: PscClient, provider: FakeProvider
) -> None:
    token = provider.id_token(aud=[CLIENT_ID, "other"], azp=CLIENT_ID)
    assert client.verify_id_token(token, nonce=None, auth_req_id=None)["azp"] == CLIENT_ID


def test_ciba_token_must_carry_our_auth_req_id(client: PscClient, provider: FakeProvider) -> None:
    token = provider.id_token(**{AUTH_REQ_CLAIM: "req-1"})
    assert client.verify_id_token(token, nonce=None, auth_req_id="req-1")
    assert (
        reason(lambda: client.verify_id_token(token, nonce=None, auth_req_id="req-2"))
        == "wrong_auth_req_id"
    )


def test_signature_by_another_key_with_the_same_kid(
    client: PscClient, provider: FakeProvider
) -> None:
    impostor = ECKey.generate_key("P-256", parameters={"kid": provider.key.kid or ""})
    token = provider.id_token(key=impostor)
    assert reason(lambda: client.verify_id_token(token, nonce=None, auth_req_id=None)) == (
        "bad_signature"
    )


def test_symmetric_or_unsigned_tokens_are_refused(
    client: PscClient, provider: FakeProvider
) -> None:
    hs = provider.id_token(key=OctKey.generate_key(256), header={"alg": "HS256"})
    assert reason(lambda: client.verify_id_token(hs, nonce=None, auth_req_id=None)) == (
        "algorithm_not_allowed"
    )
    assert reason(lambda: client.verify_id_token("a.b.c", nonce=None, auth_req_id=None)) == (
        "malformed"
    )
    unsigned = _b64({"alg": "none"}) + "." + _b64({"sub": "x"}) + "."
    assert reason(lambda: client.verify_id_token(unsigned, nonce=None, auth_req_id=None)) in (
        "algorithm_not_allowed",
        "malformed",
    )


def test_rotated_key_is_fetched_once_then_unknown_is_refused(
    client: PscClient, provider: FakeProvider
) -> None:
    client.verify_id_token(provider.id_token(), nonce=None, auth_req_id=None)
    assert provider.jwks_calls == 1
    new_key = RSAKey.generate_key(2048, auto_kid=True)
    provider.published = [new_key]
    token = provider.id_token(key=new_key, header={"alg": "RS256", "kid": new_key.kid})
    assert client.verify_id_token(token, nonce=None, auth_req_id=None)
    assert provider.jwks_calls == 2
    stranger = ECKey.generate_key("P-256", auto_kid=True)
    foreign = provider.id_token(key=stranger)
    assert reason(lambda: client.verify_id_token(foreign, nonce=None, auth_req_id=None)) == (
        "unknown_key"
    )
    assert provider.jwks_calls == 3  # one refetch per unknown kid, no loop


def test_discovery_pointing_elsewhere_is_refused(client: PscClient, provider: FakeProvider) -> None:
    provider.discovery["token_endpoint"] = "https://collector.evil/token"
    with pytest.raises(MalformedResponse):
        client.metadata()


def test_discovery_without_jwks_is_malformed(client: PscClient, provider: FakeProvider) -> None:
    del provider.discovery["jwks_uri"]
    with pytest.raises(MalformedResponse):
        client.metadata()


@pytest.mark.parametrize(
    ("error", "raised"),
    [
        ("access_denied", PscLoginRefused),
        ("expired_token", PscLoginExpired),
    ],
)
def test_ciba_poll_errors_are_typed(
    client: PscClient, provider: FakeProvider, error: str, raised: type[Exception]
) -> None:
    provider.token_answer = (400, {"error": error})
    with pytest.raises(raised):
        client.poll_ciba("req-1")


@pytest.mark.parametrize(("error", "slow"), [("authorization_pending", False), ("slow_down", True)])
def test_ciba_pending(client: PscClient, provider: FakeProvider, error: str, slow: bool) -> None:
    provider.token_answer = (400, {"error": error})
    assert client.poll_ciba("req-1") == CibaPending(slow_down=slow)


def test_ciba_poll_sends_the_grant_and_verifies(client: PscClient, provider: FakeProvider) -> None:
    token = provider.id_token(**{AUTH_REQ_CLAIM: "req-1"})
    provider.token_answer = (
        200,
        {
            "id_token": token,
            "access_token": "ACCESS-SECRET",
            "expires_in": 60,
            "refresh_token": "REFRESH-SECRET",
        },
    )
    tokens = client.poll_ciba("req-1")
    assert isinstance(tokens, TokenSet)
    assert tokens.professional.rpps == "10999999997"
    assert provider.forms[-1]["grant_type"] == ["urn:openid:params:grant-type:ciba"]
    assert "SECRET" not in repr(tokens)  # a debug print or traceback never shows a token


def test_token_answer_without_id_token_is_malformed(
    client: PscClient, provider: FakeProvider
) -> None:
    provider.token_answer = (200, {"access_token": "at"})
    with pytest.raises(MalformedResponse):
        client.poll_ciba("req-1")


def test_claims_without_a_valid_national_id_are_refused() -> None:
    with pytest.raises(PscTokenInvalid):
        professional_from_claims({"sub": "x", "SubjectNameID": "810999999998"})
    with pytest.raises(PscTokenInvalid):
        professional_from_claims({"sub": "x"})


def test_pkce_s256_matches_rfc7636_appendix_b() -> None:
    pair = PkcePair.from_verifier("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
    assert pair.challenge == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    generated = PkcePair.generate()
    assert 43 <= len(generated.verifier) <= 128
    assert PkcePair.from_verifier(generated.verifier) == generated


def _b64(value: dict[str, Any]) -> str:
    import base64

    raw = json.dumps(value).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_userinfo_must_name_the_same_subject(client: PscClient, provider: FakeProvider) -> None:
    token = provider.id_token(SubjectRefPro=None, SubjectNameID=None, **{AUTH_REQ_CLAIM: "r"})
    provider.token_answer = (200, {"id_token": token, "access_token": "at"})
    provider.userinfo_answer = {"sub": "f:someone-else", "SubjectNameID": "810999999989"}
    assert reason(lambda: client.poll_ciba("r")) == "userinfo_subject_mismatch"

    provider.userinfo_answer = {
        "sub": "f:abc",
        "SubjectNameID": "810999999989",
        "SubjectRefPro": {"exercices": [{"codeProfession": "21"}]},
    }
    tokens = client.poll_ciba("r")
    assert isinstance(tokens, TokenSet)
    assert tokens.professional.rpps == "10999999989"


@pytest.mark.parametrize("expires_in", ["soon", {"s": 60}, [60], -5])
def test_token_answer_with_a_bad_lifetime_is_malformed(
    client: PscClient, provider: FakeProvider, expires_in: object
) -> None:
    token = provider.id_token(**{AUTH_REQ_CLAIM: "req-1"})
    provider.token_answer = (
        200,
        {"id_token": token, "access_token": "at", "expires_in": expires_in},
    )
    with pytest.raises(MalformedResponse):
        client.poll_ciba("req-1")
