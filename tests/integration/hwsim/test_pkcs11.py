"""SoftHSM CPS tokens: objects as Cryptolib presents them, signing, certificate chain, pairing."""

from __future__ import annotations

import pkcs11
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.exceptions import PinIncorrect

from hwsim.fixtures import load_people, luhn_key
from tests.fixtures.softhsm import SoftHsmTokens

pytestmark = pytest.mark.integration
PEOPLE = load_people()


def _lib(tokens: SoftHsmTokens) -> pkcs11.lib:
    return pkcs11.lib(str(tokens.module))


def test_one_token_per_professional_with_card_serial(softhsm_tokens: SoftHsmTokens) -> None:
    lib = _lib(softhsm_tokens)
    present = {t.serial.decode().strip(): t for t in lib.get_tokens()}
    for pro in PEOPLE.professionals.values():
        token = present[pro.card_serial]
        assert token.label == softhsm_tokens.by_profile(pro.id).label
        assert pkcs11.TokenFlag.LOGIN_REQUIRED in token.flags


def test_objects_labels_and_ids(softhsm_tokens: SoftHsmTokens) -> None:
    info = softhsm_tokens.by_profile("pharmacien")
    token = _lib(softhsm_tokens).get_token(token_label=info.label)
    with token.open() as public:
        labels = {o[Attribute.LABEL] for o in public.get_objects({Attribute.TOKEN: True})}
    assert {
        "Certificat de Signature CPS",
        "Certificat d'Authentification CPS",
        "CPS_INFO_PS",
    } <= labels
    assert "CPS_ACTIVITY_01_PS" not in labels  # private data needs the PIN
    with token.open(user_pin=info.pin) as session:
        keys = {
            k[Attribute.LABEL]: k[Attribute.ID]
            for k in session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY})
        }
        activity = next(session.get_objects({Attribute.LABEL: "CPS_ACTIVITY_01_PS"}))
        assert activity[Attribute.VALUE][0] == 0xEE
    assert keys == {
        "CPS_PRIV_SIG": bytes.fromhex("E828BD080F8025000001FF001001"),
        "CPS_PRIV_AUT": bytes.fromhex("E828BD080F8025000001FF001002"),
    }


def test_sign_with_cps_signature_key_verifies_to_test_root(softhsm_tokens: SoftHsmTokens) -> None:
    info = softhsm_tokens.by_profile("pharmacien")
    token = _lib(softhsm_tokens).get_token(token_label=info.label)
    document = b"<dispensation id='42'/>"
    with token.open(user_pin=info.pin) as session:
        key = session.get_key(
            ObjectClass.PRIVATE_KEY,
            KeyType.RSA,
            label="CPS_PRIV_SIG",
            id=bytes.fromhex(info.sig_id),
        )
        signature = key.sign(document, mechanism=Mechanism.SHA256_RSA_PKCS)
        der = next(
            session.get_objects({Attribute.CLASS: ObjectClass.CERTIFICATE, Attribute.ID: key.id})
        )[Attribute.VALUE]
    cert = x509.load_der_x509_certificate(der)
    public_key = cert.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey) and public_key.key_size == 2048
    public_key.verify(signature, document, padding.PKCS1v15(), hashes.SHA256())
    ca = x509.load_pem_x509_certificate(softhsm_tokens.ca_pem.read_bytes())
    root = x509.load_pem_x509_certificate(softhsm_tokens.root_pem.read_bytes())
    cert.verify_directly_issued_by(ca)
    ca.verify_directly_issued_by(root)
    root.verify_directly_issued_by(root)
    assert cert.extensions.get_extension_for_class(x509.KeyUsage).value.content_commitment

    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert cn == info.idnat and cn.startswith("8")
    rpps = str(cn)[1:]
    assert len(rpps) == 11 and luhn_key(rpps[:10]) == rpps[10]
    assert cert.subject.get_attributes_for_oid(NameOID.SURNAME)[0].value == "TESTPHARMA"
    assert cert.subject.get_attributes_for_oid(NameOID.TITLE)[0].value == "Pharmacien"
    assert len(cert.subject.rdns[-1]) == 3  # CN+SN+GN multi-valued RDN


def test_wrong_pin_is_refused(softhsm_tokens: SoftHsmTokens) -> None:
    info = softhsm_tokens.by_profile("medecin")
    token = _lib(softhsm_tokens).get_token(token_label=info.label)
    with pytest.raises(PinIncorrect), token.open(user_pin="0000"):
        pass


def test_card_in_reader_pairs_with_its_token(softhsm_tokens: SoftHsmTokens, hwsim: object) -> None:
    from smartcard.System import readers

    from tests.fixtures.pcsc import HwsimBench, wait_card

    assert isinstance(hwsim, HwsimBench)
    hwsim.client.insert("cps", "pharmacien-adjoint", reader=1)
    wait_card(hwsim.reader_names[1], present=True)
    conn = next(r for r in readers() if str(r) == hwsim.reader_names[1]).createConnection()
    conn.connect()
    conn.transmit([0x00, 0xA4, 0x09, 0x0C, 0x04, 0x3F, 0x00, 0xD0, 0x03])
    data, sw1, _ = conn.transmit([0x00, 0xB0, 0x00, 0x00, 0x0C])
    conn.disconnect()
    assert sw1 == 0x90
    serial = bytes(data[2:]).hex().upper().removeprefix("8025000001").rstrip("F")
    token = _lib(softhsm_tokens).get_token(token_serial=serial.encode())
    assert token.label == softhsm_tokens.by_profile("pharmacien-adjoint").label
