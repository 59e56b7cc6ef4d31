"""The CPS card seen through PC/SC: serial (EF.SN.ICC), PIN try counter, verified-PIN status.

APDUs from formats.md §2.3 / §7.2. The serial pairs the PC/SC card with its PKCS#11 token (the
Cryptolib token serial is the EF.SN.ICC serial without the issuer prefix ``8025000001``).
"""

from __future__ import annotations

from typing import Protocol

from drivers import errors
from drivers.pcsc.card import Response
from drivers.vitale import tlv

ISSUER_PREFIX = "8025000001"
SELECT_SN_ICC = bytes.fromhex("00A40904043F00D003")
READ_SN_ICC = bytes.fromhex("00B000000C")
SELECT_MF_NO_FCI = bytes.fromhex("00A4090C023F00")
PIN_REF = 0x01


class Transport(Protocol):
    def transmit(self, apdu: bytes) -> Response: ...


def read_serial(transport: Transport) -> str:
    """The card serial from EF.SN.ICC (``5A 0A`` + BCD PAN, issuer prefix and F padding removed)."""
    selected = transport.transmit(SELECT_SN_ICC)
    if not selected.ok:
        raise errors.UnsupportedCard("unknown", f"EF.SN.ICC not found ({selected.sw:04X})")
    response = transport.transmit(READ_SN_ICC)
    if not response.ok:
        raise errors.ApduError(response.sw, "READ BINARY EF.SN.ICC")
    items = tlv.parse(response.data)
    pan_item = next((t for t in items if t.tag == 0x5A), None)
    if pan_item is None:
        raise errors.CardDataError("EF.SN.ICC has no PAN (5A)")
    pan = pan_item.value.hex().upper().rstrip("F")
    if not pan.startswith(ISSUER_PREFIX) or not pan[len(ISSUER_PREFIX) :].isdigit():
        raise errors.CardDataError("EF.SN.ICC PAN is not an ANS CPS serial")
    return pan[len(ISSUER_PREFIX) :]


def _find(items: tuple[tlv.Tlv, ...], tag: int) -> tlv.Tlv | None:
    for item in items:
        if item.tag == tag:
            return item
        found = _find(item.children, tag)
        if found is not None:
            return found
    return None


def read_pin_tries(transport: Transport, ref: int = PIN_REF) -> tuple[int, int]:
    """(max tries, tries left) from the GET DATA PIN counter."""
    transport.transmit(SELECT_MF_NO_FCI)
    command = bytes.fromhex("00CB3FFF0A4D087006BF81") + bytes([ref]) + bytes.fromhex("02A080")
    response = transport.transmit(command)
    if not response.ok:
        raise errors.ApduError(response.sw, "GET DATA PIN counter")
    items = tlv.parse(response.data)
    maximum, left = _find(items, 0x9A), _find(items, 0x9B)
    if maximum is None or left is None or len(maximum.value) != 1 or len(left.value) != 1:
        raise errors.CardDataError("PIN counter template lacks 9A/9B")
    return maximum.value[0], left.value[0]


def pin_verified(transport: Transport, ref: int = PIN_REF) -> bool:
    """VERIFY without data: 90 00 when the card still holds a verified PIN (no try is spent)."""
    response = transport.transmit(bytes([0x00, 0x20, 0x00, ref]))
    return response.ok
