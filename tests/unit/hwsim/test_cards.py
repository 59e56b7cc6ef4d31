"""Virtual cards in-process: APDU bytes in, response bytes out."""

from __future__ import annotations

import pytest

from hwsim.cards import Apdu, Cps3Card, ErrorCard, MuteCard, SwError, Vitale1Card, Vitale2Card
from hwsim.cards.cps import sn_icc
from hwsim.fixtures import load_people

PEOPLE = load_people()
AID_VITALE = b"\xd2\x50\x00\x00\x02VITALE"
AID_MF_VITALE = b"\xd2\x50\x00\x00\x02MF_VITALE"


def run(card: object, hexapdu: str) -> tuple[bytes, int]:
    assert isinstance(card, Vitale2Card | Cps3Card | Vitale1Card | ErrorCard | MuteCard)
    answer = card.process(bytes.fromhex(hexapdu.replace(" ", "")))
    return answer[:-2], int.from_bytes(answer[-2:], "big")


def tlvs(data: bytes) -> list[tuple[int, bytes]]:
    out, i = [], 0
    while i < len(data) and data[i]:
        out.append((data[i], data[i + 2 : i + 2 + data[i + 1]]))
        i += 2 + data[i + 1]
    return out


@pytest.fixture
def vitale() -> Vitale2Card:
    card = Vitale2Card(PEOPLE.vitale["famille-testnom"])
    card.power_on()
    return card


@pytest.fixture
def cps() -> Cps3Card:
    card = Cps3Card(PEOPLE.professionals["pharmacien"])
    card.power_on()
    return card


class TestApduParsing:
    def test_cases(self) -> None:
        assert Apdu.parse(bytes.fromhex("00A40000")).data == b""
        assert Apdu.parse(bytes.fromhex("00B0000000")).le == 256
        assert Apdu.parse(bytes.fromhex("00A4040002 3F00".replace(" ", ""))).le is None
        case4 = Apdu.parse(bytes.fromhex("00A404000BD250000002564954414C4500"))
        assert case4.data == AID_VITALE and case4.le == 256
        ext = Apdu.parse(bytes.fromhex("00B00000 00012C".replace(" ", "")))
        assert ext.le == 300

    def test_bad_length_is_6700(self, vitale: Vitale2Card) -> None:
        assert run(vitale, "00A4000005 3F00")[1] == 0x6700
        assert run(vitale, "00A4")[1] == 0x6700


class TestVitale2:
    def test_identity_file_formats_md_bytes(self, vitale: Vitale2Card) -> None:
        assert run(vitale, "00A4000002 3F00")[1] == 0x6112
        _, sw = run(vitale, "00B0820000")
        assert sw >> 8 == 0x6C
        data, sw = run(vitale, f"00B08200{sw & 0xFF:02X}")
        assert sw == 0x9000
        expected = bytes.fromhex(
            "651C 8007 54455354 4E4F4D 8107 43414D494C4C45 8208 3139393931323331"
            "6518 8007 54455354 4E4F4D 8103 4C4F55 8208 3230313030363135".replace(" ", "")
        )
        assert data.startswith(expected) and set(data[len(expected) :]) == {0}

    def test_nir_file_same_order(self, vitale: Vitale2Card) -> None:
        run(vitale, "00A4040C0B" + AID_VITALE.hex())
        data, _ = run(vitale, "00B0820030")
        nirs = [dict(tlvs(v))[0x93] for _, v in tlvs(data)]
        assert nirs == [b"299127505699943", b"210067505632139"]

    def test_get_response_after_select(self, vitale: Vitale2Card) -> None:
        _, sw = run(vitale, "00A404000E" + AID_MF_VITALE.hex())
        fci, sw2 = run(vitale, f"00C00000{sw & 0xFF:02X}")
        assert sw2 == 0x9000 and fci[0] == 0x6F and AID_MF_VITALE in fci
        assert run(vitale, "00C0000010")[1] == 0x6985  # nothing pending any more

    def test_select_p2_0c_answers_9000_without_data(self, vitale: Vitale2Card) -> None:
        # P2=0C (no response data): one APDU, no 61 xx, and the selection takes effect.
        assert run(vitale, "00A4000C02 3F00") == (b"", 0x9000)
        assert run(vitale, "00B0820010")[1] == 0x9000  # SFI 2 of MF_VITALE
        assert run(vitale, "00A4040C0B" + AID_VITALE.hex()) == (b"", 0x9000)
        nir, sw = run(vitale, "00B0820005")
        assert sw == 0x9000 and nir == bytes.fromhex("6511930F32")  # SFI 2 of VITALE: NIRs
        assert run(vitale, "00C0000010")[1] == 0x6985  # nothing pending for GET RESPONSE
        assert run(vitale, "00A4040C0B" + bytes(11).hex()) == (b"", 0x6A82)

    def test_select_p2_00_still_offers_the_fci(self, vitale: Vitale2Card) -> None:
        _, sw = run(vitale, "00A404000B" + AID_VITALE.hex())
        assert sw == 0x610F
        fci, sw = run(vitale, "00C000000F")
        assert sw == 0x9000 and fci == bytes.fromhex("6F0D840B") + AID_VITALE

    def test_read_by_offset_and_errors(self, vitale: Vitale2Card) -> None:
        assert run(vitale, "00B0000010")[1] == 0x6986  # no current EF
        run(vitale, "00A4000C02 0002")
        first, sw = run(vitale, "00B0000004")
        assert (first, sw) == (bytes.fromhex("651C8007"), 0x9000)
        assert run(vitale, "00B0000204")[0] == bytes.fromhex("8007 5445".replace(" ", ""))
        assert run(vitale, "00B0100004")[1] == 0x6B00
        assert run(vitale, "00A4000C02 9999")[1] == 0x6A82
        assert run(vitale, "00A4040007A0000000031010")[1] == 0x6A82
        assert run(vitale, "00DA000000")[1] == 0x6D00
        assert run(vitale, "BCB0000004")[1] == 0x6E00

    def test_protected_file_69_82(self, vitale: Vitale2Card) -> None:
        run(vitale, "00A4040C0B" + AID_VITALE.hex())
        assert run(vitale, "00B0850000")[1] == 0x6982

    def test_pointers_file(self, vitale: Vitale2Card) -> None:
        run(vitale, "00A4040C0B" + AID_VITALE.hex())
        run(vitale, "00A4000C02 2001")
        _, sw = run(vitale, "00B0000000")
        data, _ = run(vitale, f"00B00000{sw & 0xFF:02X}")
        assert data[0] == 0xE0 and AID_VITALE in data and b"IDENTITE" in data

    def test_reset_forgets_selection(self, vitale: Vitale2Card) -> None:
        run(vitale, "00A4000C02 0002")
        vitale.reset()
        assert run(vitale, "00B0000004")[1] == 0x6986

    def test_lunar_date_raw(self) -> None:
        card = Vitale2Card(PEOPLE.vitale["lunaire"])
        _, sw = run(card, "00B0820000")
        data, _ = run(card, f"00B08200{sw & 0xFF:02X}")
        assert dict(tlvs(tlvs(data)[0][1]))[0x82] == b"19800000"


class TestCps3:
    def test_serial_file(self, cps: Cps3Card) -> None:
        assert sn_icc("123456789") == bytes.fromhex("5A0A80250000011234567 89F".replace(" ", ""))
        _, sw = run(cps, "00A4090404 3F00D003")
        assert sw == 0x6114
        fcp = run(cps, "00C0000014")[0]
        assert fcp[:2] == b"\x62\x12" and fcp[-7:] == bytes.fromhex("A1058C0303FF00")  # ACL
        assert run(cps, "00B000000C")[0] == sn_icc("123456789")

    def test_pin_counter_and_lock(self, cps: Cps3Card) -> None:
        def tries() -> int:
            assert run(cps, "00CB3FFF0A 4D087006BF810102A080")[1] == 0x6118
            data, _ = run(cps, "00C0000018")
            assert data.startswith(bytes.fromhex("7016BF810112A0109A0103 9B01".replace(" ", "")))
            return data[13]

        wrong = "00200001 08 30303030FFFFFFFF"
        assert tries() == 3
        assert run(cps, wrong)[1] == 0x63C2
        assert run(cps, "00200001")[1] == 0x63C2  # status query does not spend a try
        assert run(cps, wrong)[1] == 0x63C1
        assert tries() == 1
        assert run(cps, wrong)[1] == 0x6983
        assert run(cps, "00200001 08 31323334FFFFFFFF")[1] == 0x6983
        assert tries() == 0 and cps.blocked

    def test_right_pin_verifies_until_reset(self, cps: Cps3Card) -> None:
        assert run(cps, "00200001 08 31323334FFFFFFFF")[1] == 0x9000
        assert run(cps, "00200001")[1] == 0x9000
        cps.power_off()
        assert run(cps, "00200001")[1] == 0x63C3

    def test_bad_verify_inputs(self, cps: Cps3Card) -> None:
        assert run(cps, "00200002 08 31323334FFFFFFFF")[1] == 0x6A88
        assert run(cps, "00200001 04 31323334")[1] == 0x6700
        assert cps.tries_left == 3

    def test_vitale_aid_not_found(self, cps: Cps3Card) -> None:
        assert run(cps, "00A404000B" + AID_VITALE.hex())[1] == 0x6A82
        assert run(cps, "00A4040C0D E828BD080F8025000001FF0010")[1] == 0x9000

    def test_cps4_atr(self) -> None:
        card = Cps3Card(PEOPLE.professionals["pharmacien"], cps4=True)
        assert card.atr.hex().upper().startswith("3B9B18")


class TestOtherCards:
    def test_vitale1_only_atr(self) -> None:
        card = Vitale1Card()
        assert card.atr[0] == 0x3F
        assert run(card, "00A4000002 3F00")[1] == 0x6E00
        assert run(card, "BCB0000004")[1] == 0x6D00

    def test_error_card(self) -> None:
        assert run(ErrorCard(), "00A4000002 3F00")[1] == 0x6F00

    def test_mute_flag(self) -> None:
        assert MuteCard().mute and not Vitale1Card().mute


def test_sw_error_carries_data() -> None:
    err = SwError(0x6110, b"\x01")
    assert err.sw == 0x6110 and err.data == b"\x01"
