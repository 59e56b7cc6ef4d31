"""Checks the XML-DSig of an authentication assertion as INSi and the DMP would (signxml).

:func:`verify_assertion` accepts an assertion only when:

- it carries an enveloped ``ds:Signature`` as a direct child, referencing the assertion itself, whose
  ``SignedInfo`` verifies with the certificate in ``ds:KeyInfo``;
- that certificate chains to the test PKI (:mod:`hwsim.pki`: root and issuing CA), is valid now, may
  sign (digitalSignature: the card's authentication certificate) and is not on the test CRL;
- the signed content names the certificate's holder (``IdNat`` = the certificate CN) and, when the
  caller says so, the message it came with (``MessageID``).

What is read afterwards comes from the signed copy signxml returns ("see what is signed").
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import NameOID
from lxml import etree
from signxml.exceptions import SignXMLException
from signxml.verifier import SignatureConfiguration, XMLVerifier

from hwsim.fixtures.people import load_people
from hwsim.pki import TestPki, revoked_serials

DSIG = "http://www.w3.org/2000/09/xmldsig#"
_TRUST: dict[str, Path] = {}
_TRUST_LOCK = threading.Lock()


class AssertionRefused(Exception):
    """Why the assertion is not accepted (English, for the simulator's request record)."""


@dataclass(frozen=True)
class VerifiedAssertion:
    signed: etree._Element  # the signed copy: read from it only
    idnat: str


def trust_file() -> Path:
    """PEM bundle of the test root and issuing CA (written once per process, from the cache)."""
    with _TRUST_LOCK:
        found = _TRUST.get("file")
        if found is None:
            pki = TestPki()
            found = pki.dir / "trust-anchors.pem"
            tmp = found.with_name(f"{found.name}.{os.getpid()}.tmp")  # other processes too
            tmp.write_bytes(pki.root.cert_pem + pki.ca.cert_pem)
            tmp.replace(found)
            _TRUST["file"] = found
        return found


def _signer_certificate(signature: etree._Element) -> x509.Certificate:
    text = signature.findtext(f"{{{DSIG}}}KeyInfo/{{{DSIG}}}X509Data/{{{DSIG}}}X509Certificate")
    pem = f"-----BEGIN CERTIFICATE-----\n{(text or '').strip()}\n-----END CERTIFICATE-----\n"
    return x509.load_pem_x509_certificate(pem.encode())


def verify_assertion(
    assertion: etree._Element, namespace: str, message_id: str | None = None
) -> VerifiedAssertion:
    """The verified assertion, or :class:`AssertionRefused` saying why not."""
    if assertion.find(f"{{{DSIG}}}Signature") is None:
        raise AssertionRefused("signature_missing")
    try:
        result = XMLVerifier().verify(
            etree.tostring(assertion),
            ca_pem_file=str(trust_file()),
            expect_config=SignatureConfiguration(location="./"),
        )
    except (SignXMLException, ValueError) as exc:  # bad digest, signature, chain or structure
        raise AssertionRefused(f"signature_invalid: {type(exc).__name__}") from None
    verified = result[0] if isinstance(result, list) else result
    signed = verified.signed_xml
    if signed is None or signed.tag != assertion.tag:
        raise AssertionRefused("signature_does_not_cover_the_assertion")
    certificate = _signer_certificate(verified.signature_xml)
    if certificate.serial_number in revoked_serials(load_people().professionals.values()):
        raise AssertionRefused("certificate_revoked")
    holder = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    idnat = (signed.findtext(f"{{{namespace}}}IdNat") or "").strip()
    if not holder or holder[0].value != idnat:
        raise AssertionRefused("assertion_not_for_the_certificate_holder")
    if message_id is not None and signed.findtext(f"{{{namespace}}}MessageID") != message_id:
        raise AssertionRefused("assertion_for_another_message")
    return VerifiedAssertion(signed, idnat)
