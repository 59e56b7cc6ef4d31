"""e-CPS sign-in over real HTTP against the PSC simulator: CIBA, code + PKCE, refresh, logout."""

from __future__ import annotations

import time
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from joserfc.jwk import ECKey

from lgo.core.events import EventBus
from lgo.national.psc import (
    CibaPending,
    PscClient,
    PscGrantInvalid,
    PscLoginExpired,
    PscLoginRefused,
    PscTokenInvalid,
    PscUnknownProfessional,
)
from lgo.services.psc_login import PscLogin, PscLoginUnknown
from lgo.services.sessions import ProfessionalSession, SessionKind, SessionRegistry
from tests.integration.psc.conftest import (
    ADJOINT,
    CLIENT_ID,
    CLIENT_SECRET,
    MANUAL,
    PHARMACIST,
    REDIRECT_URI,
    REFUSER,
    SILENT,
    LiveSim,
    decide,
    spoil_next_token,
)

pytestmark = pytest.mark.integration


def poll_until_done(login: PscLogin, login_id: str, limit_s: float = 10.0) -> ProfessionalSession:
    """Poll like a counter front-end does: at the provider's interval, until an outcome."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        session = login.poll(login_id)
        if session is not None:
            return session
        time.sleep(0.05)  # pacing of a polling client, not synchronisation
    raise AssertionError("CIBA login did not finish")


def test_ciba_approve_opens_ecps_session_with_the_right_rpps(
    psc_login: PscLogin, registry: SessionRegistry, events: EventBus
) -> None:
    started = psc_login.start_ciba(PHARMACIST, binding_message="Comptoir 1")

    assert psc_login.poll(started.login_id) is None  # the simulator answers "pending" once
    session = poll_until_done(psc_login, started.login_id)

    assert session.kind is SessionKind.ECPS
    assert session.identity.rpps == PHARMACIST
    assert session.identity.national_id == "8" + PHARMACIST
    assert session.identity.profession_code == "21"
    assert session.identity.is_pharmacist
    assert session.identity.structure_id == "759999999"
    assert session.expires_at is not None
    assert (session.expires_at - session.opened_at).total_seconds() == 30 * 60
    assert registry.current() == session
    assert [e.type for e in events.recent()] == ["session.opened"]
    with pytest.raises(PscLoginUnknown):  # the login is finished: its id is forgotten
        psc_login.poll(started.login_id)


def test_ciba_accepts_a_national_id_as_login_hint(psc_login: PscLogin) -> None:
    started = psc_login.start_ciba("8" + ADJOINT)
    session = poll_until_done(psc_login, started.login_id)
    assert session.identity.rpps == ADJOINT


def test_ciba_refused_on_the_phone_is_a_typed_error_and_no_session(
    psc_login: PscLogin, registry: SessionRegistry
) -> None:
    started = psc_login.start_ciba(REFUSER)
    with pytest.raises(PscLoginRefused) as caught:
        poll_until_done(psc_login, started.login_id)
    assert caught.value.status == 403
    assert registry.current() is None
    with pytest.raises(PscLoginUnknown):
        psc_login.poll(started.login_id)


def test_ciba_never_answered_expires_as_a_typed_error(
    live_sim: LiveSim, psc_login: PscLogin, registry: SessionRegistry
) -> None:
    started = psc_login.start_ciba(SILENT, requested_expiry=30)
    assert started.expires_in == 30
    assert psc_login.poll(started.login_id) is None
    assert psc_login.poll(started.login_id) is None  # the phone never answers
    live_sim.sim.clock.advance(31)  # simulator time passes the request's expiry
    with pytest.raises(PscLoginExpired):
        psc_login.poll(started.login_id)
    assert registry.current() is None


def test_ciba_manual_user_waits_for_the_technician(live_sim: LiveSim, psc_login: PscLogin) -> None:
    started = psc_login.start_ciba(MANUAL)
    assert psc_login.poll(started.login_id) is None
    pending = httpx.get(f"{live_sim.base_url}/_sim/psc/ciba").json()
    assert [p["login_hint"] for p in pending] == ["8" + MANUAL]

    assert len(decide(live_sim, "approve", "8" + MANUAL)) == 1
    session = poll_until_done(psc_login, started.login_id)
    assert session.identity.rpps == MANUAL


@pytest.mark.parametrize(
    ("decision", "error"),
    [
        ("refuse", PscLoginRefused),
        ("expire", PscLoginExpired),
    ],
)
def test_ciba_control_call_refuses_or_times_out(
    live_sim: LiveSim, psc_login: PscLogin, decision: str, error: type[Exception]
) -> None:
    started = psc_login.start_ciba(MANUAL)
    decide(live_sim, decision, "8" + MANUAL)
    with pytest.raises(error):
        poll_until_done(psc_login, started.login_id)


def test_unknown_professional_is_refused_by_the_provider(psc_login: PscLogin) -> None:
    with pytest.raises(PscUnknownProfessional):
        psc_login.start_ciba("10999990053")  # valid key, not a PSC user


@pytest.mark.parametrize("spoil", ["bad_signature", "wrong_audience", "expired", "wrong_issuer"])
def test_spoiled_id_token_is_refused_and_opens_nothing(
    live_sim: LiveSim, psc_login: PscLogin, registry: SessionRegistry, spoil: str
) -> None:
    spoil_next_token(live_sim, spoil)
    started = psc_login.start_ciba(PHARMACIST)
    with pytest.raises(PscTokenInvalid) as caught:
        poll_until_done(psc_login, started.login_id)
    assert caught.value.reason == spoil
    assert registry.current() is None


def _follow_authorize(url: str) -> dict[str, str]:
    """What a browser would bring back to the page: the redirect's query parameters."""
    response = httpx.get(url, follow_redirects=False)
    assert response.status_code == 302
    location = response.headers["location"]
    assert location.startswith(REDIRECT_URI)
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def test_authorization_code_with_pkce_opens_the_session(
    psc_login: PscLogin, registry: SessionRegistry
) -> None:
    page = psc_login.start_page_login(ADJOINT)
    query = parse_qs(urlsplit(page.authorization_url).query)
    assert query["code_challenge_method"] == ["S256"]
    assert "code_verifier" not in query  # the verifier stays in the daemon

    answer = _follow_authorize(page.authorization_url)
    assert answer["state"] == page.state
    session = psc_login.finish_page_login(answer["code"], answer["state"])

    assert session.kind is SessionKind.ECPS
    assert session.identity.rpps == ADJOINT
    assert registry.current() == session
    with pytest.raises(PscLoginUnknown):  # state is single use
        psc_login.finish_page_login(answer["code"], answer["state"])


def test_code_flow_refuses_a_token_with_another_nonce(
    live_sim: LiveSim, psc_login: PscLogin, registry: SessionRegistry
) -> None:
    page = psc_login.start_page_login()
    answer = _follow_authorize(page.authorization_url)
    spoil_next_token(live_sim, "wrong_nonce")
    with pytest.raises(PscTokenInvalid) as caught:
        psc_login.finish_page_login(answer["code"], answer["state"])
    assert caught.value.reason == "wrong_nonce"
    assert registry.current() is None


def test_code_with_a_wrong_verifier_or_replayed_is_refused(psc_client: PscClient) -> None:
    from lgo.national.psc import PkcePair

    pkce = PkcePair.generate()
    url = psc_client.authorization_url(
        redirect_uri=REDIRECT_URI, state="s", nonce="n", code_challenge=pkce.challenge
    )
    code = _follow_authorize(url)["code"]
    with pytest.raises(PscGrantInvalid):
        psc_client.exchange_code(
            code=code,
            redirect_uri=REDIRECT_URI,
            code_verifier=PkcePair.generate().verifier,
            nonce="n",
        )
    with pytest.raises(PscGrantInvalid):  # a code dies at its first use, even a failed one
        psc_client.exchange_code(
            code=code, redirect_uri=REDIRECT_URI, code_verifier=pkce.verifier, nonce="n"
        )


def test_refused_page_login_comes_back_as_access_denied(psc_login: PscLogin) -> None:
    page = psc_login.start_page_login(REFUSER)
    answer = _follow_authorize(page.authorization_url)
    assert answer == {"error": "access_denied", "state": page.state}


def test_refresh_renews_the_session_and_rotates_the_refresh_token(
    live_sim: LiveSim, psc_login: PscLogin, registry: SessionRegistry
) -> None:
    first = poll_until_done(psc_login, psc_login.start_ciba(PHARMACIST).login_id)
    old_refresh_tokens = set(live_sim.psc.state.refresh)

    renewed = psc_login.refresh()

    assert renewed.id != first.id
    assert renewed.identity == first.identity
    assert registry.current() == renewed
    assert psc_login.has_grant(renewed.id) and not psc_login.has_grant(first.id)
    assert not old_refresh_tokens & set(live_sim.psc.state.refresh)  # old one is dead
    psc_login.wait_revocations()
    assert len(live_sim.psc.state.refresh) == 1  # replacing did not revoke the new grant


def test_logout_revokes_the_refresh_token_at_the_provider(
    live_sim: LiveSim, psc_login: PscLogin, psc_client: PscClient, registry: SessionRegistry
) -> None:
    session = poll_until_done(psc_login, psc_login.start_ciba(PHARMACIST).login_id)
    (refresh_token,) = live_sim.psc.state.refresh

    registry.close("logout", session_id=session.id)
    psc_login.wait_revocations()

    assert live_sim.psc.state.refresh == {}
    with pytest.raises(PscGrantInvalid):
        psc_client.refresh(refresh_token)


def test_refresh_after_revocation_closes_the_session(
    live_sim: LiveSim, psc_login: PscLogin, registry: SessionRegistry
) -> None:
    poll_until_done(psc_login, psc_login.start_ciba(PHARMACIST).login_id)
    live_sim.psc.reset()  # the provider forgot every grant (revoked elsewhere)
    with pytest.raises(PscGrantInvalid):
        psc_login.refresh()
    assert registry.current() is None


def test_rotated_provider_key_is_fetched_again(live_sim: LiveSim, psc_login: PscLogin) -> None:
    poll_until_done(psc_login, psc_login.start_ciba(PHARMACIST).login_id)  # keys now cached
    live_sim.psc.key = ECKey.generate_key("P-256", auto_kid=True)  # the provider rotates
    session = poll_until_done(psc_login, psc_login.start_ciba(PHARMACIST).login_id)
    assert session.identity.rpps == PHARMACIST


def test_technician_command_lists_and_approves(live_sim: LiveSim, psc_login: PscLogin) -> None:
    from typer.testing import CliRunner

    from hwsim.national import psc_cli

    runner = CliRunner()
    started = psc_login.start_ciba(MANUAL, binding_message="Comptoir 2")
    listed = runner.invoke(psc_cli.app, ["pending", "--url", live_sim.base_url])
    assert listed.exit_code == 0
    assert "8" + MANUAL in listed.output and "Comptoir 2" in listed.output

    approved = runner.invoke(psc_cli.app, ["approve", "--url", live_sim.base_url, "--rpps", MANUAL])
    assert approved.exit_code == 0, approved.output
    assert poll_until_done(psc_login, started.login_id).identity.rpps == MANUAL

    nothing_left = runner.invoke(psc_cli.app, ["refuse", "--url", live_sim.base_url])
    assert nothing_left.exit_code == 1


def test_provider_outage_during_polling_leaves_the_login_pending(
    live_sim: LiveSim, psc_client: PscClient, registry: SessionRegistry
) -> None:
    from hwsim.national.faults import FaultKind, FaultSpec
    from lgo.national.errors import ServiceUnavailable

    login = PscLogin(
        psc_client, registry, session_ttl=timedelta(minutes=5), redirect_uri=REDIRECT_URI
    )
    try:
        started = login.start_ciba(PHARMACIST)
        live_sim.sim.faults.arm(
            FaultSpec(service="psc", kind=FaultKind.ERROR, path_contains="/token", times=1)
        )
        with pytest.raises(ServiceUnavailable):
            login.poll(started.login_id)
        session = poll_until_done(login, started.login_id)  # the next polls go through
        assert session.identity.rpps == PHARMACIST
    finally:
        login.close()


def test_a_provider_that_holds_its_answer_is_cut_by_the_timeout(live_sim: LiveSim) -> None:
    from hwsim.national.faults import FaultKind, FaultSpec
    from lgo.national.errors import ServiceTimeout
    from lgo.national.transport import NationalHttpClient

    http = NationalHttpClient("psc", live_sim.base_url + "/psc", timeout_s=0.3)
    client = PscClient(http, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    try:
        client.metadata()
        # Only the first call is held: had the client replayed the sign-in request, the
        # replay would have succeeded and no error would come out.
        live_sim.sim.faults.arm(
            FaultSpec(
                service="psc",
                kind=FaultKind.TIMEOUT,
                path_contains="/bc-authorize",
                delay_s=2.0,
                times=1,
            )
        )
        with pytest.raises(ServiceTimeout):
            client.start_ciba("8" + PHARMACIST)
    finally:
        http.close()


def test_polling_faster_than_the_interval_gets_slow_down(
    live_sim: LiveSim, psc_client: PscClient
) -> None:
    from hwsim.national.app import reset_state

    live_sim.sim.settings["psc_ciba_interval"] = 5
    reset_state(live_sim.sim)  # the provider is rebuilt with a 5 s interval
    started = psc_client.start_ciba("8" + PHARMACIST)
    assert started.interval == 5
    assert psc_client.poll_ciba(started.auth_req_id) == CibaPending(slow_down=False)
    assert psc_client.poll_ciba(started.auth_req_id) == CibaPending(slow_down=True)


def test_minimal_id_token_is_completed_by_userinfo(live_sim: LiveSim, psc_login: PscLogin) -> None:
    from hwsim.national.app import reset_state

    live_sim.sim.settings["psc_minimal_id_token"] = True
    reset_state(live_sim.sim)
    session = poll_until_done(psc_login, psc_login.start_ciba(ADJOINT).login_id)
    assert session.identity.rpps == ADJOINT
    assert session.identity.profession_code == "21"
    userinfo_calls = [r for r in live_sim.recorded("psc") if r.path.endswith("/userinfo")]
    assert len(userinfo_calls) == 1
