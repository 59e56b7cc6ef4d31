"""The CPS login path: pair the PC/SC card with its token, check the PIN counter, log in once.

The PIN goes to the card only through C_Login: the PKCS#11 module (Cryptolib CPS, or OpenSC's
IAS-ECC driver on the bench) sends the VERIFY and the card counts the tries. It is presented once
per call and never retried.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from drivers import errors
from drivers.cps import card
from drivers.cps.pkcs11_token import (
    CpsSession,
    CpsTokens,
    PinStatus,
    check_pin_format,
    pin_status_from_flags,
)
from drivers.pcsc.card import CardChannel


@dataclass(frozen=True, slots=True)
class CpsCardInfo:
    reader: str
    serial: str
    max_tries: int | None
    tries_left: int | None


def read_card_info(reader: str) -> CpsCardInfo:
    """Serial and PIN counter of the CPS in ``reader`` (card left powered)."""
    with CardChannel(reader) as channel, channel.transaction():
        serial = card.read_serial(channel)
        try:
            max_tries, left = card.read_pin_tries(channel)
        except (errors.ApduError, errors.CardDataError):
            return CpsCardInfo(reader, serial, None, None)  # counter not readable on this card
    return CpsCardInfo(reader, serial, max_tries, left)


def _card_tries(reader: str) -> int | None:
    try:
        return read_card_info(reader).tries_left
    except errors.DriverError:
        return None


def pin_status(tokens: CpsTokens, info: CpsCardInfo) -> PinStatus:
    return tokens.pin_status(info.serial, info.tries_left)


class CardRead:
    """One CPS as a login sees it: its PC/SC serial and counter (read here), its PKCS#11 token
    (found at most once: a slot listing through OpenSC waits on every reader) and its
    authentication certificate (read at most once, in a session without login)."""

    def __init__(self, tokens: CpsTokens, reader: str) -> None:
        self._tokens = tokens
        self.reader = reader
        self.info = read_card_info(reader)
        self.serial = self.info.serial
        self.found: Any = None
        self.certificate: bytes | None = None

    def token(self) -> Any:
        if self.found is None:
            self.found = self._tokens.find(self.serial)
        return self.found

    def read_certificate(self) -> bytes:
        if self.certificate is None:
            self.certificate = self._tokens.public_certificate(self.token())
        return self.certificate


def read_for_check(tokens: CpsTokens, reader: str) -> CardRead:
    """The CPS in ``reader`` with its authentication certificate read, for a check before the PIN
    (revocation); give it to :func:`login` (``checked=``) so the card is not read twice."""
    card = CardRead(tokens, reader)
    card.read_certificate()
    return card


def login(
    tokens: CpsTokens,
    reader: str,
    pin: str,
    *,
    confirm_final_try: bool = False,
    before_pin: Callable[[Callable[[], bytes]], object] | None = None,
    checked: CardRead | None = None,
) -> CpsSession:
    """Log the CPS in ``reader`` in with ``pin``: one attempt, typed errors, no retry.

    A check that must pass before the PIN is presented (the revocation check) reads the card's
    authentication certificate either through ``before_pin`` (given a reader of it) or beforehand
    through :func:`read_for_check` (``checked``). Either way the card is read, and its token
    found, once for the check and the login, and the identity comes from the certificate read.
    """
    check_pin_format(pin)
    card = checked if checked is not None and checked.reader == reader else CardRead(tokens, reader)
    if before_pin is not None:
        before_pin(card.read_certificate)
    info = card.info
    if card.found is not None:
        # The check may have taken seconds (a CRL download): the card in the reader must still
        # be the one checked, or the PIN would go to another card; its counter is read afresh.
        info = read_card_info(reader)
        if info.serial != card.serial:
            raise errors.TokenRemoved("another card was inserted during the check")
    # The card's own counter when it gives one: one PKCS#11 slot listing less (OpenSC's probes
    # every reader's card); C_Login below checks the token's flags again anyway.
    if info.tries_left is not None:
        status = pin_status_from_flags(0, info.tries_left)
    else:
        status = pin_status_from_flags(int(card.token().flags))
    if status.locked:
        raise errors.PinLocked("PIN is locked")
    if status.final_try and not confirm_final_try:
        raise errors.PinFinalTry("final PIN try: confirmation required")
    return tokens.login(
        info.serial,
        pin,
        confirm_final_try=True,  # already checked above against the card's counter
        card_tries_left=None,
        tries_after_failure=lambda: _card_tries(reader),
        token=card.found,
        certificate=card.certificate,
    )
