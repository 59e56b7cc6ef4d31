"""A PC/SC context: the thin typed seam over ``smartcard.scard``.

A context is used by one thread at a time (pcsc-lite serialises calls per context, and a context
blocked in ``SCardGetStatusChange`` would stall any other call). The monitor owns one; each card
operation opens its own short-lived context.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType
from typing import Any

from smartcard import scard

from drivers import errors
from drivers.pcsc.codes import check, error_for

PNP_READER = "\\\\?PnP?\\Notification"


@dataclass(frozen=True, slots=True)
class ReaderStatus:
    """One reader's state as returned by SCardGetStatusChange."""

    reader: str
    event_state: int
    atr: bytes

    @property
    def changed(self) -> bool:
        return bool(self.event_state & scard.SCARD_STATE_CHANGED)

    @property
    def present(self) -> bool:
        return bool(self.event_state & scard.SCARD_STATE_PRESENT)

    @property
    def mute(self) -> bool:
        return bool(self.event_state & scard.SCARD_STATE_MUTE)

    @property
    def gone(self) -> bool:
        return bool(self.event_state & (scard.SCARD_STATE_UNKNOWN | scard.SCARD_STATE_IGNORE))


class Context:
    """Owns one SCARDCONTEXT; release it with :meth:`release` or a ``with`` block."""

    def __init__(self) -> None:
        hresult, handle = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        check(hresult, "SCardEstablishContext")
        self._handle: Any = handle

    @property
    def handle(self) -> Any:
        if self._handle is None:
            raise errors.ServiceUnavailable(scard.SCARD_E_INVALID_HANDLE, "context", "released")
        return self._handle

    def list_readers(self) -> list[str]:
        """Reader names; an empty list (not an error) when none is plugged."""
        hresult, readers = scard.SCardListReaders(self.handle, [])
        if hresult & 0xFFFFFFFF == scard.SCARD_E_NO_READERS_AVAILABLE & 0xFFFFFFFF:
            return []
        check(hresult, "SCardListReaders")
        return [str(r) for r in readers]

    def get_status_change(
        self, states: list[tuple[str, int]], timeout_ms: int
    ) -> list[ReaderStatus] | None:
        """Wait for a change; None on timeout or cancel (SCardCancel from another thread)."""
        hresult, new_states = scard.SCardGetStatusChange(self.handle, timeout_ms, states)
        code = hresult & 0xFFFFFFFF
        if code in (scard.SCARD_E_TIMEOUT & 0xFFFFFFFF, scard.SCARD_E_CANCELLED & 0xFFFFFFFF):
            return None
        if hresult != 0:
            raise error_for(hresult, "SCardGetStatusChange")
        return [ReaderStatus(str(r), int(s), bytes(a)) for r, s, a in new_states]

    def cancel(self) -> None:
        """Wake a blocked get_status_change (the only call safe from another thread)."""
        if self._handle is not None:
            scard.SCardCancel(self._handle)

    def is_valid(self) -> bool:
        return self._handle is not None and scard.SCardIsValidContext(self._handle) == 0

    def release(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            # Releasing a context whose daemon died fails; there is nothing left to free then.
            scard.SCardReleaseContext(handle)

    def __enter__(self) -> Context:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
