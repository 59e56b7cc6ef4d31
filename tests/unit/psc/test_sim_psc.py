"""The PSC simulator's provider logic, without HTTP."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest

from hwsim.national.context import DEFAULT_FIXTURES
from hwsim.national.psc import OAuthError, PscProvider, _pkce_s256


@pytest.fixture
def provider() -> PscProvider:
    fixture = json.loads((DEFAULT_FIXTURES / "psc.json").read_text(encoding="utf-8"))
    return PscProvider(fixture, clock=lambda: 1_000.0)


def test_pkce_s256_rfc7636_vector() -> None:
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert _pkce_s256(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_authorize_refuses_a_redirect_off_this_machine(provider: PscProvider) -> None:
    with pytest.raises(OAuthError):
        provider.authorize({"client_id": "lgo-officine", "redirect_uri": "https://evil.test/cb"})


def test_authorize_without_pkce_is_an_error_redirect(provider: PscProvider) -> None:
    location = provider.authorize(
        {
            "client_id": "lgo-officine",
            "redirect_uri": "http://127.0.0.1/cb",
            "state": "s",
            "response_type": "code",
            "scope": "openid",
        }
    )
    assert parse_qs(urlsplit(location).query) == {"error": ["invalid_request"], "state": ["s"]}


def test_decide_only_touches_the_named_user(provider: PscProvider) -> None:
    a = provider.start_ciba("lgo-officine", {"scope": "openid", "login_hint": "810999999955"})
    b = provider.start_ciba("lgo-officine", {"scope": "openid", "login_hint": "810999999963"})
    assert provider.decide("refuse", "810999999955", None) == [a["auth_req_id"]]
    assert [p["auth_req_id"] for p in provider.pending()] == [b["auth_req_id"]]


def test_every_fixture_user_has_a_valid_national_id(provider: PscProvider) -> None:
    from lgo.domain.professionals import parse_idnat

    assert all(parse_idnat(idnat) is not None for idnat in provider.users)


def test_annuaire_fixture_numbers_are_valid_and_cover_the_prescription_fixtures() -> None:
    from lgo.domain.professionals import is_valid_rpps

    annuaire = json.loads((DEFAULT_FIXTURES / "annuaire.json").read_text(encoding="utf-8"))
    listed = {p["rpps"] for p in annuaire["practitioners"]}
    assert all(is_valid_rpps(rpps) for rpps in listed)
    assert "10999990053" not in listed  # kept unknown on purpose
    prescriptions = json.loads((DEFAULT_FIXTURES / "eprescriptions.json").read_text("utf-8"))
    assert {p["rpps"] for p in prescriptions["prescribers"].values()} <= listed
