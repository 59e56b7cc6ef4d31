"""Wait until pcscd itself reports a card in (or out of) a reader.

A vpcd link goes up or down at once, but pcscd polls vpcd readers every 400 ms: a tool run right
after an insert may find no card, and a removal followed at once by an insert (a swap) may never be
seen at all, where a person's hands take seconds. Both the control API (swap) and the CLI wait here.
pyscard comes with lgo; a bare hw-sim install without it waits a fixed poll period instead.
"""

from __future__ import annotations

import time

PCSCD_POLL_S = 0.4


def wait_card_state(reader_name: str, present: bool, timeout_s: float = 3.0) -> bool:
    """True once pcscd reports the wanted state (within ``timeout_s``); the PC/SC socket is the
    process's own (``PCSCLITE_CSOCK_NAME`` or the default)."""
    try:
        from smartcard import scard
    except ImportError:
        time.sleep(2 * PCSCD_POLL_S)
        return False
    hresult, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if hresult != scard.SCARD_S_SUCCESS:
        return False
    try:
        deadline = time.monotonic() + timeout_s
        states = [(reader_name, scard.SCARD_STATE_UNAWARE)]
        wait_ms = 0
        while True:
            hresult, new = scard.SCardGetStatusChange(ctx, wait_ms, states)
            if hresult == scard.SCARD_S_SUCCESS:
                states = [(name, state & ~scard.SCARD_STATE_CHANGED) for name, state, _ in new]
                if bool(states[0][1] & scard.SCARD_STATE_PRESENT) == present:
                    return True
            elif hresult != scard.SCARD_E_TIMEOUT:
                return False
            wait_ms = int((deadline - time.monotonic()) * 1000)
            if wait_ms <= 0:
                return False
    finally:
        scard.SCardReleaseContext(ctx)
