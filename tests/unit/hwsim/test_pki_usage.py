"""Key usages of the test PKI: the authorities sign certificates and CRLs, end entities don't."""

from __future__ import annotations

from pathlib import Path

from cryptography import x509

from hwsim.pki import TestPki, _usage


def _key_usage(cert: x509.Certificate) -> x509.KeyUsage:
    return cert.extensions.get_extension_for_class(x509.KeyUsage).value


def test_authorities_sign_certificates_and_crls(tmp_path: Path) -> None:
    pki = TestPki(tmp_path)
    for authority in (pki.root.cert, pki.ca.cert):
        usage = _key_usage(authority)
        assert usage.key_cert_sign and usage.crl_sign
        assert not usage.digital_signature and not usage.key_encipherment


def test_end_entity_usages_never_sign_certificates() -> None:
    signature = _usage(content_commitment=True)
    assert signature.content_commitment and not signature.key_cert_sign
    auth = _usage(digital_signature=True, key_encipherment=True)
    assert auth.digital_signature and auth.key_encipherment
    assert not auth.key_cert_sign and not auth.crl_sign
