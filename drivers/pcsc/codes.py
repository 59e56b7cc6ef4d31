"""PC/SC return codes → typed exceptions (each carries its raw code)."""

from __future__ import annotations

from smartcard import scard

from drivers import errors

SUCCESS = 0
# Codes meaning "the daemon went away" (comm error is pcsc-lite's RPC transport failure).
_RPC_TRANSPORT = 0x80100013  # SCARD_F_COMM_ERROR
_SERVICE_CODES = {
    scard.SCARD_E_NO_SERVICE & 0xFFFFFFFF,
    scard.SCARD_E_SERVICE_STOPPED & 0xFFFFFFFF,
    scard.SCARD_E_INVALID_HANDLE & 0xFFFFFFFF,
    _RPC_TRANSPORT,
    0x80100001,  # SCARD_F_INTERNAL_ERROR: seen when the context died with pcscd
}

_BY_CODE: dict[int, type[errors.PcscError]] = {
    scard.SCARD_E_NO_READERS_AVAILABLE: errors.NoReadersAvailable,
    scard.SCARD_E_UNKNOWN_READER: errors.ReaderUnavailable,
    scard.SCARD_E_READER_UNAVAILABLE: errors.ReaderUnavailable,
    scard.SCARD_E_NO_SMARTCARD: errors.NoCard,
    scard.SCARD_W_REMOVED_CARD: errors.CardRemoved,
    scard.SCARD_W_RESET_CARD: errors.CardReset,
    scard.SCARD_E_SHARING_VIOLATION: errors.SharingViolation,
    scard.SCARD_W_UNRESPONSIVE_CARD: errors.UnresponsiveCard,
    scard.SCARD_W_UNPOWERED_CARD: errors.UnresponsiveCard,
    scard.SCARD_E_TIMEOUT: errors.PcscTimeout,
    scard.SCARD_E_CANCELLED: errors.PcscCancelled,
    scard.SCARD_E_NOT_TRANSACTED: errors.TransactionFailed,
}
_BY_CODE = {code & 0xFFFFFFFF: cls for code, cls in _BY_CODE.items()}


def error_for(hresult: int, operation: str) -> errors.PcscError:
    """The typed exception for a failed PC/SC call (not raised: callers raise it)."""
    code = hresult & 0xFFFFFFFF
    cls: type[errors.PcscError]
    if code in _SERVICE_CODES:
        cls = errors.ServiceUnavailable
    else:
        cls = _BY_CODE.get(code, errors.PcscError)
    try:
        message = str(scard.SCardGetErrorMessage(hresult))
    except Exception:  # the message is decoration only; never mask the real error
        message = ""
    return cls(code, operation, message)


def check(hresult: int, operation: str) -> None:
    """Raise the typed exception when ``hresult`` is not SCARD_S_SUCCESS."""
    if hresult != SUCCESS:
        raise error_for(hresult, operation)
