"""The virtual CPS as an IAS-ECC CPx card, driven in-process with the APDUs OpenSC's iasecc driver
sends (card-iasecc.c, 0.23): files with access rules, SDO GET DATA, PIN, MSE SET, signatures."""

from __future__ import annotations

import hashlib
import struct

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from hwsim.cards.cps import Cps3Card
from hwsim.cards.iasecc import _compress, sha256_finish
from hwsim.fixtures.people import load_people

PHARMACIST = load_people().professionals["pharmacien"]
DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")
VERIFY_OK = "0020000108" + PHARMACIST.pin.encode().hex() + "FFFFFFFF"
SHA256_IV = [
    0x6A09E667,
    0xBB67AE85,
    0x3C6EF372,
    0xA54FF53A,
    0x510E527F,
    0x9B05688C,
    0x1F83D9AB,
    0x5BE0CD19,
]


@pytest.fixture(scope="module")
def card() -> Cps3Card:
    return Cps3Card(PHARMACIST)


@pytest.fixture
def cps(card: Cps3Card) -> Cps3Card:
    card.tries_left = 3
    card.power_on()
    return card


def send(card: Cps3Card, hex_apdu: str) -> tuple[bytes, int]:
    """One APDU, resolving 61 xx with GET RESPONSE as the reader stack does."""
    raw = card.process(bytes.fromhex(hex_apdu.replace(" ", "")))
    data, sw = raw[:-2], int.from_bytes(raw[-2:], "big")
    while sw >> 8 == 0x61:
        raw = card.process(bytes([0x00, 0xC0, 0x00, 0x00, sw & 0xFF]))
        data, sw = data + raw[:-2], int.from_bytes(raw[-2:], "big")
    return data, sw


def read_ef(card: Cps3Card, path: str) -> bytes:
    fcp, sw = send(card, f"00A40904{len(path) // 2:02X}{path}00")
    assert sw == 0x9000 and fcp[0] == 0x62
    size = int.from_bytes(fcp[4:6], "big")
    out = b""
    while len(out) < size:
        chunk = min(0xE7, size - len(out))
        data, sw = send(card, f"00B0{len(out):04X}{chunk:02X}")
        assert sw == 0x9000
        out += data
    return out


def certificate(card: Cps3Card, fid: str) -> x509.Certificate:
    return x509.load_der_x509_certificate(read_ef(card, "3F000001" + fid))


def test_every_selected_file_carries_iasecc_access_rules(cps: Cps3Card) -> None:
    for path in ("3F002F01", "3F00D003", "3F0000015031", "3F0000015F01"):
        fcp, _ = send(cps, f"00A40904{len(path) // 2:02X}{path}00")
        assert bytes.fromhex("A1058C0303FF00") in fcp  # read always, update never
    assert send(cps, "00A4040C0DE828BD080F8025000001FF0010") == (b"", 0x9000)
    fcp, _ = send(cps, "00A40904043F00000100")
    assert fcp.startswith(bytes.fromhex("621D820138830200 01".replace(" ", "")))


def test_ef_atr_carries_the_io_buffer_sizes_after_the_cpx_80_prefix(cps: Cps3Card) -> None:
    content = read_ef(cps, "3F002F01")
    assert content[0] == 0x80 and content[1] == 0x43
    assert bytes.fromhex("E010020200E7020200E7020200E7020200E7") in content


def test_pin_sdo_reports_bounds_counters_and_access_rules(cps: Cps3Card) -> None:
    chv, sw = send(cps, "00CB3FFF0B4D097007BF8101037F418000")
    assert sw == 0x9000 and chv == bytes.fromhex("700DBF8101097F4106800108810104")
    send(cps, "00200001 08 30303030FFFFFFFF")
    docp, _ = send(cps, "00CB3FFF0A4D087006BF810102A08000")
    assert docp.startswith(bytes.fromhex("7016BF810112A0109A01039B0102"))


def test_private_key_sdo_has_no_public_part_but_a_docp(cps: Cps3Card) -> None:
    assert send(cps, "00CB3FFF0B4D097007BF9001037F488000")[1] == 0x6A86
    docp, sw = send(cps, "00CB3FFF0A4D087006BF900102A08000")
    assert sw == 0x9000 and bytes.fromhex("80020100") in docp  # 256-byte key
    assert send(cps, "00CB3FFF0A4D087006BF900902A08000")[1] == 0x6A88  # no key 9


def test_internal_authenticate_needs_the_pin_then_signs_with_the_card_key(cps: Cps3Card) -> None:
    message = b"document a signer"
    digest_info = DIGEST_INFO + hashlib.sha256(message).digest()
    internal_auth = f"00880000{len(digest_info):02X}{digest_info.hex()}00"
    assert send(cps, "002241A4 06 840181 800102")[1] == 0x9000
    assert send(cps, internal_auth)[1] == 0x6982  # PIN not verified
    assert send(cps, VERIFY_OK)[1] == 0x9000
    signature, sw = send(cps, internal_auth)
    assert sw == 0x9000 and len(signature) == 256
    public = certificate(cps, "5F01").public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    public.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())


def test_mse_set_refuses_unknown_keys_and_algorithms(cps: Cps3Card) -> None:
    assert send(cps, "002241A4 06 840185 800102")[1] == 0x6A88
    assert send(cps, "002241A4 06 840181 800112")[1] == 0x6A80  # SHA-1: not on this card
    assert send(cps, "00224100 06 840181 800102")[1] == 0x6A86
    assert send(cps, "00880000 03 010203 00")[1] == 0x6985  # no security environment


def test_pso_hash_then_signature_finishes_the_hosts_sha256(cps: Cps3Card) -> None:
    message = bytes(range(256)) * 3 + b"fin"  # 771 bytes: 12 blocks hashed by the host
    done = len(message) // 64 * 64
    state = SHA256_IV
    for at in range(0, done, 64):
        state = _compress(state, message[at : at + 64])
    partial = struct.pack(">8I", *state) + (done * 8).to_bytes(8, "big")
    last = message[done:]
    pso_hash = bytes([0x90, len(partial)]) + partial + bytes([0x80, len(last)]) + last
    send(cps, VERIFY_OK)
    assert send(cps, "002241AA 03 800140")[1] == 0x9000
    assert send(cps, "002241B6 06 840181 800142")[1] == 0x9000
    assert send(cps, f"002A90A0{len(pso_hash):02X}{pso_hash.hex()}")[1] == 0x9000
    signature, sw = send(cps, "002A9E9A00")
    assert sw == 0x9000
    public = certificate(cps, "5F01").public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    public.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    assert send(cps, "002A9E9A00")[1] == 0x6985  # one signature per hash


def test_sha256_from_an_intermediate_state_matches_hashlib() -> None:
    for size in (0, 55, 56, 64, 119, 200):
        message = bytes(range(size % 256)) * (size // 256 + 1)
        message = message[:size]
        done = len(message) // 64 * 64
        state = SHA256_IV
        for at in range(0, done, 64):
            state = _compress(state, message[at : at + 64])
        assert sha256_finish(state, done, message[done:]) == hashlib.sha256(message).digest()


def test_certificates_are_issued_for_the_keys_generated_in_the_card(cps: Cps3Card) -> None:
    sig = certificate(cps, "5F01")
    auth = certificate(cps, "5F02")
    assert sig.public_key() == cps.keys[1].key.public_key()
    assert auth.public_key() == cps.keys[2].key.public_key()
    assert sig.extensions.get_extension_for_class(x509.KeyUsage).value.content_commitment
    other = Cps3Card(PHARMACIST)
    assert other.keys[1].key.public_key() != cps.keys[1].key.public_key()  # each card its keys


def test_any_digest_info_is_padded_and_signed_by_the_card_key(card: Cps3Card) -> None:
    from hwsim.cards.iasecc import rsa_pkcs1_sign

    sha1_info = bytes.fromhex("3021300906052b0e03021a05000414") + hashlib.sha1(b"x").digest()
    key = card.keys[2].key
    signature = rsa_pkcs1_sign(key, sha1_info)
    public = key.public_key()
    public.verify(signature, b"x", padding.PKCS1v15(), hashes.SHA1())  # raises if not
    numbers = public.public_numbers()
    block = pow(int.from_bytes(signature, "big"), numbers.e, numbers.n).to_bytes(256, "big")
    assert block.startswith(b"\x00\x01\xff") and block.endswith(b"\x00" + sha1_info)
