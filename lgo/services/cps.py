"""The CPS card login path: PIN → PKCS#11 login → professional session of kind "cps".

- The PIN goes from the request straight to one login attempt; it is never stored, logged or
  retried. A login on the final try needs ``confirm_final_try``; a locked card is never tried.
- Removing the card closes the PKCS#11 session (C_Logout) and the professional session at once
  (``card_removed`` is called by the hardware service from the monitor thread).
- Closing the professional session any other way (logout, replaced by e-CPS) logs the card out.

All public methods except ``card_inserted``/``card_removed`` block (PC/SC, PKCS#11): routers call
them through ``drivers.deadline.call_blocking``. One login at a time (``_login_lock``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from drivers import errors as drv
from drivers.deadline import call_blocking
from lgo.core.events import EventBus
from lgo.core.logs import get_logger
from lgo.core.settings import HardwareSettings
from lgo.services import hardware_errors as hw
from lgo.services.cps_revocation import CpsRevocationCheck
from lgo.services.sessions import (
    ProfessionalIdentity,
    ProfessionalSession,
    SessionKind,
    SessionRegistry,
)

if TYPE_CHECKING:
    # drivers.cps (python-pkcs11, asn1crypto, cryptography: ~200 ms, a few MiB) is loaded when a CPS
    # is first read, not at the daemon's start.
    from drivers.cps import CpsTokens, PinStatus
    from drivers.cps import identity as drv_identity
    from drivers.cps.login import CardRead, CpsCardInfo


log = get_logger(__name__)

# Profession label in the certificate (title) → RPPS profession code (TRE_G15).
PROFESSION_CODES = {
    "pharmacien": "21",
    "médecin": "10",
    "medecin": "10",
    "chirurgien-dentiste": "40",
    "sage-femme": "50",
    "infirmier": "60",
    "masseur-kinésithérapeute": "70",
}


class CardSession(Protocol):
    """A CPS logged in (``drivers.cps.CpsSession``): who it is, its authentication key."""

    @property
    def identity(self) -> drv_identity.ProfessionalIdentity: ...

    def sign_authentication(self, data: bytes) -> bytes: ...

    def authentication_certificate(self) -> bytes: ...

    def close(self, *, card_removed: bool = False) -> None: ...


class CpsCard(Protocol):
    """The CPS in a reader, through PC/SC and the PKCS#11 module: what the service needs of the
    hardware. Failures are ``drivers.errors.DriverError`` (translated by the service); a missing
    or unloadable module is :class:`hw.CpsMiddlewareUnavailable`."""

    def card_info(self, reader: str) -> CpsCardInfo: ...

    def require_middleware(self) -> None: ...

    def pin_status(self, serial: str, card_tries_left: int | None) -> PinStatus: ...

    def auth_certificate(self, reader: str) -> bytes: ...

    def login(self, reader: str, pin: str, *, confirm_final_try: bool) -> CardSession: ...


class Pkcs11CpsCard:
    """The real card: PC/SC for the serial and PIN counter, the PKCS#11 module (Cryptolib CPS, or
    OpenSC on the bench) for the token, loaded on first use."""

    def __init__(self, module: Path | None) -> None:
        self._module = module
        self._tokens: CpsTokens | None = None
        self._lock = threading.Lock()
        # The card as read for the revocation check, handed to the login that follows it: one card
        # read, one slot listing and one certificate read for both (the login re-reads the serial).
        self._checked: CardRead | None = None

    def card_info(self, reader: str) -> CpsCardInfo:
        from drivers.cps.login import read_card_info

        return read_card_info(reader)

    def require_middleware(self) -> None:
        self._loaded()

    def pin_status(self, serial: str, card_tries_left: int | None) -> PinStatus:
        return self._loaded().pin_status(serial, card_tries_left)

    def auth_certificate(self, reader: str) -> bytes:
        from drivers.cps.login import read_for_check

        self._checked = None
        checked = read_for_check(self._loaded(), reader)
        self._checked = checked
        return checked.read_certificate()  # read once, by read_for_check

    def login(self, reader: str, pin: str, *, confirm_final_try: bool) -> CardSession:
        from drivers.cps.login import login as cps_login

        checked, self._checked = self._checked, None
        return cps_login(
            self._loaded(), reader, pin, confirm_final_try=confirm_final_try, checked=checked
        )

    def _loaded(self) -> CpsTokens:
        from drivers.cps import CpsTokens

        with self._lock:
            if self._tokens is None:
                if self._module is None:
                    raise hw.CpsMiddlewareUnavailable("hardware.pkcs11_module n'est pas configuré")
                try:
                    self._tokens = CpsTokens(str(self._module))
                except drv.DriverError as exc:
                    raise hw.CpsMiddlewareUnavailable(
                        f"module {self._module} non chargeable"
                    ) from exc
            return self._tokens


@dataclass(frozen=True)
class CardStatus:
    """The inserted CPS, read over PC/SC (no PIN involved); the PIN state when known."""

    reader: str
    serial: str
    pin_tries_left: int | None  # the card's counter
    pin_tries_max: int | None
    pin_locked: bool | None = None
    pin_final_try: bool | None = None
    token_found: bool | None = None  # False: the PKCS#11 module does not see the card


@dataclass
class _Active:
    reader: str
    cps: CardSession
    session_id: str


def to_session_identity(who: drv_identity.ProfessionalIdentity) -> ProfessionalIdentity:
    return ProfessionalIdentity(
        national_id=who.national_id,
        rpps=who.rpps or who.national_id,
        family_name=who.family_name,
        given_name=who.given_name,
        profession_code=PROFESSION_CODES.get(who.profession.strip().lower(), ""),
        profession_label=who.profession,
    )


class CpsService:
    def __init__(
        self,
        settings: HardwareSettings,
        sessions: SessionRegistry,
        events: EventBus,
        revocation: CpsRevocationCheck | None = None,
        card: CpsCard | None = None,
    ) -> None:
        self._settings = settings
        self._revocation = revocation
        self._sessions = sessions
        self._events = events
        self._card = card or Pkcs11CpsCard(settings.pkcs11_module)
        self._lock = threading.Lock()
        self._login_lock = threading.Lock()
        self._readers: set[str] = set()
        self._active: _Active | None = None
        sessions.on_close(self._on_session_closed)

    # --- events from the hardware service (monitor thread) ---------------------------------

    def card_inserted(self, reader: str) -> None:
        with self._lock:
            self._readers.add(reader)

    def card_removed(self, reader: str) -> None:
        with self._lock:
            self._readers.discard(reader)
            active = self._active if self._active and self._active.reader == reader else None
            if active is not None:
                self._active = None
        if active is not None:
            active.cps.close(card_removed=True)  # C_Logout before anyone can act in this name
            self._sessions.close("card_removed", session_id=active.session_id)
            self._events.publish("cps.logged_out", {"reader": reader, "reason": "card_removed"})
            log.info("cps_card_removed_logout", reader=reader)

    # --- blocking API -----------------------------------------------------------------------

    def readers(self) -> list[str]:
        with self._lock:
            return sorted(self._readers)

    def card_status(self, reader: str | None = None) -> CardStatus:
        """Serial and PIN counter of the inserted CPS (PC/SC only, no PIN involved)."""
        target = self._reader(reader)
        try:
            info = self._card.card_info(target)
        except drv.DriverError as exc:
            raise hw.translate(exc) from exc
        status = CardStatus(target, info.serial, info.tries_left, info.max_tries)
        if info.tries_left is not None:
            # The card's own counter says it all: no PKCS#11 call, whose slot listing (OpenSC)
            # waits on every reader, even one whose card hangs.
            from drivers.cps import pin_status_from_flags

            pin = pin_status_from_flags(0, info.tries_left)
            return replace(status, pin_locked=pin.locked, pin_final_try=pin.final_try)
        try:
            pin = self._card.pin_status(info.serial, info.tries_left)
        except hw.CpsMiddlewareUnavailable:
            return status  # no module: the card's own counter was unreadable, nothing more to say
        except drv.DriverError:
            return replace(status, token_found=False)
        return replace(status, pin_locked=pin.locked, pin_final_try=pin.final_try)

    def login(
        self, pin: str, *, reader: str | None = None, confirm_final_try: bool = False
    ) -> ProfessionalSession:
        with self._login_lock:
            target = self._reader(reader)
            self._card.require_middleware()
            self._close_active("replaced")
            self._check_revocation(target)  # before the PIN: a revoked card gets none
            try:
                cps = self._card.login(target, pin, confirm_final_try=confirm_final_try)
            except drv.DriverError as exc:
                log.info("cps_login_refused", reader=target, code=exc.code)
                raise hw.translate(exc) from exc
            return self._open(target, cps)

    async def login_with_deadline(
        self, pin: str, *, reader: str | None = None, confirm_final_try: bool = False
    ) -> ProfessionalSession:
        """:meth:`login` off the event loop, bounded by ``hardware.cps_login_timeout_s``."""
        try:
            return await call_blocking(
                lambda: self.login(pin, reader=reader, confirm_final_try=confirm_final_try),
                self._settings.cps_login_timeout_s,
            )
        except drv.DeadlineExceeded as exc:
            raise hw.HardwareTimeout() from exc

    async def card_status_with_deadline(self, reader: str | None = None) -> CardStatus:
        try:
            return await call_blocking(
                lambda: self.card_status(reader), self._settings.card_read_timeout_s
            )
        except drv.DeadlineExceeded as exc:
            raise hw.HardwareTimeout() from exc

    def signer(self) -> CardSession | None:
        """The logged-in CPS (for signing documents), if any."""
        with self._lock:
            return self._active.cps if self._active else None

    def close(self) -> None:
        self._close_active("shutdown")
        if self._revocation is not None:
            self._revocation.close()

    # --- internals ---------------------------------------------------------------------------

    def _check_revocation(self, reader: str) -> None:
        if self._revocation is None:
            return

        def certificate() -> bytes:
            try:
                return self._card.auth_certificate(reader)
            except drv.DriverError as exc:
                log.info("cps_login_refused", reader=reader, code=exc.code)
                raise hw.translate(exc) from exc

        self._revocation.check(certificate, reader)

    def _open(self, reader: str, cps: CardSession) -> ProfessionalSession:
        identity = to_session_identity(cps.identity)
        session = self._sessions.open(SessionKind.CPS, identity, source=reader)
        with self._lock:
            still_there = reader in self._readers
            if still_there:
                self._active = _Active(reader, cps, session.id)
        if not still_there:  # pulled during the login: nobody may act in this name
            cps.close()
            self._sessions.close("card_removed", session_id=session.id)
            raise hw.CpsSessionClosed()
        log.info("cps_logged_in", reader=reader, session_id=session.id)
        return session

    def _close_active(self, reason: str) -> None:
        with self._lock:
            active, self._active = self._active, None
        if active is not None:
            active.cps.close()
            self._sessions.close(reason, session_id=active.session_id)

    def _on_session_closed(self, session: ProfessionalSession, reason: str) -> None:
        if session.kind is not SessionKind.CPS:
            return
        with self._lock:
            active = (
                self._active if self._active and self._active.session_id == session.id else None
            )
            if active is not None:
                self._active = None
        if active is not None:
            active.cps.close()
            self._events.publish("cps.logged_out", {"reader": active.reader, "reason": reason})

    def _reader(self, reader: str | None) -> str:
        readers = self.readers()
        if reader is not None:
            if reader not in readers:
                raise hw.CpsCardMissing(f"pas de carte CPS dans le lecteur « {reader} »")
            return reader
        if not readers:
            raise hw.CpsCardMissing()
        if len(readers) > 1:
            raise hw.CpsReaderAmbiguous(readers=readers)
        return readers[0]
