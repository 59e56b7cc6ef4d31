"""A connection to one card, shared with other applications (CPS middleware) and left powered.

Rules (anchors.md §2.1, hw-feasibility.md §3):
- connect SHARED, T=0 or T=1; disconnect and end transactions with SCARD_LEAVE_CARD, never
  pyscard's default UNPOWER_CARD, so the PKCS#11 session on a CPS in the other slot survives;
- T=0 status words are handled here: ``61 xx`` → GET RESPONSE (chained), ``6C xx`` → resend
  with Le=xx;
- every PC/SC failure is a typed :mod:`drivers.errors` exception; a card pulled mid-exchange is
  ``CardRemoved`` (or ``CardReset``/``NoCard``), never a bare exception.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from smartcard import scard

from drivers import errors
from drivers.pcsc.codes import check
from drivers.pcsc.context import Context

SW_OK = 0x9000
_MAX_CHAINED = 64  # GET RESPONSE rounds before we call the card broken
_MAX_RESPONSE = 64 * 1024
_STATUS_PRESENT = 0x0004  # pcsc-lite SCardStatus dwState bit SCARD_PRESENT (not in pyscard)
_GONE = (scard.SCARD_W_REMOVED_CARD, scard.SCARD_E_NO_SMARTCARD)
REMOVAL_SETTLE_S = 1.0  # how long a failed exchange waits to learn whether the card was pulled


@dataclass(frozen=True, slots=True)
class Response:
    data: bytes
    sw: int

    @property
    def ok(self) -> bool:
        return self.sw == SW_OK


def split_response(raw: list[int] | bytes) -> Response:
    if len(raw) < 2:
        raise errors.MalformedResponse(f"response of {len(raw)} bytes has no status word")
    return Response(bytes(raw[:-2]), (raw[-2] << 8) | raw[-1])


def _with_le(apdu: bytes, le: int) -> bytes:
    """``apdu`` (short form) with its Le replaced or added."""
    if len(apdu) <= 5:  # case 1 or 2: header [+ Le]
        return apdu[:4] + bytes([le])
    body_end = 5 + apdu[4]
    return apdu[:body_end] + bytes([le])  # case 3 or 4: header + Lc + data [+ Le]


def resolve_t0(send: Callable[[bytes], Response], apdu: bytes) -> Response:
    """Exchange ``apdu`` through ``send``, resending on ``6C xx`` and chaining ``61 xx``."""
    response = send(apdu)
    if response.sw >> 8 == 0x6C and len(apdu) >= 4:
        # Wrong Le: resend the same command with the length the card asked for.
        response = send(_with_le(apdu, response.sw & 0xFF))
    data = bytearray(response.data)
    rounds = 0
    while response.sw >> 8 == 0x61:
        rounds += 1
        if rounds > _MAX_CHAINED or len(data) > _MAX_RESPONSE:
            raise errors.MalformedResponse("GET RESPONSE chain too long")
        response = send(bytes([apdu[0] & 0x03, 0xC0, 0, 0, response.sw & 0xFF]))
        data += response.data
    return Response(bytes(data), response.sw)


class CardChannel:
    """One SCARDHANDLE on ``reader``, owned by one thread, with its own context by default."""

    def __init__(self, reader: str, context: Context | None = None) -> None:
        self.reader = reader
        self._own_context = context is None
        self._context = context if context is not None else Context()
        self._handle: Any = None
        self.protocol = 0
        self.apdu_count = 0
        try:
            hresult, handle, protocol = scard.SCardConnect(
                self._context.handle,
                reader,
                scard.SCARD_SHARE_SHARED,
                scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1,
            )
            check(hresult, "SCardConnect")
        except BaseException:
            self._release_context()
            raise
        self._handle = handle
        self.protocol = int(protocol)

    @property
    def atr(self) -> bytes:
        hresult, _reader, _state, _protocol, atr = scard.SCardStatus(self._handle)
        check(hresult, "SCardStatus")
        return bytes(atr)

    def transmit_raw(self, apdu: bytes) -> Response:
        """One SCardTransmit, no T=0 handling."""
        if self._handle is None:
            raise errors.NoCard(scard.SCARD_E_INVALID_HANDLE, "SCardTransmit", "channel closed")
        hresult, raw = scard.SCardTransmit(self._handle, self.protocol, list(apdu))
        try:
            check(hresult, "SCardTransmit")
        except (errors.UnresponsiveCard, errors.TransactionFailed) as exc:
            self._raise_if_card_left()
            raise exc from None
        self.apdu_count += 1
        if len(raw) < 2:
            self._raise_if_card_left()
            raise errors.UnresponsiveCard(
                scard.SCARD_W_UNRESPONSIVE_CARD, "SCardTransmit", "empty response"
            )
        return split_response(raw)

    def _raise_if_card_left(self) -> None:
        """After an empty or failed answer: ``CardRemoved`` if the card left. vpcd and some readers
        answer a pulled card with no bytes, and pcsc-lite reports the removal a moment after the
        failed exchange, so the reader's state is watched for :data:`REMOVAL_SETTLE_S`."""
        deadline = time.monotonic() + REMOVAL_SETTLE_S
        while True:
            hresult, _reader, state, _protocol, _atr = scard.SCardStatus(self._handle)
            if hresult in _GONE or (
                hresult == scard.SCARD_S_SUCCESS and not state & _STATUS_PRESENT
            ):
                raise errors.CardRemoved(scard.SCARD_W_REMOVED_CARD, "SCardTransmit", "card left")
            check(hresult, "SCardStatus")
            if time.monotonic() >= deadline:
                return
            time.sleep(0.05)

    def transmit(self, apdu: bytes) -> Response:
        """Send ``apdu``; resolve ``6C xx`` and ``61 xx`` so the caller sees data + final SW."""
        return resolve_t0(self.transmit_raw, apdu)

    @contextmanager
    def transaction(self) -> Iterator[CardChannel]:
        """Exclusive access for a short sequence; ends with LEAVE_CARD (card stays powered)."""
        check(scard.SCardBeginTransaction(self._handle), "SCardBeginTransaction")
        try:
            yield self
        finally:
            # Ending fails with REMOVED_CARD when the card was pulled: the exception already in
            # flight (or the caller's next call) reports that; nothing to undo on the card.
            scard.SCardEndTransaction(self._handle, scard.SCARD_LEAVE_CARD)

    def close(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            scard.SCardDisconnect(handle, scard.SCARD_LEAVE_CARD)
        self._release_context()

    def _release_context(self) -> None:
        if self._own_context:
            self._context.release()

    def __enter__(self) -> CardChannel:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
