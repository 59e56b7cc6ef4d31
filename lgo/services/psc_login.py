"""e-CPS sign-in through Pro Santé Connect, turned into the counter's professional session.

Two ways in, one result: the same :class:`ProfessionalSession` a CPS card opens (kind ``ecps``,
same identity fields, hence the same rights), with a shorter life.

- Counter (CIBA): :meth:`PscLogin.start_ciba` sends the push to the professional's phone and
  returns a local ``login_id``; the front-end calls :meth:`PscLogin.poll` at the given interval
  until the session opens, or a typed error says refused / expired.
- Page (authorization code + PKCE): :meth:`PscLogin.start_page_login` gives the provider URL with
  ``state``, ``nonce`` and the S256 challenge; the page brings back ``code`` and ``state`` and
  :meth:`PscLogin.finish_page_login` redeems them (the verifier never leaves the daemon).

:meth:`PscLogin.refresh` renews the provider's tokens and the session's life; closing the session
(logout, expiry, a CPS card taking over) revokes the refresh token at the provider in the
background. Tokens live only in this object's memory and never reach a log line or an event.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol

from lgo.core.errors import Conflict, InvalidInput, NotFound
from lgo.core.logs import get_logger
from lgo.domain.professionals import idnat_from_rpps, is_valid_rpps, parse_idnat
from lgo.national.errors import NationalServiceError, ServiceUnavailable
from lgo.national.psc import CibaPending, CibaStart, PkcePair, PscTokenInvalid, TokenSet
from lgo.services.sessions import (
    PHARMACIST_PROFESSION_CODE,
    ProfessionalIdentity,
    ProfessionalSession,
    SessionKind,
    SessionRegistry,
)

log = get_logger(__name__)

MAX_PENDING = 32
SLOW_DOWN_STEP_S = 5.0  # CIBA Core §11: on slow_down, poll 5 s less often from then on
PAGE_LOGIN_TTL_S = 600.0
PROFESSION_LABELS = {PHARMACIST_PROFESSION_CODE: "Pharmacien"}


class PscProvider(Protocol):
    """The part of :class:`lgo.national.psc.PscClient` this service uses."""

    def start_ciba(
        self,
        login_hint: str,
        *,
        binding_message: str | None = None,
        requested_expiry: int | None = None,
    ) -> CibaStart: ...

    def poll_ciba(self, auth_req_id: str) -> TokenSet | CibaPending: ...

    def authorization_url(
        self,
        *,
        redirect_uri: str,
        state: str,
        nonce: str,
        code_challenge: str,
        login_hint: str | None = None,
    ) -> str: ...

    def exchange_code(
        self, *, code: str, redirect_uri: str, code_verifier: str, nonce: str
    ) -> TokenSet: ...

    def refresh(self, refresh_token: str, author_rpps: str | None = None) -> TokenSet: ...

    def revoke(self, token: str, author_rpps: str | None = None) -> None: ...


class PscLoginUnknown(NotFound):
    slug = "psc-login-unknown"
    title = "Demande de connexion e-CPS inconnue ou déjà terminée : recommencer"


class EcpsSessionRequired(Conflict):
    slug = "ecps-session-required"
    title = "Aucune session e-CPS ouverte à prolonger"


@dataclass(frozen=True)
class CibaLogin:
    login_id: str
    expires_in: int
    interval: int


@dataclass(frozen=True)
class PageLogin:
    authorization_url: str
    state: str


@dataclass
class _PendingCiba:
    auth_req_id: str = field(repr=False)  # lets the holder of our client secret fetch tokens
    expires_at: float
    interval: float
    next_poll_at: float


@dataclass(frozen=True)
class _PendingPage:
    verifier: str = field(repr=False)  # PKCE secret
    nonce: str = field(repr=False)
    expires_at: float


@dataclass(frozen=True)
class _Grant:
    refresh_token: str = field(repr=False)
    rpps: str


def normalise_login_hint(value: str) -> str:
    """An idNat_PS from an RPPS (11 digits) or an idNat_PS; :class:`InvalidInput` otherwise."""
    value = value.strip()
    if is_valid_rpps(value):
        return idnat_from_rpps(value)
    if parse_idnat(value) is not None:
        return value
    raise InvalidInput("numéro RPPS ou identifiant national invalide")


def identity_from_tokens(tokens: TokenSet) -> ProfessionalIdentity:
    pro = tokens.professional
    return ProfessionalIdentity(
        national_id=pro.national_id,
        rpps=pro.rpps,
        family_name=pro.family_name,
        given_name=pro.given_name,
        profession_code=pro.profession_code,
        profession_label=PROFESSION_LABELS.get(pro.profession_code, ""),
        structure_id=pro.structure_id,
        structure_name=pro.structure_name,
    )


class PscLogin:
    def __init__(
        self,
        provider: PscProvider,
        sessions: SessionRegistry,
        *,
        session_ttl: timedelta,
        redirect_uri: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._provider = provider
        self._sessions = sessions
        self.session_ttl = session_ttl
        self.redirect_uri = redirect_uri
        self._clock = clock
        self._lock = threading.Lock()
        self._ciba: dict[str, _PendingCiba] = {}
        self._pages: dict[str, _PendingPage] = {}
        self._grants: dict[str, _Grant] = {}  # session id -> provider refresh grant
        self._revoker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="psc-revoke")
        self._revocations: list[Future[None]] = []
        sessions.on_close(self._session_closed)

    # -- CIBA ---------------------------------------------------------------------------

    def start_ciba(
        self,
        login_hint: str,
        *,
        binding_message: str | None = None,
        requested_expiry: int | None = None,
    ) -> CibaLogin:
        idnat = normalise_login_hint(login_hint)
        started = self._provider.start_ciba(
            idnat, binding_message=binding_message, requested_expiry=requested_expiry
        )
        login_id = secrets.token_urlsafe(16)
        now = self._clock()
        with self._lock:
            self._purge(now)
            self._ciba[login_id] = _PendingCiba(
                auth_req_id=started.auth_req_id,
                expires_at=now + started.expires_in,
                interval=float(started.interval),
                next_poll_at=now,
            )
        log.info("psc_ciba_started", rpps=idnat[1:], expires_in=started.expires_in)
        return CibaLogin(login_id, started.expires_in, started.interval)

    def poll(self, login_id: str) -> ProfessionalSession | None:
        """The opened session once approved; ``None`` while pending. Refusal and expiry raise."""
        now = self._clock()
        with self._lock:
            pending = self._ciba.get(login_id)
            if pending is None:
                raise PscLoginUnknown()
            if now < pending.next_poll_at:
                return None  # the front-end polls faster than the provider allows: answer locally
            pending.next_poll_at = now + pending.interval
        try:
            tokens = self._provider.poll_ciba(pending.auth_req_id)
        except NationalServiceError as exc:
            if not _transient(exc):
                self._drop_ciba(login_id)
            log.info("psc_ciba_failed", error=exc.slug)
            raise
        if isinstance(tokens, CibaPending):
            if tokens.slow_down:
                with self._lock:
                    pending.interval += SLOW_DOWN_STEP_S
                    pending.next_poll_at = self._clock() + pending.interval
            return None
        self._drop_ciba(login_id)
        return self._open(tokens)

    def cancel(self, login_id: str) -> None:
        self._drop_ciba(login_id)

    def _drop_ciba(self, login_id: str) -> None:
        with self._lock:
            self._ciba.pop(login_id, None)

    # -- authorization code + PKCE -----------------------------------------------------

    def start_page_login(self, login_hint: str | None = None) -> PageLogin:
        hint = normalise_login_hint(login_hint) if login_hint else None
        pkce = PkcePair.generate()
        state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        url = self._provider.authorization_url(
            redirect_uri=self.redirect_uri,
            state=state,
            nonce=nonce,
            code_challenge=pkce.challenge,
            login_hint=hint,
        )
        now = self._clock()
        with self._lock:
            self._purge(now)
            self._pages[state] = _PendingPage(pkce.verifier, nonce, now + PAGE_LOGIN_TTL_S)
        return PageLogin(url, state)

    def finish_page_login(self, code: str, state: str) -> ProfessionalSession:
        with self._lock:
            pending = self._pages.pop(state, None)  # single use, whatever happens next
        if pending is None or self._clock() >= pending.expires_at:
            raise PscLoginUnknown()
        tokens = self._provider.exchange_code(
            code=code,
            redirect_uri=self.redirect_uri,
            code_verifier=pending.verifier,
            nonce=pending.nonce,
        )
        return self._open(tokens)

    # -- session life ----------------------------------------------------------------------

    def refresh(self) -> ProfessionalSession:
        """Renew the provider's tokens and give the e-CPS session a new full life."""
        session = self._sessions.current()
        with self._lock:
            grant = self._grants.get(session.id) if session is not None else None
        if session is None or session.kind is not SessionKind.ECPS or grant is None:
            raise EcpsSessionRequired()
        try:
            tokens = self._provider.refresh(grant.refresh_token, grant.rpps)
        except NationalServiceError:
            self._sessions.close("refresh_failed", session_id=session.id)
            raise
        if tokens.professional.national_id != session.identity.national_id:
            self._sessions.close("refresh_failed", session_id=session.id)
            raise PscTokenInvalid("subject_changed")
        with self._lock:
            self._grants.pop(session.id, None)  # rotated: the old refresh token is dead already
        return self._open(tokens)

    def _open(self, tokens: TokenSet) -> ProfessionalSession:
        identity = identity_from_tokens(tokens)
        session = self._sessions.open(
            SessionKind.ECPS,
            identity,
            ttl=self.session_ttl,
            source=f"psc:{tokens.professional.subject}",
        )
        if tokens.refresh_token:
            with self._lock:
                self._grants[session.id] = _Grant(tokens.refresh_token, identity.rpps)
        log.info("psc_session_opened", rpps=identity.rpps, session_id=session.id)
        return session

    def _session_closed(self, session: ProfessionalSession, reason: str) -> None:
        with self._lock:
            grant = self._grants.pop(session.id, None)
        if grant is None:
            return
        # Closing may run on the event loop (card removed, DELETE): never block it on the network.
        future = self._revoker.submit(self._revoke, grant, reason)
        with self._lock:
            self._revocations = [f for f in self._revocations if not f.done()] + [future]

    def _revoke(self, grant: _Grant, reason: str) -> None:
        try:
            self._provider.revoke(grant.refresh_token, grant.rpps)
            log.info("psc_tokens_revoked", rpps=grant.rpps, reason=reason)
        except NationalServiceError as exc:  # the refresh token dies on its own at expiry
            log.warning("psc_revoke_failed", rpps=grant.rpps, error=exc.slug)

    def wait_revocations(self, timeout_s: float = 10.0) -> None:
        """Wait for background revocations (shutdown, tests)."""
        with self._lock:
            futures = list(self._revocations)
        for future in futures:
            future.result(timeout=timeout_s)

    def has_grant(self, session_id: str) -> bool:
        with self._lock:
            return session_id in self._grants

    def close(self) -> None:
        self._revoker.shutdown(wait=True)

    def _purge(self, now: float) -> None:
        """Forget finished or abandoned logins; keep the tables bounded (lock held)."""
        for login_id in [k for k, v in self._ciba.items() if now >= v.expires_at]:
            del self._ciba[login_id]
        for state in [k for k, v in self._pages.items() if now >= v.expires_at]:
            del self._pages[state]
        while len(self._ciba) >= MAX_PENDING:
            del self._ciba[next(iter(self._ciba))]
        while len(self._pages) >= MAX_PENDING:
            del self._pages[next(iter(self._pages))]


def _transient(error: NationalServiceError) -> bool:
    """Network trouble leaves the login pending: the next poll may succeed."""
    return isinstance(error, ServiceUnavailable)
