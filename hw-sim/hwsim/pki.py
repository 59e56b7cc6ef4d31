"""A test PKI shaped like IGC-Santé: a root, an issuing CA for persons, and per professional an
authentication and a signature RSA-2048 certificate (formats.md §2.5, §7.2).

Keys are slow to make (RSA-2048), so everything is cached as PEM files (keys as unencrypted
PKCS#8: they are test keys) in a cache directory keyed by the professional's fixture data.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificatePublicKeyTypes,
    PrivateKeyTypes,
)
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hwsim.fixtures.people import Professional

PKI_VERSION = "1"
ORG = [
    x509.NameAttribute(NameOID.COUNTRY_NAME, "FR"),
    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ASIP-SANTE"),
    x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "0002 187512751"),
    x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "IGC-SANTE TEST"),
]
ROOT_CN = "TEST AC RACINE IGC-SANTE FORT"
CA_CN = "TEST AC IGC-SANTE FORT PERSONNES"


def default_cache_dir() -> Path:
    env = os.environ.get("LGO_HWSIM_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "lgo-hwsim"


@dataclass(frozen=True)
class Issued:
    key: rsa.RSAPrivateKey
    cert: x509.Certificate

    @property
    def key_der(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @property
    def cert_der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True)
class ProfessionalCredentials:
    professional: Professional
    auth: Issued
    signature: Issued


def person_subject(pro: Professional) -> x509.Name:
    """`CN=8+RPPS+SN=NOM+GN=PRENOM, title=Profession, C=FR` (first RDN multi-valued)."""
    return x509.Name(
        [
            x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COUNTRY_NAME, "FR")]),
            x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.TITLE, pro.profession)]),
            x509.RelativeDistinguishedName(
                [
                    x509.NameAttribute(NameOID.COMMON_NAME, pro.idnat),
                    x509.NameAttribute(NameOID.SURNAME, pro.nom),
                    x509.NameAttribute(NameOID.GIVEN_NAME, pro.prenom),
                ]
            ),
        ]
    )


def _ca_name(cn: str) -> x509.Name:
    return x509.Name([*ORG, x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def private_key_pem(key: PrivateKeyTypes) -> bytes:
    """Unencrypted PKCS#8 PEM: these are test keys, written with mode 0600."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def certificate_builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: CertificatePublicKeyTypes,
    not_before: dt.datetime,
    not_after: dt.datetime,
) -> x509.CertificateBuilder:
    """Names, key, a random serial and the validity: what every certificate here starts from."""
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )


def _write(path: Path, issued: Issued) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(private_key_pem(issued.key) + issued.cert_pem)
    tmp.chmod(0o600)
    tmp.replace(path)  # atomic: parallel sessions never read half a file


def _read(path: Path) -> Issued | None:
    if not path.exists():
        return None
    data = path.read_bytes()
    # our own cache files: skip the (slow, ~0.2 s) RSA consistency check
    key = serialization.load_pem_private_key(
        data, password=None, unsafe_skip_rsa_key_validation=True
    )
    if not isinstance(key, rsa.RSAPrivateKey):
        return None
    return Issued(key, x509.load_pem_x509_certificate(data))


class TestPki:
    """Root + issuing CA, loaded from (or created in) `cache_dir/pki-v<N>/`."""

    __test__ = False  # not a pytest class

    def __init__(self, cache_dir: Path | None = None) -> None:
        self.dir = (cache_dir or default_cache_dir()) / f"pki-v{PKI_VERSION}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.root = _read(self.dir / "root.pem") or self._make_root()
        self.ca = _read(self.dir / "ca.pem") or self._make_ca()

    def _make_root(self) -> Issued:
        key = _new_key()
        name = _ca_name(ROOT_CN)
        cert = (
            self._builder(name, name, key, days=7300)
            .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
            .add_extension(key_usage(ca=True), critical=True)
            .sign(key, hashes.SHA256())
        )
        issued = Issued(key, cert)
        _write(self.dir / "root.pem", issued)
        return issued

    def _make_ca(self) -> Issued:
        key = _new_key()
        cert = (
            self._builder(_ca_name(CA_CN), self.root.cert.subject, key, days=5000)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(key_usage(ca=True), critical=True)
            .sign(self.root.key, hashes.SHA256())
        )
        issued = Issued(key, cert)
        _write(self.dir / "ca.pem", issued)
        return issued

    @staticmethod
    def _builder(
        subject: x509.Name, issuer: x509.Name, key: rsa.RSAPrivateKey, days: int
    ) -> x509.CertificateBuilder:
        now = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
        builder = certificate_builder(
            subject, issuer, key.public_key(), now, now + dt.timedelta(days=days)
        )
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        return builder.add_extension(ski, critical=False)

    def credentials(self, pro: Professional) -> ProfessionalCredentials:
        """The professional's auth and signature key+cert, from the cache or freshly made."""
        tag = hashlib.sha256(repr(pro).encode()).hexdigest()[:12]
        base = self.dir / f"{pro.id}-{tag}"
        auth = _read(base.with_suffix(".auth.pem")) or self._issue(pro, base, signature=False)
        sig = _read(base.with_suffix(".sig.pem")) or self._issue(pro, base, signature=True)
        return ProfessionalCredentials(pro, auth, sig)

    def _issue(self, pro: Professional, base: Path, signature: bool) -> Issued:
        key = _new_key()
        if signature:  # non-repudiation only: the document-signing key
            usage = key_usage(content_commitment=True)
            eku = [ExtendedKeyUsageOID.EMAIL_PROTECTION]
        else:
            usage = key_usage(digital_signature=True, key_encipherment=True)
            eku = [ExtendedKeyUsageOID.CLIENT_AUTH]
        cert = (
            self._builder(person_subject(pro), self.ca.cert.subject, key, days=1095)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(usage, critical=True)
            .add_extension(x509.ExtendedKeyUsage(eku), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.ca.key.public_key()),
                critical=False,
            )
            .sign(self.ca.key, hashes.SHA256())
        )
        issued = Issued(key, cert)
        _write(base.with_suffix(".sig.pem" if signature else ".auth.pem"), issued)
        return issued


def key_usage(
    digital_signature: bool = False,
    content_commitment: bool = False,
    key_encipherment: bool = False,
    ca: bool = False,
) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=content_commitment,
        key_encipherment=key_encipherment,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )
