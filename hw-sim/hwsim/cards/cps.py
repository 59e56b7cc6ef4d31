"""Virtual CPS3 card (APDU layer): EF.SN.ICC serial, PIN try counter by GET DATA, VERIFY.

Follows formats.md §2.2, §2.3 and §7.2. Signing is not done by APDUs here: the keys live in the
SoftHSM token of the same serial (hwsim.pkcs11). MSE/PSO/INTERNAL AUTHENTICATE answer 6D 00.
"""

from __future__ import annotations

from hwsim.cards.base import (
    SW_AUTH_BLOCKED,
    SW_REFERENCED_DATA_NOT_FOUND,
    SW_WRONG_LENGTH,
    Apdu,
    SwError,
)
from hwsim.cards.filesystem import DF, EF, FileCard
from hwsim.cards.tlv import bcd, length, tlv
from hwsim.fixtures.people import Professional

CPS3_ATR = bytes.fromhex("3B AC 00 40 2A 00 12 25 00 64 80 00 03 10 00 90 00")
CPS4_ATR = bytes.fromhex("3B 9B 18 80 01 00 12 25 00 64 80 04 01 00 00 90 44")
AID_IAS = bytes.fromhex("E8 28 BD 08 0F 80 25 00 00 01 FF 00 10")
ISSUER_PREFIX = "8025000001"
FID_SN_ICC = 0xD003
FID_EF_ATR = 0x2F01
PIN_REFS = (0x01, 0x81)  # global and local reference both name the PIN
MAX_TRIES = 3


def sn_icc(serial: str) -> bytes:
    """EF.SN.ICC: `5A 0A` + PAN (issuer prefix + serial, F-padded), 12 bytes."""
    pan = (ISSUER_PREFIX + serial).ljust(20, "F")
    return tlv(0x5A, bcd(pan))


class Cps3Card(FileCard):
    kind = "cps"

    def __init__(self, professional: Professional, cps4: bool = False) -> None:
        self.professional = professional
        self.atr = CPS4_ATR if cps4 else CPS3_ATR
        self.pin = professional.pin.encode("ascii")
        self.tries_left = MAX_TRIES
        self.verified = False
        mf = DF(
            "MF",
            fid=0x3F00,
            efs=[
                EF(FID_SN_ICC, sn_icc(professional.card_serial)),
                EF(FID_EF_ATR, b"\x80" + self.atr[1:]),
            ],
        )
        super().__init__(mf, [DF("IAS", aid=AID_IAS)])
        self.handlers[0x20] = self.verify
        self.handlers[0xCB] = self.get_data

    def on_reset(self) -> None:
        super().on_reset()
        self.verified = False

    @property
    def blocked(self) -> bool:
        return self.tries_left == 0

    def verify(self, apdu: Apdu) -> bytes:
        if apdu.p1 != 0x00 or apdu.p2 not in PIN_REFS:
            raise SwError(SW_REFERENCED_DATA_NOT_FOUND)
        if self.blocked:
            raise SwError(SW_AUTH_BLOCKED)
        if not apdu.data:  # status query: how many tries are left
            if self.verified:
                return b""
            raise SwError(0x63C0 | self.tries_left)
        if len(apdu.data) != 8:
            raise SwError(SW_WRONG_LENGTH)
        if apdu.data == self.pin + b"\xff" * (8 - len(self.pin)):
            self.tries_left = MAX_TRIES
            self.verified = True
            return b""
        self.verified = False
        self.tries_left -= 1
        if self.blocked:
            raise SwError(SW_AUTH_BLOCKED)
        raise SwError(0x63C0 | self.tries_left)

    def get_data(self, apdu: Apdu) -> bytes:
        """PIN counter: `00 CB 3F FF 0A 4D 08 70 06 BF 81 <ref> 02 A0 80`."""
        prefix = bytes.fromhex("4D 08 70 06 BF 81")
        data = apdu.data
        if (apdu.p1, apdu.p2) != (0x3F, 0xFF) or len(data) != 10 or not data.startswith(prefix):
            raise SwError(SW_REFERENCED_DATA_NOT_FOUND)
        ref = data[6]
        if ref not in PIN_REFS:
            raise SwError(SW_REFERENCED_DATA_NOT_FOUND)
        counters = tlv(0x9A, bytes([MAX_TRIES])) + tlv(0x9B, bytes([self.tries_left]))
        counters += tlv(0xA1, tlv(0x8C, bytes.fromhex("F3 00 00 13 FF 00")))
        template = tlv(0xA0, counters)
        answer = tlv(0x70, bytes([0xBF, 0x81, ref]) + length(len(template)) + template)
        return self.respond(apdu, answer)

    def describe(self) -> dict[str, object]:
        return {
            **super().describe(),
            "profile": self.professional.id,
            "serial": self.professional.card_serial,
            "tries_left": self.tries_left,
        }
