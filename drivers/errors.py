"""One exception tree for the hardware layer.

Every failure a driver can meet is a subclass of :class:`DriverError` with a stable ``code`` (snake
case, English) so the daemon can translate it into its own ``LgoError`` without string matching.
Messages never carry a PIN, a NIR, a name or any card content: only ids, lengths and status codes.
"""

from __future__ import annotations


class DriverError(Exception):
    """Base of every error raised by ``drivers``."""

    code = "driver_error"


class DeadlineExceeded(DriverError):
    """A blocking hardware call did not return before its deadline."""

    code = "deadline_exceeded"


# --- PC/SC ------------------------------------------------------------------------------------


class PcscError(DriverError):
    """A PC/SC call failed; ``hresult`` is the raw SCARD_* code."""

    code = "pcsc_error"

    def __init__(self, hresult: int, operation: str, message: str = "") -> None:
        self.hresult = hresult & 0xFFFFFFFF
        self.operation = operation
        text = f"{operation} failed: 0x{self.hresult:08X}"
        if message:
            text = f"{text} ({message})"
        super().__init__(text)


class ServiceUnavailable(PcscError):
    """pcscd is not running or went away (NO_SERVICE, SERVICE_STOPPED, RPC transport errors)."""

    code = "pcsc_service_unavailable"


class NoReadersAvailable(PcscError):
    code = "pcsc_no_readers"


class ReaderUnavailable(PcscError):
    """The reader is unknown or was unplugged."""

    code = "pcsc_reader_unavailable"


class NoCard(PcscError):
    code = "pcsc_no_card"


class CardRemoved(PcscError):
    """The card left the reader (or was reset by someone else) during the operation."""

    code = "pcsc_card_removed"


class CardReset(PcscError):
    code = "pcsc_card_reset"


class SharingViolation(PcscError):
    """Another process holds the reader exclusively."""

    code = "pcsc_sharing_violation"


class UnresponsiveCard(PcscError):
    code = "pcsc_unresponsive_card"


class PcscTimeout(PcscError):
    code = "pcsc_timeout"


class PcscCancelled(PcscError):
    code = "pcsc_cancelled"


class TransactionFailed(PcscError):
    code = "pcsc_not_transacted"


# --- APDU level -------------------------------------------------------------------------------


class ApduError(DriverError):
    """The card answered a status word that the caller did not expect."""

    code = "apdu_error"

    def __init__(self, sw: int, command: str) -> None:
        self.sw = sw
        self.command = command
        super().__init__(f"{command} returned SW {sw:04X}")


class MalformedResponse(DriverError):
    """A response was too short, too long or chained endlessly."""

    code = "malformed_response"


# --- Card contents ----------------------------------------------------------------------------


class UnsupportedCard(DriverError):
    """The card is not one this driver reads (Vitale 1, unknown card, CPS in the Vitale path)."""

    code = "unsupported_card"

    def __init__(self, kind: str, reason: str) -> None:
        self.kind = kind
        self.reason = reason
        super().__init__(f"unsupported card ({kind}): {reason}")


class TlvError(DriverError):
    """BER-TLV bytes could not be decoded."""

    code = "tlv_error"


class CardDataError(DriverError):
    """The card's data decoded but is inconsistent (bad NIR key, missing field, lists differ)."""

    code = "card_data_error"


# --- CPS / PKCS#11 ----------------------------------------------------------------------------


class CpsError(DriverError):
    code = "cps_error"


class Pkcs11ModuleError(CpsError):
    """The PKCS#11 module could not be loaded or initialised."""

    code = "pkcs11_module_error"


class TokenNotFound(CpsError):
    code = "cps_token_not_found"


class TokenRemoved(CpsError):
    """The token (card) went away; the session is gone."""

    code = "cps_token_removed"


class PinIncorrect(CpsError):
    """Wrong PIN. ``tries_left``: what the token/card reported after the failure (None: unknown)."""

    code = "cps_pin_incorrect"

    def __init__(self, tries_left: int | None) -> None:
        self.tries_left = tries_left
        left = "?" if tries_left is None else str(tries_left)
        super().__init__(f"PIN incorrect, tries left: {left}")


class PinLocked(CpsError):
    code = "cps_pin_locked"


class PinFinalTry(CpsError):
    """The next wrong PIN locks the card; the caller must confirm before we try."""

    code = "cps_pin_final_try"


class PinFormatError(CpsError):
    """The PIN given is not 4 to 8 digits; nothing was sent to the card."""

    code = "cps_pin_format"


class NotLoggedIn(CpsError):
    code = "cps_not_logged_in"


class AlreadyLoggedIn(CpsError):
    code = "cps_already_logged_in"


class KeyNotFound(CpsError):
    code = "cps_key_not_found"


class CertificateError(CpsError):
    """The authentication certificate is missing or does not give a professional identity."""

    code = "cps_certificate_error"


class SigningError(CpsError):
    code = "cps_signing_error"


# --- Scanners ---------------------------------------------------------------------------------


class ScannerError(DriverError):
    code = "scanner_error"


class ScannerUnavailable(ScannerError):
    """The device could not be opened or disappeared."""

    code = "scanner_unavailable"


class CodeFormatError(DriverError):
    """A scanned code claims a format (GS1, INS DataMatrix, 2D-Doc) but does not follow it."""

    code = "code_format_error"


class PayloadTooLong(ScannerError):
    code = "scanner_payload_too_long"
