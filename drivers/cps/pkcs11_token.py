"""CPS through PKCS#11 (python-pkcs11): token discovery, PIN status, login, identity, signing.

Threading contract (anchors.md §2.5: login is token-global, sessions are not thread-safe for
multi-step operations):

* one :class:`CpsSession` per CPS card, holding exactly one PKCS#11 session;
* every call on that session (find objects, sign, logout/close) holds the session's own lock,
  so two requests never interleave on it; callers run these blocking calls in a worker thread
  (``drivers.deadline.call_blocking``), never on the event loop;
* :meth:`CpsSession.close` may come from any thread (card removed): it marks the session closed
  first, so new calls fail fast with ``NotLoggedIn``, then takes the lock and logs out;
* :class:`CpsTokens` (the module) is shared; its own lock serialises slot discovery, module
  re-initialisation and login, so a re-initialisation never runs under another thread's call.

PIN rules: the PIN is used for one C_Login and not kept (no attribute, no log, no retry). A login
on the final try is refused unless the caller confirms, and a locked PIN is never tried.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import weakref
from dataclasses import dataclass
from typing import Any

import pkcs11
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass, TokenFlag
from pkcs11 import exceptions as p11
from pkcs11.util.ec import encode_ecdsa_signature

from drivers import errors
from drivers.cps.identity import ProfessionalIdentity, identity_from_certificate

log = logging.getLogger(__name__)

AUTH_CERT_LABEL = "Certificat d'Authentification CPS"
SIGN_KEY_LABEL = "CPS_PRIV_SIG"
AUTH_KEY_LABEL = "CPS_PRIV_AUT"
_APP = bytes.fromhex("E828BD080F8025000001FF00")
AUTH_IDS = (_APP + bytes.fromhex("1002"), _APP + bytes.fromhex("1020"))  # CPS3, CPS4
SIGN_IDS = (_APP + bytes.fromhex("1001"), _APP + bytes.fromhex("1010"))
# DER DigestInfo prefix for SHA-256 (RFC 8017 §9.2 note 1), for raw RSA_PKCS signing.
SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")
REMOVAL_SETTLE_S = 1.5  # how long a failed operation waits to learn whether the card was pulled
_REMOVED = (p11.TokenNotPresent, p11.DeviceRemoved, p11.SessionHandleInvalid, p11.SessionClosed)
_LIBS: dict[str, Any] = {}
_LIBS_LOCK = threading.Lock()
# Mechanisms per (module, card serial), learnt once per process: see _Mechanisms.
_MECHANISMS: dict[tuple[str, str], frozenset[Any]] = {}


@dataclass(frozen=True, slots=True)
class PinStatus:
    """What the token says about the user PIN (tries_left None when only flags are known)."""

    locked: bool
    final_try: bool
    count_low: bool
    tries_left: int | None = None


@dataclass(frozen=True, slots=True)
class TokenInfo:
    serial: str
    label: str
    model: str
    pin: PinStatus


def pin_status_from_flags(flags: int, tries_left: int | None = None) -> PinStatus:
    locked = bool(flags & TokenFlag.USER_PIN_LOCKED) or tries_left == 0
    final_try = not locked and (bool(flags & TokenFlag.USER_PIN_FINAL_TRY) or tries_left == 1)
    low = bool(flags & TokenFlag.USER_PIN_COUNT_LOW) or (tries_left is not None and tries_left < 3)
    if tries_left is None and locked:
        tries_left = 0
    elif tries_left is None and final_try:
        tries_left = 1
    return PinStatus(locked=locked, final_try=final_try, count_low=low, tries_left=tries_left)


def check_pin_format(pin: str) -> None:
    """4 to 8 digits, else PinFormatError (so a typo never costs a try)."""
    if not (4 <= len(pin) <= 8 and pin.isascii() and pin.isdigit()):
        raise errors.PinFormatError("PIN must be 4 to 8 digits")


def _serial_text(raw: bytes | str) -> str:
    """The token serial as the card serial it stands for.

    Cryptolib CPS gives the EF.SN.ICC serial itself; OpenSC gives the PKCS#15 TokenInfo
    serialNumber in hex, i.e. the BCD digits with their ``F`` padding (``123456789f``).
    """
    text = raw.decode("ascii", "replace") if isinstance(raw, bytes) else raw
    text = text.strip().strip("\x00")
    digits = text.upper().rstrip("F")
    return digits if digits.isdigit() else text


class CpsTokens:
    """A loaded PKCS#11 module (Cryptolib CPS, OpenSC or SoftHSM), found by path."""

    def __init__(self, module_path: str) -> None:
        self.module_path = module_path
        with _LIBS_LOCK:
            lib = _LIBS.get(module_path)
            if lib is None:
                try:
                    lib = pkcs11.lib(module_path)
                except (OSError, RuntimeError, p11.PKCS11Error) as exc:
                    raise errors.Pkcs11ModuleError(f"cannot load {module_path}") from exc
                _LIBS[module_path] = lib
        self._lib = lib
        self._sessions: weakref.WeakSet[CpsSession] = weakref.WeakSet()
        self._lock = threading.RLock()

    def tokens(self) -> list[TokenInfo]:
        """Tokens present now (a fresh read of their flags)."""
        with self._lock:
            return [self._info(slot.get_token()) for slot in self._slots()]

    def find(self, serial: str) -> Any:
        """The python-pkcs11 Token whose serial is ``serial`` (the card's EF.SN.ICC serial).

        A module may snapshot its slots at C_Initialize (anchors.md §2.5), so a card inserted
        later can be invisible: when the serial is missing and no session of ours is open, the
        module is re-initialised once (C_Finalize + C_Initialize) and the slots read again.
        """
        with self._lock:
            token = self._search(serial)
            if token is None and not self._live_sessions():
                try:
                    self._lib.reinitialize()
                except p11.PKCS11Error as exc:
                    raise errors.Pkcs11ModuleError("C_Finalize/C_Initialize failed") from exc
                token = self._search(serial)
        if token is None:
            raise errors.TokenNotFound(f"no PKCS#11 token with serial {serial}")
        return token

    def _search(self, serial: str) -> Any:
        for slot in self._slots():
            token = slot.get_token()
            if _serial_text(token.serial) == serial:
                return token
        return None

    def _live_sessions(self) -> bool:
        return any(session.open for session in list(self._sessions))

    def pin_status(self, serial: str, card_tries_left: int | None = None) -> PinStatus:
        return pin_status_from_flags(int(self.find(serial).flags), card_tries_left)

    def read_identity(self, serial: str) -> ProfessionalIdentity:
        """Identity from the public authentication certificate (no login needed)."""
        return identity_from_certificate(self.read_auth_certificate(serial))

    def read_auth_certificate(self, serial: str) -> bytes:
        """The public authentication certificate (DER), read without login (revocation check
        before the PIN is presented)."""
        return self.public_certificate(self.find(serial))

    def public_certificate(self, token: Any) -> bytes:
        """The authentication certificate of ``token`` (found by :meth:`find`), in a session
        without login."""
        try:
            with token.open() as session:
                return _auth_certificate(session)
        except _REMOVED as exc:
            raise errors.TokenRemoved("token went away") from exc

    def login(
        self,
        serial: str,
        pin: str,
        *,
        confirm_final_try: bool = False,
        card_tries_left: int | None = None,
        tries_after_failure: Any = None,
        token: Any = None,
        certificate: bytes | None = None,
    ) -> CpsSession:
        """One C_Login with ``pin``; a CpsSession when it succeeds.

        ``card_tries_left``: the counter read from the card by PC/SC, when the caller has it.
        ``tries_after_failure``: a callable giving the counter after a wrong PIN (re-read), or None.
        ``token``: the token of ``serial`` when the caller has just found it (no second slot
        listing); ``certificate``: its authentication certificate when already read (the identity
        is taken from it, not read again after C_Login).
        """
        check_pin_format(pin)
        with self._lock:
            token = token if token is not None else self.find(serial)
            return self._login(
                serial,
                token,
                pin,
                confirm_final_try,
                card_tries_left,
                tries_after_failure,
                certificate,
            )

    def _login(
        self,
        serial: str,
        token: Any,
        pin: str,
        confirm_final_try: bool,
        card_tries_left: int | None,
        tries_after_failure: Any,
        certificate: bytes | None,
    ) -> CpsSession:
        status = pin_status_from_flags(int(token.flags), card_tries_left)
        if status.locked:
            raise errors.PinLocked("PIN is locked")
        if status.final_try and not confirm_final_try:
            raise errors.PinFinalTry("final PIN try: confirmation required")
        try:
            session = token.open(user_pin=pin)
        except p11.PinIncorrect as exc:
            left = tries_after_failure() if tries_after_failure is not None else None
            after = pin_status_from_flags(int(self.find(serial).flags), left)
            raise errors.PinIncorrect(after.tries_left) from exc
        except p11.PinLocked as exc:
            raise errors.PinLocked("PIN is locked") from exc
        except (p11.PinLenRange, p11.PinInvalid) as exc:
            raise errors.PinFormatError("PIN rejected by the token") from exc
        except p11.UserAlreadyLoggedIn as exc:
            raise errors.AlreadyLoggedIn("token already logged in") from exc
        except _REMOVED as exc:
            raise errors.TokenRemoved("token went away during login") from exc
        try:
            identity = identity_from_certificate(certificate or _auth_certificate(session))
        except BaseException:
            session.close()
            raise
        log.info("cps_login serial=%s", serial)
        cps = CpsSession(serial, session, identity, _Mechanisms(self.module_path, serial, token))
        self._sessions.add(cps)
        return cps

    def _slots(self) -> list[Any]:
        try:
            return list(self._lib.get_slots(token_present=True))
        except p11.PKCS11Error as exc:
            raise errors.Pkcs11ModuleError("C_GetSlotList failed") from exc

    @staticmethod
    def _info(token: Any) -> TokenInfo:
        return TokenInfo(
            serial=_serial_text(token.serial),
            label=str(token.label).strip(),
            model=str(token.model).strip(),
            pin=pin_status_from_flags(int(token.flags)),
        )


def _auth_certificate(session: Any) -> bytes:
    return _certificate(session, AUTH_CERT_LABEL, AUTH_IDS, "authentication")


def _certificate(session: Any, label: str, ids: tuple[bytes, ...], what: str) -> bytes:
    cert = _object(session, ObjectClass.CERTIFICATE, label, ids)
    if cert is None:
        raise errors.CertificateError(f"no {what} certificate on the token")
    return bytes(cert[Attribute.VALUE])


def _object(session: Any, kind: ObjectClass, label: str, ids: tuple[bytes, ...]) -> Any:
    """The object of class ``kind`` named ``label``, else the first whose CKA_ID is in ``ids``.

    The label is asked of the module first (one C_FindObjects, no attribute read per object); the
    scan by CKA_ID is for a card whose middleware labels its objects otherwise."""
    # list(): each search runs to C_FindObjectsFinal before the next call on the session.
    named = list(session.get_objects({Attribute.CLASS: kind, Attribute.LABEL: label}))
    if named:
        return named[0]
    candidates = list(session.get_objects({Attribute.CLASS: kind}))
    return next((c for c in candidates if bytes(c[Attribute.ID]) in ids), None)


class _Mechanisms:
    """What the module can sign with for one card, learnt once per process and kept across its
    sessions: the mechanism list (C_GetMechanismList), less any combined hash-and-sign mechanism
    found not to work. OpenSC lists CKM_SHA256_RSA_PKCS for IAS-ECC cards but fails it after
    9 APDUs (OpenSSL 3): tried once per card, not once per login."""

    def __init__(self, module_path: str, serial: str, token: Any) -> None:
        self._key = (module_path, serial)
        self._slot = token.slot

    def get(self) -> frozenset[Any]:
        with _LIBS_LOCK:
            known = _MECHANISMS.get(self._key)
        if known is None:
            listed = frozenset(self._slot.get_mechanisms())
            with _LIBS_LOCK:
                known = _MECHANISMS.setdefault(self._key, listed)
        return known

    def drop(self, mechanism: Any) -> None:
        known = self.get()
        with _LIBS_LOCK:
            _MECHANISMS[self._key] = known - {mechanism}


class CpsSession:
    """A logged-in CPS. See the module docstring for the threading contract."""

    def __init__(
        self, serial: str, session: Any, identity: ProfessionalIdentity, mechanisms: _Mechanisms
    ) -> None:
        self.serial = serial
        self.identity = identity
        self._session = session
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._card_removed = False
        # Object handles hold for the life of a PKCS#11 session: looking them up on every
        # signature cost more than the RSA operation itself (bench: 9.6× raw C_Sign).
        self._keys: dict[bool, Any] = {}  # by purpose: True = authentication key
        self._mechanisms = mechanisms

    @property
    def open(self) -> bool:
        return not self._closed.is_set()

    def sign(self, data: bytes, *, allow_combined: bool = True) -> bytes:
        """Sign ``data`` (SHA-256) with the signature key, never the authentication key.

        RSA: CKM_SHA256_RSA_PKCS, else SHA-256 here + DigestInfo + CKM_RSA_PKCS.
        EC: CKM_ECDSA_SHA256, else SHA-256 here + CKM_ECDSA; the result is DER (r, s).
        """
        return self._signed(data, allow_combined, authentication=False)

    def sign_authentication(self, data: bytes) -> bytes:
        """Sign ``data`` (SHA-256) with the **authentication** key (CPS_PRIV_AUT): for proofs of
        identity such as a signed authentication assertion, never for a document."""
        return self._signed(data, True, authentication=True)

    def _signed(self, data: bytes, allow_combined: bool, *, authentication: bool) -> bytes:
        with self._lock:
            self._check_open()
            try:
                return self._sign(data, allow_combined, authentication)
            except _REMOVED as exc:
                # close() (card-removed path) still runs C_Logout/C_CloseSession on this handle.
                raise errors.TokenRemoved("token went away during signing") from exc
            except p11.UserNotLoggedIn as exc:
                raise errors.NotLoggedIn("token is no longer logged in") from exc
            except p11.PKCS11Error as exc:
                # A card pulled between two APDUs of the signature may come back as a general
                # error (OpenSC: CKR_GENERAL_ERROR): ask the slot whether the card is still there.
                if self._removed_within(REMOVAL_SETTLE_S):
                    raise errors.TokenRemoved("card removed during signing") from exc
                raise errors.SigningError(type(exc).__name__) from exc

    def _removed_within(self, seconds: float) -> bool:
        """After a failed operation: did the card go? PC/SC reports a removal a moment after the
        APDU that failed, so look (slot, or the removal closing this session) for a short while."""
        deadline = time.monotonic() + seconds
        while True:
            if self._closed.is_set() and self._card_removed:
                return True
            try:
                self._session.token.slot.get_token()  # C_GetTokenInfo
            except _REMOVED:
                return True
            except p11.PKCS11Error:
                pass  # another failure: not a proof the card went away
            if time.monotonic() >= deadline:
                return False
            self._closed.wait(0.05)

    def authentication_certificate(self) -> bytes:
        """The certificate (DER) of the key :meth:`sign_authentication` uses (XML-DSig KeyInfo)."""
        return self._certificate(AUTH_CERT_LABEL, AUTH_IDS, "authentication")

    def _certificate(self, label: str, ids: tuple[bytes, ...], what: str) -> bytes:
        with self._lock:
            self._check_open()
            try:
                return _certificate(self._session, label, ids, what)
            except _REMOVED as exc:
                raise errors.TokenRemoved("token went away") from exc

    def is_logged_in(self) -> bool:
        """Ask the token (C_GetSessionInfo through a cheap object search)."""
        with self._lock:
            if self._closed.is_set():
                return False
            try:
                list(self._session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY}))
            except p11.PKCS11Error:
                return False
            return True

    def close(self, *, card_removed: bool = False) -> None:
        """Log out and close; safe to call twice and from any thread. ``card_removed``: the card
        was pulled, so a later call says so (:class:`TokenRemoved`) rather than "not logged in"."""
        if self._closed.is_set():
            return
        self._card_removed = card_removed
        self._closed.set()
        with self._lock:
            try:
                self._session.close()  # C_Logout + C_CloseSession
            except p11.PKCS11Error:
                # The card is gone (or the module dropped the session): nothing left logged in.
                log.debug("cps_session_close_after_removal serial=%s", self.serial)
        log.info("cps_logout serial=%s", self.serial)

    def _check_open(self) -> None:
        if self._closed.is_set():
            if self._card_removed:
                raise errors.TokenRemoved("card removed: CPS session closed")
            raise errors.NotLoggedIn("CPS session is closed")

    def _sign(self, data: bytes, allow_combined: bool, authentication: bool = False) -> bytes:
        key = self._keys.get(authentication)
        if key is None:
            key = self._keys[authentication] = self._private_key(authentication)
        mechanisms = self._mechanisms.get()
        if key.key_type == KeyType.RSA:
            if allow_combined and Mechanism.SHA256_RSA_PKCS in mechanisms:
                try:
                    return bytes(key.sign(data, mechanism=Mechanism.SHA256_RSA_PKCS))
                except (p11.FunctionNotSupported, p11.MechanismInvalid):
                    # OpenSC lists it for IAS-ECC cards but cannot do the card-side hash with
                    # OpenSSL 3 (0.23, Debian 12): hash here, let the card pad and sign.
                    self._mechanisms.drop(Mechanism.SHA256_RSA_PKCS)
            digest = SHA256_DIGEST_INFO + hashlib.sha256(data).digest()
            return bytes(key.sign(digest, mechanism=Mechanism.RSA_PKCS))
        if key.key_type == KeyType.EC:
            if allow_combined and Mechanism.ECDSA_SHA256 in mechanisms:
                raw = key.sign(data, mechanism=Mechanism.ECDSA_SHA256)
            else:
                raw = key.sign(hashlib.sha256(data).digest(), mechanism=Mechanism.ECDSA)
            return bytes(encode_ecdsa_signature(raw))
        raise errors.SigningError(f"unsupported key type {key.key_type}")

    def _private_key(self, authentication: bool) -> Any:
        label, ids = (AUTH_KEY_LABEL, AUTH_IDS) if authentication else (SIGN_KEY_LABEL, SIGN_IDS)
        key = _object(self._session, ObjectClass.PRIVATE_KEY, label, ids)
        if key is None:
            raise errors.KeyNotFound(f"no {label} key on the token")
        return key
