"""CPS login, signing and removal with the real stack: the virtual CPS card in hw-sim's pcscd
driven by OpenSC's PKCS#11 module (the card checks the PIN, holds the keys and signs)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from pkcs11 import Attribute, Mechanism, ObjectClass

from drivers import errors
from drivers.cps import card as cps_card
from drivers.cps.login import login, read_card_info
from drivers.cps.pkcs11_token import SHA256_DIGEST_INFO, SIGN_KEY_LABEL
from drivers.pcsc import CardChannel, CardInserted, CardRemoved
from drivers.vitale import read_vitale_from_reader
from hwsim.fixtures.people import load_people
from tests.fixtures.opensc import card_certificate
from tests.fixtures.pcsc import wait_card

pytestmark = pytest.mark.integration
PHARMACIST = load_people().professionals["pharmacien"]
CPS_READER = 1


def insert_cps(hwsim) -> str:  # type: ignore[no-untyped-def]
    reader = hwsim.reader_names[CPS_READER]
    hwsim.client.insert("cps", "pharmacien", reader=CPS_READER)
    wait_card(reader, present=True)
    return reader


def test_card_pairs_with_its_token_and_login_gives_identity(hwsim, cps_tokens) -> None:  # type: ignore[no-untyped-def]
    tokens, _infos = cps_tokens
    reader = insert_cps(hwsim)
    info = read_card_info(reader)
    assert info.serial == PHARMACIST.card_serial and info.tries_left == 3
    session = login(tokens, reader, PHARMACIST.pin)
    try:
        who = session.identity
        assert (who.rpps, who.family_name, who.given_name) == (
            PHARMACIST.rpps,
            PHARMACIST.nom,
            PHARMACIST.prenom,
        )
        assert who.national_id == "8" + PHARMACIST.rpps
        assert who.profession == PHARMACIST.profession
    finally:
        session.close()


@pytest.mark.parametrize("allow_combined", [True, False])
def test_signature_uses_the_signature_key_and_verifies(  # type: ignore[no-untyped-def]
    hwsim, cps_tokens, allow_combined: bool
) -> None:
    tokens, module = cps_tokens
    reader = insert_cps(hwsim)
    session = login(tokens, reader, PHARMACIST.pin)
    try:
        signature = session.sign(b"document to sign", allow_combined=allow_combined)
    finally:
        session.close()
    public = card_certificate(module, PHARMACIST.card_serial, signature=True).public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    public.verify(signature, b"document to sign", padding.PKCS1v15(), hashes.SHA256())
    auth_public = card_certificate(module, PHARMACIST.card_serial, signature=False).public_key()
    assert isinstance(auth_public, rsa.RSAPublicKey)
    with pytest.raises(InvalidSignature):  # never signed with the authentication key
        auth_public.verify(signature, b"document to sign", padding.PKCS1v15(), hashes.SHA256())


def test_wrong_pin_reports_tries_left_and_is_not_retried(hwsim, cps_tokens) -> None:  # type: ignore[no-untyped-def]
    tokens, _ = cps_tokens
    reader = insert_cps(hwsim)
    with pytest.raises(errors.PinIncorrect) as info:
        login(tokens, reader, "0000")
    assert info.value.tries_left == 2
    # One wrong PIN spent exactly one try: the card's counter says 2, not less.
    assert read_card_info(reader).tries_left == 2
    with pytest.raises(errors.PinIncorrect) as info:
        login(tokens, reader, "0000")
    assert info.value.tries_left == 1
    with pytest.raises(errors.PinFinalTry):
        login(tokens, reader, PHARMACIST.pin)
    assert read_card_info(reader).tries_left == 1  # refused before any try
    session = login(tokens, reader, PHARMACIST.pin, confirm_final_try=True)
    session.close()
    assert read_card_info(reader).tries_left == 3


def test_vitale_read_leaves_the_cps_logged_in(hwsim, cps_tokens) -> None:  # type: ignore[no-untyped-def]
    tokens, _ = cps_tokens
    reader = insert_cps(hwsim)
    session = login(tokens, reader, PHARMACIST.pin)
    try:
        vitale_reader = hwsim.reader_names[0]
        hwsim.client.insert("vitale", "famille-testnom", reader=0)
        wait_card(vitale_reader, present=True)
        assert len(read_vitale_from_reader(vitale_reader).beneficiaries) == 2
        # Our own PC/SC use of the CPS card (serial + counter) disconnects with LEAVE_CARD too.
        assert read_card_info(reader).serial == PHARMACIST.card_serial
        # The CPS card still holds its verified PIN (it was never powered off or reset) ...
        with CardChannel(reader) as channel:
            assert cps_card.pin_verified(channel)
        # ... and the PKCS#11 session is still logged in and signs.
        assert session.is_logged_in()
        assert session.sign(b"after vitale")
    finally:
        session.close()


def test_cps_pulled_gives_removal_event_and_logout(hwsim, cps_tokens, monitor) -> None:  # type: ignore[no-untyped-def]
    tokens, _ = cps_tokens
    _mon, log = monitor
    reader = insert_cps(hwsim)
    session = login(tokens, reader, PHARMACIST.pin)

    def on_event(event):  # type: ignore[no-untyped-def]
        if isinstance(event, CardRemoved) and event.reader == reader:
            session.close()  # what the daemon's hardware service does on removal

    log.wait_for(lambda e: isinstance(e, CardInserted) and e.reader == reader)
    hwsim.client.remove(CPS_READER)
    removed = log.wait_for(lambda e: isinstance(e, CardRemoved) and e.reader == reader, timeout=2.0)
    on_event(removed)
    assert not session.open
    with pytest.raises(errors.NotLoggedIn):
        session.sign(b"after removal")


def test_one_session_shared_by_threads_signs_consistently(hwsim, cps_tokens) -> None:  # type: ignore[no-untyped-def]
    tokens, module = cps_tokens
    reader = insert_cps(hwsim)
    session = login(tokens, reader, PHARMACIST.pin)
    public = card_certificate(module, PHARMACIST.card_serial, signature=True).public_key()
    assert isinstance(public, rsa.RSAPublicKey)

    def sign_many(worker: int) -> list[tuple[bytes, bytes]]:
        out = []
        for i in range(5):
            data = f"{worker}-{i}".encode()
            out.append((data, session.sign(data, allow_combined=i % 2 == 0)))
        return out

    try:
        with ThreadPoolExecutor(max_workers=6) as pool:
            results = [pair for batch in pool.map(sign_many, range(6)) for pair in batch]
    finally:
        session.close()
    assert len(results) == 30
    for data, signature in results:
        public.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
    with pytest.raises(errors.NotLoggedIn):
        session.sign(b"closed")


def test_login_sign_sends_the_apdus_of_a_raw_session_and_no_more(hwsim, cps_tokens) -> None:  # type: ignore[no-untyped-def]
    # Counted on the card side. A login + sign is the card's own PC/SC reads (serial, PIN
    # counter) plus what OpenSC sends for one token lookup, C_Login and one C_Sign: the combined
    # hash-and-sign mechanism OpenSC lists but cannot do is tried once per card, not per login.
    tokens, _ = cps_tokens
    reader = insert_cps(hwsim)

    def ours() -> None:
        session = login(tokens, reader, PHARMACIST.pin)
        try:
            session.sign(b"document")
        finally:
            session.close()

    def floor() -> None:
        from drivers.cps.card import SELECT_MF_NO_FCI, SELECT_SN_ICC

        with CardChannel(reader) as channel, channel.transaction():
            channel.transmit(SELECT_SN_ICC)
            channel.transmit(cps_card.READ_SN_ICC)
            channel.transmit(SELECT_MF_NO_FCI)
            channel.transmit(bytes.fromhex("00CB3FFF0A4D087006BF810102A080"))
        token = tokens.find(PHARMACIST.card_serial)  # slot list, token info
        with token.open(user_pin=PHARMACIST.pin) as raw:
            (key,) = raw.get_objects(
                {Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.LABEL: SIGN_KEY_LABEL}
            )
            key.sign(SHA256_DIGEST_INFO + bytes(32), mechanism=Mechanism.RSA_PKCS)

    ours()  # OpenSC binds the card's PKCS#15 application once
    counts = []
    for call in (ours, floor, ours):
        before = hwsim.client.apdus(CPS_READER)
        call()
        counts.append(hwsim.client.apdus(CPS_READER) - before)
    assert counts[0] == counts[1] == counts[2]


def test_check_before_the_pin_reads_the_card_once_and_gives_the_identity(hwsim, cps_tokens) -> None:  # type: ignore[no-untyped-def]
    tokens, module = cps_tokens
    reader = insert_cps(hwsim)
    checked: list[bytes] = []
    session = login(tokens, reader, PHARMACIST.pin, before_pin=lambda read: checked.append(read()))
    try:
        assert checked == [
            card_certificate(module, PHARMACIST.card_serial, signature=False).public_bytes(
                Encoding.DER
            )
        ]
        assert session.identity.rpps == PHARMACIST.rpps
    finally:
        session.close()


def test_a_failed_check_before_the_pin_presents_no_pin(hwsim, cps_tokens) -> None:  # type: ignore[no-untyped-def]
    tokens, _ = cps_tokens
    reader = insert_cps(hwsim)

    def revoked(read: object) -> None:
        raise errors.CertificateError("revoked")

    with pytest.raises(errors.CertificateError):
        login(tokens, reader, "0000", before_pin=revoked)
    assert read_card_info(reader).tries_left == 3  # the wrong PIN never reached the card


def test_card_swapped_during_the_check_gets_no_pin(hwsim, cps_tokens) -> None:  # type: ignore[no-untyped-def]
    tokens, _ = cps_tokens
    reader = insert_cps(hwsim)

    def slow_check(read) -> None:  # type: ignore[no-untyped-def]
        read()
        hwsim.client.swap("cps", "pharmacien-adjoint", reader=CPS_READER)
        wait_card(reader, present=True)

    with pytest.raises(errors.TokenRemoved):
        login(tokens, reader, PHARMACIST.pin, before_pin=slow_check)
    other = read_card_info(reader)
    assert other.serial != PHARMACIST.card_serial and other.tries_left == 3


def test_daemon_card_reads_the_token_once_for_the_revocation_check_and_the_login(
    hwsim, cps_tokens
) -> None:  # type: ignore[no-untyped-def]
    from lgo.services.cps import Pkcs11CpsCard

    _, module = cps_tokens
    reader = insert_cps(hwsim)
    card = Pkcs11CpsCard(module)

    def plain() -> None:
        card.login(reader, PHARMACIST.pin, confirm_final_try=False).close()

    def checked() -> None:
        certificate = card.auth_certificate(reader)
        session = card.login(reader, PHARMACIST.pin, confirm_final_try=False)
        assert session.authentication_certificate() == certificate
        session.close()

    plain()  # OpenSC binds the card's PKCS#15 application once
    counts = []
    for call in (plain, checked):
        before = hwsim.client.apdus(CPS_READER)
        call()
        counts.append(hwsim.client.apdus(CPS_READER) - before)
    # Only the serial and counter are read again after the check (SELECT + GET RESPONSE, READ,
    # SELECT MF, GET DATA + GET RESPONSE): no second token lookup (OpenSC: 13 APDUs).
    assert counts[1] - counts[0] == 6
