"""XML-DSig of an authentication assertion with the CPS card's key (signxml, key kept on the card).

:func:`sign_enveloped` gives the assertion an enveloped ``ds:Signature`` (exclusive C14N,
RSA-SHA256 or ECDSA-SHA256 after the card's key type, SHA-256 digest, the card's authentication
certificate in ``ds:KeyInfo/ds:X509Data``). signxml computes the canonical ``SignedInfo`` and hands
it to the key object's ``sign``: :class:`_CardKey` forwards it to the card (PKCS#11
``CKM_SHA256_RSA_PKCS`` / ``CKM_ECDSA_SHA256`` through :class:`CardKey`), so the private key never
leaves the card.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, cast

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from lxml import etree

DSIG = "http://www.w3.org/2000/09/xmldsig#"


class CardKey(Protocol):
    """What the CPS session offers for an authentication signature (drivers.cps.CpsSession)."""

    def sign_authentication(self, data: bytes) -> bytes: ...

    def authentication_certificate(self) -> bytes: ...


class UnsupportedCardKey(ValueError):
    pass


class _CardKey:
    """Duck-types the ``sign`` of cryptography's private keys for signxml; the card signs."""

    def __init__(self, card: CardKey, public_key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        self._card = card
        self.key_size = public_key.key_size
        self._public_key = public_key

    def public_key(self) -> rsa.RSAPublicKey | ec.EllipticCurvePublicKey:
        return self._public_key

    def sign(self, data: bytes, *_args: Any, **_kwargs: Any) -> bytes:
        # signxml asks for PKCS#1 v1.5 + SHA-256 (RSA) or ECDSA-SHA256 with a DER result (EC):
        # exactly what the card's SHA-256 mechanisms return.
        return self._card.sign_authentication(data)


def sign_enveloped(element: etree._Element, card: CardKey) -> etree._Element:
    """A signed copy of ``element`` (which carries an ``Id``), the signature as its last child."""
    # signxml (~100 ms, ~9 MiB) and cryptography.x509 (~25 ms) are loaded on the first signature,
    # not at the daemon's start.
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from signxml.algorithms import (
        CanonicalizationMethod,
        DigestAlgorithm,
        SignatureConstructionMethod,
        SignatureMethod,
    )
    from signxml.signer import XMLSigner

    certificate = x509.load_der_x509_certificate(card.authentication_certificate())
    public_key = certificate.public_key()
    if isinstance(public_key, rsa.RSAPublicKey):
        algorithm = SignatureMethod.RSA_SHA256
    elif isinstance(public_key, ec.EllipticCurvePublicKey):
        algorithm = SignatureMethod.ECDSA_SHA256
    else:
        raise UnsupportedCardKey(type(public_key).__name__)
    signer = XMLSigner(
        method=SignatureConstructionMethod.enveloped,
        signature_algorithm=algorithm,
        digest_algorithm=DigestAlgorithm.SHA256,
        c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0,
    )
    key = cast(rsa.RSAPrivateKey, _CardKey(card, public_key))  # only .sign/.key_size are used
    signed: etree._Element = signer.sign(
        element, key=key, cert=[certificate], reference_uri=f"#{element.get('Id')}"
    )
    return signed
