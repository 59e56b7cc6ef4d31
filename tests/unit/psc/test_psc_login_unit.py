"""PscLogin with a fake provider: pacing, bounded tables, transient errors, refresh rules."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from lgo.core.errors import InvalidInput
from lgo.core.events import EventBus
from lgo.national.errors import ServiceUnavailable
from lgo.national.psc import (
    CibaPending,
    CibaStart,
    PscGrantInvalid,
    PscProfessional,
    PscTokenInvalid,
    TokenSet,
)
from lgo.services.psc_login import (
    MAX_PENDING,
    EcpsSessionRequired,
    PscLogin,
    PscLoginUnknown,
    normalise_login_hint,
)
from lgo.services.sessions import ProfessionalIdentity, SessionKind, SessionRegistry


def tokens(national_id: str = "810999999997", refresh: str = "rt-1") -> TokenSet:
    pro = PscProfessional(
        subject="f:1",
        national_id=national_id,
        rpps=national_id[1:],
        family_name="T",
        given_name="A",
        profession_code="21",
        structure_id="759999999",
        structure_name="PH",
    )
    return TokenSet(access_token="at", refresh_token=refresh, expires_in=60, professional=pro)


class FakeProvider:
    def __init__(self) -> None:
        self.polls = 0
        self.poll_answers: list[TokenSet | Exception | None] = []
        self.refresh_answer: TokenSet | Exception = tokens(refresh="rt-2")
        self.revoked: list[str] = []
        self.started: list[str] = []

    def start_ciba(
        self,
        login_hint: str,
        *,
        binding_message: str | None = None,
        requested_expiry: int | None = None,
    ) -> CibaStart:
        self.started.append(login_hint)
        return CibaStart(f"req-{len(self.started)}", expires_in=120, interval=5)

    def poll_ciba(self, auth_req_id: str) -> TokenSet | CibaPending:
        self.polls += 1
        answer = self.poll_answers.pop(0) if self.poll_answers else CibaPending()
        if isinstance(answer, Exception):
            raise answer
        return answer

    def authorization_url(
        self,
        *,
        redirect_uri: str,
        state: str,
        nonce: str,
        code_challenge: str,
        login_hint: str | None = None,
    ) -> str:
        return f"https://psc.test/authorize?state={state}"

    def exchange_code(
        self, *, code: str, redirect_uri: str, code_verifier: str, nonce: str
    ) -> TokenSet:
        return tokens()

    def refresh(self, refresh_token: str, author_rpps: str | None = None) -> TokenSet:
        if isinstance(self.refresh_answer, Exception):
            raise self.refresh_answer
        return self.refresh_answer

    def revoke(self, token: str, author_rpps: str | None = None) -> None:
        self.revoked.append(token)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def provider() -> FakeProvider:
    return FakeProvider()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def registry() -> SessionRegistry:
    return SessionRegistry(EventBus())


@pytest.fixture
def login(provider: FakeProvider, registry: SessionRegistry, clock: Clock) -> Iterator[PscLogin]:
    service = PscLogin(
        provider,
        registry,
        session_ttl=timedelta(minutes=20),
        redirect_uri="http://127.0.0.1:8700/psc-callback",
        clock=clock,
    )
    yield service
    service.close()


def test_login_hint_normalisation() -> None:
    assert normalise_login_hint(" 10999999997 ") == "810999999997"
    assert normalise_login_hint("810999999997") == "810999999997"
    for bad in ("10999999998", "abc", "810999999998"):
        with pytest.raises(InvalidInput):
            normalise_login_hint(bad)


def test_polls_faster_than_the_interval_are_answered_locally(
    login: PscLogin, provider: FakeProvider, clock: Clock
) -> None:
    login_id = login.start_ciba("10999999997").login_id
    assert login.poll(login_id) is None
    assert login.poll(login_id) is None  # 0 s later: not forwarded
    assert provider.polls == 1
    clock.now += 5
    provider.poll_answers = [tokens()]
    session = login.poll(login_id)
    assert session is not None and provider.polls == 2


def test_transient_error_keeps_the_login_pending(
    login: PscLogin, provider: FakeProvider, clock: Clock
) -> None:
    login_id = login.start_ciba("10999999997").login_id
    provider.poll_answers = [ServiceUnavailable("down"), tokens()]
    with pytest.raises(ServiceUnavailable):
        login.poll(login_id)
    clock.now += 5
    assert login.poll(login_id) is not None


def test_final_error_forgets_the_login(login: PscLogin, provider: FakeProvider) -> None:
    login_id = login.start_ciba("10999999997").login_id
    provider.poll_answers = [PscTokenInvalid("bad_signature")]
    with pytest.raises(PscTokenInvalid):
        login.poll(login_id)
    with pytest.raises(PscLoginUnknown):
        login.poll(login_id)


def test_pending_logins_expire_and_stay_bounded(
    login: PscLogin, provider: FakeProvider, clock: Clock
) -> None:
    first = login.start_ciba("10999999997").login_id
    clock.now += 121
    login.start_ciba("10999999997")  # purges the expired one
    with pytest.raises(PscLoginUnknown):
        login.poll(first)
    ids = [login.start_ciba("10999999997").login_id for _ in range(MAX_PENDING + 5)]
    with pytest.raises(PscLoginUnknown):
        login.poll(ids[0])  # the oldest were dropped
    assert login.poll(ids[-1]) is None


def test_page_login_state_expires(login: PscLogin, clock: Clock) -> None:
    page = login.start_page_login()
    clock.now += 601
    with pytest.raises(PscLoginUnknown):
        login.finish_page_login("code", page.state)


def test_session_is_ecps_with_a_shorter_life(login: PscLogin) -> None:
    session = login.finish_page_login("code", login.start_page_login().state)
    assert session.kind is SessionKind.ECPS
    assert session.expires_at is not None
    assert session.expires_at - session.opened_at == timedelta(minutes=20)
    assert session.identity.profession_label == "Pharmacien"


def test_refresh_with_another_subject_closes_the_session(
    login: PscLogin, provider: FakeProvider, registry: SessionRegistry
) -> None:
    login.finish_page_login("code", login.start_page_login().state)
    provider.refresh_answer = tokens(national_id="810999999989")
    with pytest.raises(PscTokenInvalid, match="subject_changed"):
        login.refresh()
    assert registry.current() is None


def test_refused_refresh_closes_the_session(
    login: PscLogin, provider: FakeProvider, registry: SessionRegistry
) -> None:
    login.finish_page_login("code", login.start_page_login().state)
    provider.refresh_answer = PscGrantInvalid()
    with pytest.raises(PscGrantInvalid):
        login.refresh()
    assert registry.current() is None


def test_refresh_needs_an_ecps_session(login: PscLogin, registry: SessionRegistry) -> None:
    with pytest.raises(EcpsSessionRequired):
        login.refresh()
    card = ProfessionalIdentity("810999999997", "10999999997", "T", "A", "21")
    registry.open(SessionKind.CPS, card)
    with pytest.raises(EcpsSessionRequired):
        login.refresh()


def test_a_cps_card_taking_over_revokes_the_ecps_grant(
    login: PscLogin, provider: FakeProvider, registry: SessionRegistry
) -> None:
    login.finish_page_login("code", login.start_page_login().state)
    card = ProfessionalIdentity("810999999997", "10999999997", "T", "A", "21")
    registry.open(SessionKind.CPS, card)
    login.wait_revocations()
    assert provider.revoked == ["rt-1"]


def test_refresh_does_not_revoke_the_new_grant(
    login: PscLogin, provider: FakeProvider, registry: SessionRegistry
) -> None:
    login.finish_page_login("code", login.start_page_login().state)
    renewed = login.refresh()
    login.wait_revocations()
    assert provider.revoked == []
    registry.close("logout", session_id=renewed.id)
    login.wait_revocations()
    assert provider.revoked == ["rt-2"]


def test_expired_ecps_session_closes_and_revokes(provider: FakeProvider, clock: Clock) -> None:
    from datetime import UTC, datetime

    now = [datetime(2026, 1, 15, 9, 0, tzinfo=UTC)]
    registry = SessionRegistry(EventBus(), clock=lambda: now[0])
    service = PscLogin(
        provider,
        registry,
        session_ttl=timedelta(minutes=20),
        redirect_uri="http://127.0.0.1/cb",
        clock=clock,
    )
    try:
        service.finish_page_login("code", service.start_page_login().state)
        now[0] += timedelta(minutes=19, seconds=59)
        assert registry.current() is not None
        now[0] += timedelta(seconds=1)
        assert registry.current() is None
        service.wait_revocations()
        assert provider.revoked == ["rt-1"]
    finally:
        service.close()


def test_slow_down_adds_five_seconds_to_the_interval(
    login: PscLogin, provider: FakeProvider, clock: Clock
) -> None:
    login_id = login.start_ciba("10999999997").login_id  # interval 5 s
    provider.poll_answers = [CibaPending(slow_down=True)]
    assert login.poll(login_id) is None
    clock.now += 9
    assert login.poll(login_id) is None
    assert provider.polls == 1  # 9 s < 10 s: not forwarded
    clock.now += 1
    login.poll(login_id)
    assert provider.polls == 2
