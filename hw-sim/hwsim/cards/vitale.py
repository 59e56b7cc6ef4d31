"""Virtual Vitale cards: Vitale 2 (free-read identity files), Vitale 1 (ATR only).

Layout follows formats.md §1.2, §1.3 and §7.1; the exact APDU sequence is in cards/README.md.
"""

from __future__ import annotations

import zlib

from hwsim.cards.base import SW_CLA_NOT_SUPPORTED, SW_INS_NOT_SUPPORTED, Apdu, Card, SwError
from hwsim.cards.filesystem import DF, EF, FileCard
from hwsim.cards.tlv import bcd, tlv
from hwsim.fixtures.people import Beneficiary, VitaleProfile

VITALE2_ATR = bytes.fromhex("3B 75 13 00 00 47 09 EA 90 00")
VITALE1_ATR = bytes.fromhex("3F 65 25 00 2C 09 69 90 00")
AID_MF_VITALE = bytes.fromhex("D2 50 00 00 02") + b"MF_VITALE"
AID_VITALE = bytes.fromhex("D2 50 00 00 02") + b"VITALE"

FID_IDENTITY = 0x0002  # MF_VITALE, SFI 2: 65{80,81,82[,90]} per beneficiary
FID_CARD = 0x0003  # MF_VITALE, SFI 3: 66{80} card template
FID_NIR = 0x0002  # VITALE, SFI 2: 65{93} per beneficiary, same order
FID_POINTERS = 0x2001  # VITALE: directory of applications and files
FID_RIGHTS = 0x0005  # VITALE, SFI 5: protected (régime, rang, qualité) -> 69 82
FID_DIR = 0x2F00
FID_PAN = 0x2F02


def _text(value: str) -> bytes:
    return value.encode("latin-1")


def _padded(content: bytes) -> bytes:
    """Zero-pad to a multiple of 16 with at least 2 zero bytes, like the real files."""
    size = (len(content) + 2 + 15) // 16 * 16
    return content + bytes(size - len(content))


def identity_file(people: tuple[Beneficiary, ...]) -> bytes:
    out = b""
    for person in people:
        body = tlv(0x80, _text(person.nom)) + tlv(0x81, _text(person.prenom))
        body += tlv(0x82, person.date_naissance.encode("ascii"))
        if person.pays:
            body += tlv(0x90, _text(person.pays))
        out += tlv(0x65, body)
    return _padded(out)


def nir_file(people: tuple[Beneficiary, ...]) -> bytes:
    return _padded(b"".join(tlv(0x65, tlv(0x93, p.nir.encode("ascii"))) for p in people))


def rights_file(people: tuple[Beneficiary, ...]) -> bytes:
    """Never readable (69 82); the layout is ours, only so the file is not empty."""
    body = b""
    for p in people:
        org = f"{p.regime}{p.caisse}{p.centre}".encode("ascii")
        body += tlv(
            0x67, tlv(0x83, str(p.rang).encode()) + tlv(0x84, p.qualite.encode()) + tlv(0x85, org)
        )
    return _padded(body)


def pointers_file() -> bytes:
    apps = tlv(0x82, b"\x00\x01\x00\x00" + AID_MF_VITALE) + tlv(
        0x82, b"\x00\x02\x00\x00" + AID_VITALE
    )
    files = [
        (b"IDENTITE", 1, FID_IDENTITY),
        (b"CARTE   ", 1, FID_CARD),
        (b"NIR     ", 2, FID_NIR),
        (b"DROITS  ", 2, FID_RIGHTS),
    ]
    entries = b"".join(
        tlv(0x80, name + entry.to_bytes(2, "big") + fid.to_bytes(2, "big"))
        for name, entry, fid in files
    )
    return tlv(0xE0, tlv(0xA0, apps) + entries)


def card_number(profile_id: str) -> str:
    """A stable fictitious 16-digit card number derived from the profile id."""
    return f"{zlib.crc32(profile_id.encode()):016d}"


class Vitale2Card(FileCard):
    kind = "vitale2"
    atr = VITALE2_ATR

    def __init__(self, profile: VitaleProfile) -> None:
        self.profile = profile
        people = profile.beneficiaries
        mf = DF(
            "MF_VITALE",
            aid=AID_MF_VITALE,
            fid=0x3F00,
            efs=[
                EF(FID_IDENTITY, identity_file(people), sfi=2),
                EF(FID_CARD, _padded(tlv(0x66, tlv(0x80, profile.validity_start.encode()))), sfi=3),
                EF(FID_DIR, tlv(0x61, tlv(0x4F, AID_VITALE) + tlv(0x50, b"VITALE"))),
                EF(FID_PAN, tlv(0x5A, bcd(card_number(profile.id)))),
            ],
        )
        vitale = DF(
            "VITALE",
            aid=AID_VITALE,
            efs=[
                EF(FID_POINTERS, pointers_file()),
                EF(FID_NIR, nir_file(people), sfi=2),
                EF(FID_RIGHTS, rights_file(people), sfi=5, protected=True),
            ],
        )
        super().__init__(mf, [vitale])

    def describe(self) -> dict[str, object]:
        return {
            **super().describe(),
            "profile": self.profile.id,
            "beneficiaries": len(self.profile.beneficiaries),
        }


class Vitale1Card(Card):
    """Vitale 1: only the ATR is simulated; CLA 00 gets 6E 00, proprietary CLA BC gets 6D 00."""

    kind = "vitale1"
    atr = VITALE1_ATR

    def check_cla(self, apdu: Apdu) -> None:
        if apdu.cla != 0xBC:
            raise SwError(SW_CLA_NOT_SUPPORTED)
        raise SwError(SW_INS_NOT_SUPPORTED)
