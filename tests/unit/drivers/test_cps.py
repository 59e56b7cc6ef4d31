"""CPS pieces without a token: identity from certificates, PIN flags, card APDUs (hw-sim card),
the login guard (fake token), and the T=0 exchange rules."""

from __future__ import annotations

import datetime as dt
import threading
import weakref
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from pkcs11 import TokenFlag
from pkcs11 import exceptions as p11

from drivers import errors
from drivers.cps import card, identity_from_certificate, luhn_is_valid, pin_status_from_flags
from drivers.cps.pkcs11_token import CpsTokens, check_pin_format
from drivers.pcsc.card import Response, resolve_t0
from hwsim.cards.cps import Cps3Card
from hwsim.fixtures.people import load_people
from tests.unit.drivers.cards import CardTransport

PHARMACIST = load_people().professionals["pharmacien"]
_KEY = ec.generate_private_key(ec.SECP256R1())


def certificate(*attributes: x509.NameAttribute[str]) -> bytes:
    name = x509.Name([x509.RelativeDistinguishedName(attributes)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(_KEY.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(_KEY, hashes.SHA256())
    )
    return cert.public_bytes(Encoding.DER)


def test_identity_by_attribute_type_with_rpps() -> None:
    der = certificate(
        x509.NameAttribute(NameOID.SURNAME, "TESTPHARMA"),
        x509.NameAttribute(NameOID.COMMON_NAME, "810999999997"),
        x509.NameAttribute(NameOID.GIVEN_NAME, "ALEX"),
        x509.NameAttribute(NameOID.TITLE, "Pharmacien"),
    )
    who = identity_from_certificate(der)
    assert (who.national_id, who.rpps) == ("810999999997", "10999999997")
    assert (who.family_name, who.given_name, who.profession) == ("TESTPHARMA", "ALEX", "Pharmacien")


def test_rpps_failing_luhn_is_refused_and_adeli_has_no_rpps() -> None:
    def cn(value: str) -> bytes:
        return certificate(x509.NameAttribute(NameOID.COMMON_NAME, value))

    with pytest.raises(errors.CertificateError):
        identity_from_certificate(cn("810999999998"))
    adeli = identity_from_certificate(cn("00B7010446"))
    assert adeli.rpps is None and adeli.national_id == "00B7010446"
    with pytest.raises(errors.CertificateError):
        identity_from_certificate(b"not a certificate")


def test_luhn() -> None:
    assert luhn_is_valid("10999999997") and not luhn_is_valid("10999999996")
    assert luhn_is_valid(PHARMACIST.rpps)


def test_pin_flags() -> None:
    assert pin_status_from_flags(0).tries_left is None
    final = pin_status_from_flags(int(TokenFlag.USER_PIN_FINAL_TRY | TokenFlag.USER_PIN_COUNT_LOW))
    assert final.final_try and final.tries_left == 1 and not final.locked
    assert pin_status_from_flags(int(TokenFlag.USER_PIN_LOCKED)).locked
    from_card = pin_status_from_flags(0, tries_left=1)
    assert from_card.final_try and from_card.count_low


@pytest.mark.parametrize("pin", ["", "123", "123456789", "12a4", "１２３４"])
def test_pin_format(pin: str) -> None:
    with pytest.raises(errors.PinFormatError):
        check_pin_format(pin)


def test_card_serial_and_pin_counter_from_the_cps_card() -> None:
    transport = CardTransport(Cps3Card(PHARMACIST))
    assert card.read_serial(transport) == PHARMACIST.card_serial
    assert card.read_pin_tries(transport) == (3, 3)


def test_card_verified_pin_status_spends_no_try() -> None:
    cps = Cps3Card(PHARMACIST)
    transport = CardTransport(cps)
    assert not card.pin_verified(transport)
    assert cps.tries_left == 3  # the status query (VERIFY without data) counts nothing
    cps.process(bytes.fromhex("0020000108") + PHARMACIST.pin.encode() + b"\xff" * 4)
    assert card.pin_verified(transport)


class FakeToken:
    def __init__(self, flags: int, fail: type[Exception] | None = None) -> None:
        self.flags = flags
        self.serial = b"123456789"
        self.fail = fail
        self.logins = 0

    def open(self, user_pin: str | None = None) -> Any:
        self.logins += 1
        if self.fail is not None:
            raise self.fail()
        raise AssertionError("not expected in these tests")


class FakeSlot:
    def __init__(self, token: FakeToken) -> None:
        self.token = token

    def get_token(self) -> FakeToken:
        return self.token


class FakeLib:
    """A module that only shows its tokens after a re-initialisation when ``snapshot`` is set."""

    def __init__(self, token: FakeToken, snapshot: bool = False) -> None:
        self.token = token
        self.visible = not snapshot
        self.reinitialized = 0

    def get_slots(self, token_present: bool) -> list[FakeSlot]:
        return [FakeSlot(self.token)] if self.visible else []

    def reinitialize(self) -> None:
        self.reinitialized += 1
        self.visible = True


def tokens_with(token: FakeToken, snapshot: bool = False) -> CpsTokens:
    tokens = object.__new__(CpsTokens)
    tokens._lib = FakeLib(token, snapshot)
    tokens._sessions = weakref.WeakSet()
    tokens._lock = threading.RLock()
    return tokens


def test_token_inserted_after_initialisation_is_found_by_reinitialising() -> None:
    tokens = tokens_with(FakeToken(0), snapshot=True)
    assert tokens.find("123456789").serial == b"123456789"
    assert tokens._lib.reinitialized == 1
    with pytest.raises(errors.TokenNotFound):
        tokens.find("000")


def test_final_try_needs_confirmation_and_locked_is_never_tried() -> None:
    final = FakeToken(int(TokenFlag.USER_PIN_FINAL_TRY), fail=p11.PinIncorrect)
    tokens = tokens_with(final)
    with pytest.raises(errors.PinFinalTry):
        tokens.login("123456789", "1234")
    assert final.logins == 0
    with pytest.raises(errors.PinIncorrect):
        tokens.login("123456789", "1234", confirm_final_try=True)
    assert final.logins == 1  # one attempt, no retry
    locked = FakeToken(int(TokenFlag.USER_PIN_LOCKED))
    with pytest.raises(errors.PinLocked):
        tokens_with(locked).login("123456789", "1234", confirm_final_try=True)
    assert locked.logins == 0


def test_wrong_pin_reports_tries_from_the_recount() -> None:
    token = FakeToken(0, fail=p11.PinIncorrect)
    with pytest.raises(errors.PinIncorrect) as info:
        tokens_with(token).login("123456789", "1234", tries_after_failure=lambda: 2)
    assert info.value.tries_left == 2 and token.logins == 1


def test_unknown_serial() -> None:
    with pytest.raises(errors.TokenNotFound):
        tokens_with(FakeToken(0)).find("999")


def script(*answers: str) -> tuple[list[bytes], Any]:
    sent: list[bytes] = []
    replies = [bytes.fromhex(a) for a in answers]

    def send(apdu: bytes) -> Response:
        sent.append(apdu)
        raw = replies.pop(0)
        return Response(raw[:-2], int.from_bytes(raw[-2:], "big"))

    return sent, send


def test_t0_wrong_le_is_resent_with_the_card_length() -> None:
    sent, send = script("6C05", "0102030405 9000".replace(" ", ""))
    result = resolve_t0(send, bytes.fromhex("00B0820000"))
    assert result == Response(bytes.fromhex("0102030405"), 0x9000)
    assert sent[1] == bytes.fromhex("00B0820005")


def test_t0_get_response_chain() -> None:
    sent, send = script("6102", "AABB6101", "CC9000")
    result = resolve_t0(send, bytes.fromhex("00A4040002D250"))
    assert result == Response(bytes.fromhex("AABBCC"), 0x9000)
    assert sent[1:] == [bytes.fromhex("00C0000002"), bytes.fromhex("00C0000001")]


def test_endless_get_response_chain_is_malformed() -> None:
    _, send = script(*(["6101"] + ["AA6101"] * 100))
    with pytest.raises(errors.MalformedResponse):
        resolve_t0(send, bytes.fromhex("00CA000000"))
