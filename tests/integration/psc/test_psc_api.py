"""The daemon's API for e-CPS sign-in and prescriber checks, against the live simulator."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.fixtures.api import ApiHarness
from tests.integration.psc.conftest import (
    PHARMACIST,
    REFUSER,
    LiveSim,
    spoil_next_token,
)

pytestmark = pytest.mark.integration

BASE = "/v1/cps/session/psc"


def sign_in(api: ApiHarness, rpps: str) -> dict[str, Any]:
    started = api.client.post(f"{BASE}/ciba", json={"login_hint": rpps})
    assert started.status_code == 202, started.text
    login_id = started.json()["login_id"]
    for _ in range(20):  # the simulator answers "pending" once, then decides
        answer = api.client.post(f"{BASE}/ciba/{login_id}/poll")
        if answer.status_code != 200 or answer.json()["status"] != "pending":
            return {"status_code": answer.status_code, **answer.json()}
    raise AssertionError("still pending")


def test_ciba_sign_in_opens_the_ecps_session(api_psc: ApiHarness, live_sim: LiveSim) -> None:
    outcome = sign_in(api_psc, PHARMACIST)

    assert outcome["status"] == "approved"
    session = outcome["session"]
    assert session["kind"] == "ecps"
    assert session["professional"]["rpps"] == PHARMACIST
    assert session["professional"]["profession_code"] == "21"
    current = api_psc.container.sessions.current()
    assert current is not None and current.id == session["id"]
    types = [e.type for e in api_psc.container.events.recent()]
    assert "session.opened" in types
    ciba_calls = [r for r in live_sim.recorded("psc") if r.path.endswith("/bc-authorize")]
    assert len(ciba_calls) == 1


def test_binding_message_defaults_to_the_counter_name(
    api_psc: ApiHarness, live_sim: LiveSim
) -> None:
    api_psc.client.post(f"{BASE}/ciba", json={"login_hint": "10999999955"})  # manual user
    pending = httpx.get(f"{live_sim.base_url}/_sim/psc/ciba").json()
    assert pending[0]["binding_message"] == "comptoir-1"


def test_refusal_is_a_problem_document(api_psc: ApiHarness) -> None:
    outcome = sign_in(api_psc, REFUSER)
    assert outcome["status_code"] == 403
    assert outcome["type"] == "urn:lgo:problem:psc-login-refused"
    assert api_psc.container.sessions.current() is None


def test_spoiled_token_is_refused_with_its_reason(api_psc: ApiHarness, live_sim: LiveSim) -> None:
    spoil_next_token(live_sim, "wrong_audience")
    outcome = sign_in(api_psc, PHARMACIST)
    assert outcome["status_code"] == 502
    assert outcome["type"] == "urn:lgo:problem:psc-token-invalid"
    assert outcome["reason"] == "wrong_audience"
    assert api_psc.container.sessions.current() is None


def test_bad_rpps_is_refused_before_any_call(api_psc: ApiHarness, live_sim: LiveSim) -> None:
    answer = api_psc.client.post(f"{BASE}/ciba", json={"login_hint": "10999999998"})
    assert answer.status_code == 422
    assert answer.json()["type"] == "urn:lgo:problem:invalid-input"
    assert live_sim.recorded("psc") == []


def test_sign_in_needs_the_counter_token(api_psc: ApiHarness) -> None:
    answer = api_psc.client.post(
        f"{BASE}/ciba", json={"login_hint": PHARMACIST}, headers={"Authorization": ""}
    )
    assert answer.status_code == 401


def test_page_sign_in_with_code_and_pkce(api_psc: ApiHarness) -> None:
    started = api_psc.client.post(f"{BASE}/authorize", json={"login_hint": PHARMACIST})
    assert started.status_code == 200
    url = started.json()["authorization_url"]
    redirect = httpx.get(url, follow_redirects=False)  # what the browser does
    back = {k: v[0] for k, v in parse_qs(urlsplit(redirect.headers["location"]).query).items()}

    answer = api_psc.client.post(f"{BASE}/callback", json=back)

    assert answer.status_code == 200, answer.text
    assert answer.json()["session"]["professional"]["rpps"] == PHARMACIST
    replay = api_psc.client.post(f"{BASE}/callback", json=back)
    assert replay.status_code == 404
    assert replay.json()["type"] == "urn:lgo:problem:psc-login-unknown"


def test_refresh_then_close_revokes_the_grant(api_psc: ApiHarness, live_sim: LiveSim) -> None:
    first = sign_in(api_psc, PHARMACIST)["session"]
    renewed = api_psc.client.post(f"{BASE}/refresh")
    assert renewed.status_code == 200
    assert renewed.json()["session"]["id"] != first["id"]
    assert live_sim.psc.state.refresh  # one live grant at the provider

    api_psc.container.sessions.close("logout")
    api_psc.container.psc.login.wait_revocations()
    assert live_sim.psc.state.refresh == {}


def test_refresh_without_ecps_session_is_a_conflict(api_psc: ApiHarness) -> None:
    answer = api_psc.client.post(f"{BASE}/refresh")
    assert answer.status_code == 409
    assert answer.json()["type"] == "urn:lgo:problem:ecps-session-required"


@pytest.mark.parametrize(
    ("rpps", "status", "ack"),
    [
        ("10999990012", "active", False),
        ("10999990020", "inactive", True),
        ("10999990053", "unknown", True),
        ("10999990013", "invalid_number", True),
    ],
)
def test_prescriber_endpoint(api_psc: ApiHarness, rpps: str, status: str, ack: bool) -> None:
    answer = api_psc.client.get(f"/v1/prescribers/{rpps}")
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == status
    assert body["requires_acknowledgement"] is ack
    assert (body["warning"] is not None) is ack


def test_prescriber_endpoint_shows_the_practitioner(api_psc: ApiHarness) -> None:
    body = api_psc.client.get("/v1/prescribers/10999990012").json()
    practitioner = body["practitioner"]
    assert practitioner["national_id"] == "810999990012"
    assert practitioner["profession_codes"] == ["10"]
    assert practitioner["roles"][0]["current"] is True


def test_prescriber_path_must_be_eleven_digits(api_psc: ApiHarness) -> None:
    assert api_psc.client.get("/v1/prescribers/12345").status_code == 422


def test_cps_session_route_shows_and_closes_the_ecps_session(
    api_psc: ApiHarness, live_sim: LiveSim
) -> None:
    opened = sign_in(api_psc, PHARMACIST)["session"]

    read = api_psc.client.get("/v1/cps/session")
    assert read.status_code == 200, read.text
    assert read.json()["kind"] == "ecps"
    assert read.json()["session"]["id"] == opened["id"]

    assert api_psc.client.delete("/v1/cps/session").status_code == 204
    api_psc.container.psc.login.wait_revocations()
    assert api_psc.client.get("/v1/cps/session").json()["kind"] is None
    assert live_sim.psc.state.refresh == {}  # logout revoked the grant at the provider
    closed = [e for e in api_psc.container.events.recent() if e.type == "session.closed"]
    assert closed[-1].data == {"id": opened["id"], "kind": "ecps", "reason": "logout"}
