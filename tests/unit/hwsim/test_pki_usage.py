"""Key usages of the test PKI: the authorities sign certificates and CRLs, end entities don't."""

from __future__ import annotations

from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from hwsim.national.mss_pki import make_ca, organisation_name
from hwsim.pki import TestPki, key_usage, private_key_pem


def _cert_key_usage(cert: x509.Certificate) -> x509.KeyUsage:
    return cert.extensions.get_extension_for_class(x509.KeyUsage).value


def test_authorities_sign_certificates_and_crls(tmp_path: Path) -> None:
    pki = TestPki(tmp_path)
    for authority in (pki.root.cert, pki.ca.cert):
        usage = _cert_key_usage(authority)
        assert usage.key_cert_sign and usage.crl_sign
        assert not usage.digital_signature and not usage.key_encipherment


def test_end_entity_usages_never_sign_certificates() -> None:
    signature = key_usage(content_commitment=True)
    assert signature.content_commitment and not signature.key_cert_sign
    auth = key_usage(digital_signature=True, key_encipherment=True)
    assert auth.digital_signature and auth.key_encipherment
    assert not auth.key_cert_sign and not auth.crl_sign


def test_mss_test_pki_uses_the_same_helpers(tmp_path: Path) -> None:
    ca = make_ca(tmp_path)
    assert _cert_key_usage(ca.cert) == key_usage(ca=True)
    issued = ca.issue(
        tmp_path, "client", organisation_name("Pharmacie", "1750000000", "x.fr"), server=False
    )
    key = serialization.load_pem_private_key(issued.key_file.read_bytes(), password=None)
    assert issued.key_file.read_bytes() == private_key_pem(key)
    assert issued.key_file.stat().st_mode & 0o777 == 0o600
    cert = x509.load_pem_x509_certificate(issued.cert_file.read_bytes())
    assert cert.issuer == ca.cert.subject
    cert.verify_directly_issued_by(ca.cert)
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ski = ca.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ski.digest  # key identifiers on the MSSanté test PKI too
