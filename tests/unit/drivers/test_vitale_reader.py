"""Vitale 2 reading against hw-sim's in-process cards (same bytes the vpcd card serves)."""

from __future__ import annotations

import datetime as dt

import pytest

from drivers import errors
from drivers.vitale import decode, nir_is_valid, nir_key, read_vitale
from drivers.vitale.models import Beneficiary
from hwsim.cards.base import Apdu, SwError
from hwsim.cards.cps import Cps3Card
from hwsim.cards.vitale import Vitale1Card, Vitale2Card
from hwsim.fixtures.people import People, load_people
from tests.unit.drivers.cards import CardTransport


@pytest.fixture(scope="module")
def people() -> People:
    return load_people()


def read(card: Vitale2Card | Vitale1Card | Cps3Card, pull_after: int | None = None):  # type: ignore[no-untyped-def]
    transport = CardTransport(card, pull_after)
    return read_vitale(transport, card.atr), transport


def test_family_card_gives_every_beneficiary_in_card_order(people: People) -> None:
    profile = people.vitale["famille-testnom"]
    card, _ = read(Vitale2Card(profile))
    expected = [(b.nom, b.prenom, b.date_naissance, b.nir) for b in profile.beneficiaries]
    got = [(b.family_name, b.given_name, b.birth_date_raw, b.nir) for b in card.beneficiaries]
    assert got == expected
    assert [b.rank for b in card.beneficiaries] == list(range(1, len(expected) + 1))
    assert card.holder.given_name == profile.beneficiaries[0].prenom
    assert card.validity_start_raw == profile.validity_start


def test_every_fixture_profile_reads_back_exactly(people: People) -> None:
    for profile in people.vitale.values():
        card, _ = read(Vitale2Card(profile))
        assert [b.nir for b in card.beneficiaries] == [b.nir for b in profile.beneficiaries]
        assert [b.birth_date_raw for b in card.beneficiaries] == [
            b.date_naissance for b in profile.beneficiaries
        ]


def test_lunar_birth_date_is_kept_raw(people: People) -> None:
    card, _ = read(Vitale2Card(people.vitale["lunaire"]))
    person = card.holder
    assert person.birth_date_raw == "19800000"
    assert person.is_lunar and person.birth_date is None


def test_read_uses_t0_retries_and_counts_apdus(people: People) -> None:
    card, transport = read(Vitale2Card(people.vitale["seul"]))
    assert card.apdu_count == transport.apdu_count
    # READ BINARY with Le=00 is answered 6C xx by a T=0 card: the driver resends with Le=xx.
    reads = [apdu for apdu in transport.sent if apdu[1] == 0xB0]
    assert any(apdu[-1] != 0 for apdu in reads)


def test_read_is_8_apdus_with_selects_asking_no_fci(people: People) -> None:
    vitale = Vitale2Card(people.vitale["famille-testnom"])
    card, transport = read(vitale)
    # Counted by the card itself: 2 SELECTs (P2=0C, one APDU each) + 3 READ BINARY (6C xx, resend).
    assert vitale.apdu_count == card.apdu_count == 8
    selects = [apdu for apdu in transport.sent if apdu[1] == 0xA4]
    assert [apdu[3] for apdu in selects] == [0x0C, 0x0C]
    assert not [apdu for apdu in transport.sent if apdu[1] == 0xC0]  # no GET RESPONSE


class _FciOnlyCard(Vitale2Card):
    """A card that refuses SELECT P2=0C as a wrong parameter (6A 86), as some masks might."""

    def select(self, apdu: Apdu) -> bytes:
        if apdu.p2 == 0x0C:
            raise SwError(0x6A86)
        return super().select(apdu)


def test_card_refusing_p2_0c_is_selected_again_with_p2_00(people: People) -> None:
    profile = people.vitale["famille-testnom"]
    vitale = _FciOnlyCard(profile)
    card, transport = read(vitale)
    assert [b.nir for b in card.beneficiaries] == [b.nir for b in profile.beneficiaries]
    selects = [apdu[3] for apdu in transport.sent if apdu[1] == 0xA4]
    assert selects == [0x0C, 0x00, 0x0C, 0x00]
    assert vitale.apdu_count == card.apdu_count == 12  # 2 refused + 2 × (SELECT, GET RESPONSE) + 6


def test_vitale1_is_unsupported_before_any_apdu(people: People) -> None:
    transport = CardTransport(Vitale1Card())
    with pytest.raises(errors.UnsupportedCard) as info:
        read_vitale(transport, transport.card.atr)
    assert info.value.kind == "vitale1"
    assert transport.apdu_count == 0


def test_cps_in_the_vitale_path_is_unsupported(people: People) -> None:
    cps = Cps3Card(people.professionals["pharmacien"])
    with pytest.raises(errors.UnsupportedCard):
        read(cps)
    # Unknown ATR: the Vitale applications are looked for, and their absence is "unsupported".
    transport = CardTransport(cps)
    with pytest.raises(errors.UnsupportedCard):
        read_vitale(transport, bytes.fromhex("3B888001505956434152443173"))


# A read is 8 APDUs: pulled before the first, in the middle, and before the last one.
@pytest.mark.parametrize("pull_after", [0, 1, 3, 5, 6, 7])
def test_card_pulled_mid_read_is_a_typed_error_and_no_data(people: People, pull_after: int) -> None:
    with pytest.raises(errors.CardRemoved):
        read(Vitale2Card(people.vitale["famille-testnom"]), pull_after)


def test_bad_nir_key_is_card_data_error() -> None:
    identity = bytes.fromhex("65108001418101428208") + b"19991231"
    nir = bytes.fromhex("6511930F") + b"299127505699944"
    with pytest.raises(errors.CardDataError):
        decode(identity, nir)


def test_lists_of_different_length_are_card_data_error() -> None:
    identity = (bytes.fromhex("65108001418101428208") + b"19991231") * 2
    nir = bytes.fromhex("6511930F") + b"299127505699943"
    with pytest.raises(errors.CardDataError):
        decode(identity, nir)


def test_nir_key_rules_including_corsica() -> None:
    assert nir_key("2991275056999") == 43
    body = "175032A004005"
    key = 97 - int(body.replace("2A", "19")) % 97
    assert nir_is_valid(body + f"{key:02d}")
    assert not nir_is_valid(body + f"{(key + 1) % 97:02d}")
    assert not nir_is_valid("29912750569994")  # 14 chars
    assert not nir_is_valid("599127505699943")  # sex digit 5


def test_birth_date_property() -> None:
    person = Beneficiary(1, "A", "B", "20100615", "210067505632139")
    assert person.birth_date == dt.date(2010, 6, 15) and not person.is_lunar
