"""Read a Vitale 2 card in one short PC/SC transaction (formats.md §1.3, §7.1).

APDU sequence (RufusAdmin recipe):
1. ``00 A4 00 0C 02 3F 00``             SELECT MF (MF_VITALE)        — fails on a non-Vitale
2. ``00 B0 82 00 00`` (+ offsets)       READ SFI 2 → ``65{80 nom, 81 prénom, 82 date}`` per person
   ``00 B0 83 00 00``                   READ SFI 3 → ``66{80 début de validité}`` (optional)
3. ``00 A4 04 0C 0B D2 50 .. 'VITALE'`` SELECT AID VITALE
4. ``00 B0 82 00 00`` (+ offsets)       READ SFI 2 → ``65{93 NIR}`` per person, same order

Both SELECTs ask for no response data (P2=0C, ISO 7816-4): the FCI is never used, and asking for it
costs a ``61 xx`` + GET RESPONSE round trip each on a T=0 card, so a read is 8 APDUs instead of 10.
P2=0C is plain ISO 7816-4 and what the simulated Vitale 2 answers ``90 00`` to; the public readers
of real cards (RufusAdmin, cardpeek) send P2=00, so a card that refuses P2=0C as a wrong parameter
(``6A 86``, ``6B 00``) is asked again once with P2=00, the FCI then being read and dropped.
T=0 details (``6C xx``, ``61 xx``) are resolved by the channel. Nothing is returned unless the whole
sequence succeeded, so a card pulled mid-read gives a typed PC/SC error and no partial data. The
card is left powered (LEAVE_CARD) so a CPS session in another slot is untouched.
"""

from __future__ import annotations

from typing import Protocol

from drivers import errors
from drivers.pcsc.atr import CardKind, classify_atr
from drivers.pcsc.card import CardChannel, Response
from drivers.vitale import tlv
from drivers.vitale.models import Beneficiary, VitaleCard
from drivers.vitale.nir import nir_is_valid

# P2=0C: no FCI wanted (one APDU each instead of SELECT + GET RESPONSE under T=0).
SELECT_MF = bytes.fromhex("00A4000C023F00")
AID_VITALE = bytes.fromhex("D250000002564954414C45")
SELECT_VITALE = bytes.fromhex("00A4040C0B") + AID_VITALE
MAX_FILE = 8 * 1024
_P2_REFUSED = (0x6A86, 0x6B00)  # incorrect P1/P2: SELECT P2=0C not supported by this card

TAG_PERSON = 0x65
TAG_CARD = 0x66
TAG_FAMILY_NAME = 0x80
TAG_GIVEN_NAME = 0x81
TAG_BIRTH_DATE = 0x82
TAG_NIR = 0x93
TAG_VALIDITY_START = 0x80


class Transport(Protocol):
    """What the reader needs from a card connection (CardChannel, or a fake in unit tests)."""

    apdu_count: int

    def transmit(self, apdu: bytes) -> Response: ...


def read_vitale_from_reader(reader: str) -> VitaleCard:
    """Connect to ``reader``, read the card in one transaction, leave it powered."""
    with CardChannel(reader) as channel:
        atr = channel.atr
        with channel.transaction():
            return read_vitale(channel, atr)


def read_vitale(transport: Transport, atr: bytes) -> VitaleCard:
    """Read a Vitale 2 through ``transport``; the caller holds the transaction."""
    kind = classify_atr(atr)
    if kind in (CardKind.VITALE_1, CardKind.CPS, CardKind.MUTE):
        raise errors.UnsupportedCard(kind.value, "not a Vitale 2 card")
    start = transport.apdu_count
    try:
        _select(transport, SELECT_MF, kind)
        identity = _read_sfi(transport, 2)
        card_file = _read_optional_sfi(transport, 3)
        _select(transport, SELECT_VITALE, kind)
        nirs = _read_sfi(transport, 2)
    except errors.ApduError as exc:
        if kind is CardKind.UNKNOWN:  # an unknown card without the Vitale files is not a Vitale
            raise errors.UnsupportedCard(kind.value, str(exc)) from exc
        raise
    card = decode(identity, nirs, card_file)
    return VitaleCard(card.beneficiaries, card.validity_start_raw, transport.apdu_count - start)


def decode(identity_file: bytes, nir_file: bytes, card_file: bytes = b"") -> VitaleCard:
    """Turn the files into a card; raises TlvError / CardDataError on bad contents."""
    identity_items = tlv.parse(identity_file)
    nir_items = tlv.parse(nir_file)
    persons = [t for t in identity_items if t.tag == TAG_PERSON]
    nir_persons = [t for t in nir_items if t.tag == TAG_PERSON]
    if not persons:
        raise errors.CardDataError("no beneficiary on the card")
    if len(persons) != len(nir_persons):
        raise errors.CardDataError(
            f"{len(persons)} identities but {len(nir_persons)} NIRs on the card"
        )
    beneficiaries = tuple(
        _beneficiary(rank, person, nir_person)
        for rank, (person, nir_person) in enumerate(zip(persons, nir_persons, strict=True), 1)
    )
    return VitaleCard(beneficiaries, _validity_start(tlv.parse(card_file)))


def _beneficiary(rank: int, person: tlv.Tlv, nir_person: tlv.Tlv) -> Beneficiary:
    birth = _text(person, TAG_BIRTH_DATE, rank)
    if len(birth) != 8 or not birth.isdigit():
        raise errors.CardDataError(f"beneficiary {rank}: birth date is not 8 digits")
    nir = _text(nir_person, TAG_NIR, rank).upper()
    if not nir_is_valid(nir):
        raise errors.CardDataError(f"beneficiary {rank}: NIR key check failed")
    return Beneficiary(
        rank=rank,
        family_name=_text(person, TAG_FAMILY_NAME, rank),
        given_name=_text(person, TAG_GIVEN_NAME, rank),
        birth_date_raw=birth,
        nir=nir,
    )


def _text(template: tlv.Tlv, tag: int, rank: int) -> str:
    item = template.find(tag)
    if item is None:
        raise errors.CardDataError(f"beneficiary {rank}: field {tag:02X} missing")
    # Latin-1 decodes any byte; names are space padded on some cards.
    return item.value.decode("latin-1").strip(" \x00")


def _validity_start(items: tuple[tlv.Tlv, ...]) -> str | None:
    card = next((t for t in items if t.tag == TAG_CARD), None)
    start = card.find(TAG_VALIDITY_START) if card is not None else None
    return start.value.decode("latin-1") if start is not None else None


def _select(transport: Transport, apdu: bytes, kind: CardKind) -> None:
    response = transport.transmit(apdu)
    if response.sw in _P2_REFUSED:
        # A card that only knows "return the FCI": the same SELECT with P2=00 (FCI ignored).
        response = transport.transmit(apdu[:3] + b"\x00" + apdu[4:])
    if not response.ok:
        # The Vitale applications are missing: this is not a Vitale 2 (e.g. a CPS or a bank card).
        raise errors.UnsupportedCard(
            kind.value, f"SELECT {apdu[2:4].hex().upper()} returned {response.sw:04X}"
        )


def _read_optional_sfi(transport: Transport, sfi: int) -> bytes:
    """A file that older cards may lack or protect: its absence is not an error."""
    try:
        return _read_sfi(transport, sfi)
    except errors.ApduError:
        return b""


def _read_sfi(transport: Transport, sfi: int) -> bytes:
    """READ BINARY by SFI, then by offset in 256-byte chunks until a short chunk."""
    response = transport.transmit(bytes([0x00, 0xB0, 0x80 | sfi, 0x00, 0x00]))
    if not response.ok:
        raise errors.ApduError(response.sw, f"READ BINARY SFI {sfi}")
    data = bytearray(response.data)
    chunk = response.data
    while len(chunk) >= 256 and len(data) < MAX_FILE:
        offset = len(data)
        response = transport.transmit(bytes([0x00, 0xB0, offset >> 8, offset & 0xFF, 0x00]))
        if response.sw in (0x6B00, 0x6282) or (response.ok and not response.data):
            break  # end of file reached exactly on a chunk boundary
        if not response.ok:
            raise errors.ApduError(response.sw, "READ BINARY")
        chunk = response.data
        data += chunk
    return bytes(data)
