"""CPS through PKCS#11 (python-pkcs11) and the CPS card's PC/SC side (serial, PIN counter)."""

from drivers.cps.card import pin_verified, read_pin_tries, read_serial
from drivers.cps.identity import ProfessionalIdentity, identity_from_certificate, luhn_is_valid
from drivers.cps.pkcs11_token import (
    CpsSession,
    CpsTokens,
    PinStatus,
    TokenInfo,
    check_pin_format,
    pin_status_from_flags,
)

__all__ = [
    "CpsSession",
    "CpsTokens",
    "PinStatus",
    "ProfessionalIdentity",
    "TokenInfo",
    "check_pin_format",
    "identity_from_certificate",
    "luhn_is_valid",
    "pin_status_from_flags",
    "pin_verified",
    "read_pin_tries",
    "read_serial",
]
