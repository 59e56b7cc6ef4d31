"""A strict test PKI shaped like IGC-Santé: a root, an issuing CA for persons, and per professional an
authentication and a signature RSA-2048 certificate (formats.md §2.5, §7.2).

What a relying party needs is there, as in the real hierarchy:

- Subject and Authority Key Identifiers on every certificate (root, CA, end entities), so
  ``openssl verify -x509_strict`` accepts the chain;
- certificate policies with **test OIDs** (:data:`TEST_OID_ARC`, under the UUID arc ``2.25`` of
  ITU-T X.667, which anyone may mint from a random UUID without registration). They are not the
  IGC-Santé OIDs and must never be read as such;
- a CRL distribution point and an AIA ``caIssuers`` URL on the CA and the end entities, pointing to
  the national simulator (``<base_url>/pki/…``, loopback). The simulator serves the CRLs built by
  :meth:`TestPki.crl` and the CA certificates (:mod:`hwsim.national.pki`).

Keys are slow to make (RSA-2048), so they are cached as PEM files (unencrypted PKCS#8: test keys)
in ``cache_dir/pki-v<N>/``; certificates are cached per base URL (the URLs are inside them), next
to the keys, and re-issued with the same key when less than :data:`RENEW_BEFORE` of validity is left
(a bench stays green for a year). End-entity serial numbers are derived from the professional and the
usage (:func:`cert_serial`), so the simulator can list a revoked card's certificates in its CRL
without ever seeing them: a professional with ``revoked = true`` in ``people.toml`` is revoked.

A card that makes its own keys gets its certificates from :meth:`TestPki.certify`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    CertificatePublicKeyTypes,
    PrivateKeyTypes,
)
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from hwsim.fixtures.people import Professional

PKI_VERSION = "2"
ORG = [
    x509.NameAttribute(NameOID.COUNTRY_NAME, "FR"),
    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ASIP-SANTE"),
    x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "0002 187512751"),
    x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "IGC-SANTE TEST"),
]
ROOT_CN = "TEST AC RACINE IGC-SANTE FORT"
CA_CN = "TEST AC IGC-SANTE FORT PERSONNES"

# Test OIDs only: 2.25.<UUID 0aec7e81-f4be-4eb6-821b-013c1ba86c71 as an integer> (X.667 UUID arc).
TEST_OID_ARC = "2.25.14520227896250812513347384623812340849"
POLICY_CPS_AUTH = x509.ObjectIdentifier(TEST_OID_ARC + ".1.1")  # CPS authentication (test)
POLICY_CPS_SIGN = x509.ObjectIdentifier(TEST_OID_ARC + ".1.2")  # CPS signature (test)

DEFAULT_BASE_URL = "http://127.0.0.1:8765"  # the national simulator's default address
BASE_URL_ENV = "LGO_HWSIM_PKI_URL"
PKI_PATH = "/pki"
ROOT_FILE = "ac-racine-test"
CA_FILE = "ac-personnes-test"
Authority = Literal["root", "ca"]

ROOT_DAYS, CA_DAYS, END_ENTITY_DAYS = 7300, 5475, 1095
RENEW_BEFORE = dt.timedelta(days=400)


def default_cache_dir() -> Path:
    env = os.environ.get("LGO_HWSIM_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "lgo-hwsim"


def default_base_url() -> str:
    """Where certificates say the CRLs and CA certificates are: ``$LGO_HWSIM_PKI_URL`` or the
    national simulator's default address."""
    return (os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL).rstrip("/")


def pki_url(base_url: str, authority: Authority, suffix: Literal["crl", "cer"]) -> str:
    name = ROOT_FILE if authority == "root" else CA_FILE
    return f"{base_url.rstrip('/')}{PKI_PATH}/{name}.{suffix}"


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
    serial: int | None = None,
) -> x509.CertificateBuilder:
    """Names, key, the serial (random unless given) and the validity: what every certificate
    here starts from."""
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(serial or x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )


def cert_serial(pro: Professional, signature: bool) -> int:
    """The serial of the professional's auth or signature certificate: derived, not random, so
    the CRL can name a revoked card's certificates (a positive 120-bit number)."""
    usage = "sig" if signature else "auth"
    digest = hashlib.sha256(f"lgo-hwsim|{PKI_VERSION}|{pro.id}|{pro.rpps}|{usage}".encode())
    return int.from_bytes(digest.digest()[:15], "big") | (1 << 119)


def revoked_serials(professionals: Iterable[Professional]) -> list[int]:
    """Both certificate serials of every professional whose card is revoked."""
    return [
        cert_serial(pro, signature)
        for pro in professionals
        if pro.revoked
        for signature in (False, True)
    ]


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    tmp.chmod(0o600)
    tmp.replace(path)  # atomic: parallel sessions never read half a file


def _read_key(path: Path) -> rsa.RSAPrivateKey | None:
    if not path.exists():
        return None
    # our own cache files: skip the (slow, ~0.2 s) RSA consistency check
    key = serialization.load_pem_private_key(
        path.read_bytes(), password=None, unsafe_skip_rsa_key_validation=True
    )
    return key if isinstance(key, rsa.RSAPrivateKey) else None


def _key(path: Path) -> rsa.RSAPrivateKey:
    key = _read_key(path)
    if key is None:
        key = _new_key()
        _atomic_write(path, private_key_pem(key))
    return key


def _fresh(
    path: Path, key: rsa.RSAPrivateKey, issuer: x509.Certificate | None
) -> x509.Certificate | None:
    """The cached certificate at ``path`` if it is for ``key``, issued by ``issuer`` (a parallel
    session may have replaced either) and valid for a while yet."""
    if not path.exists():
        return None
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    if cert.public_key() != key.public_key():
        return None
    if cert.not_valid_after_utc - dt.datetime.now(dt.UTC) < RENEW_BEFORE:
        return None
    if issuer is not None:
        try:
            cert.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature):
            return None
    return cert


def _validity(days: int) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    return start, start + dt.timedelta(days=days)


def with_key_ids(
    builder: x509.CertificateBuilder,
    public_key: CertificatePublicKeyTypes,
    issuer_key: CertificateIssuerPrivateKeyTypes,
) -> x509.CertificateBuilder:
    """Subject and Authority Key Identifiers (the issuer's key gives the AKI)."""
    return builder.add_extension(
        x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False
    ).add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
        critical=False,
    )


def _where_to_check(
    builder: x509.CertificateBuilder, base_url: str, issuer: Authority
) -> x509.CertificateBuilder:
    """CRL distribution point and AIA caIssuers of the issuing authority, on the simulator."""
    crl = x509.DistributionPoint(
        full_name=[x509.UniformResourceIdentifier(pki_url(base_url, issuer, "crl"))],
        relative_name=None,
        reasons=None,
        crl_issuer=None,
    )
    aia = x509.AccessDescription(
        AuthorityInformationAccessOID.CA_ISSUERS,
        x509.UniformResourceIdentifier(pki_url(base_url, issuer, "cer")),
    )
    return builder.add_extension(x509.CRLDistributionPoints([crl]), critical=False).add_extension(
        x509.AuthorityInformationAccess([aia]), critical=False
    )


def _policies(*oids: x509.ObjectIdentifier) -> x509.CertificatePolicies:
    return x509.CertificatePolicies([x509.PolicyInformation(oid, None) for oid in oids])


class TestPki:
    """Root + issuing CA, loaded from (or created in) ``cache_dir/pki-v<N>/``.

    ``base_url``: where the certificates say the CRLs and CA certificates are served (the
    national simulator; default :func:`default_base_url`).
    """

    __test__ = False  # not a pytest class

    def __init__(self, cache_dir: Path | None = None, base_url: str | None = None) -> None:
        self.dir = (cache_dir or default_cache_dir()) / f"pki-v{PKI_VERSION}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.base_url = (base_url or default_base_url()).rstrip("/")
        url_tag = hashlib.sha256(self.base_url.encode()).hexdigest()[:12]
        self.cert_dir = self.dir / f"certs-{url_tag}"
        self.cert_dir.mkdir(exist_ok=True)
        self.root = self._root()
        self.ca = self._ca()

    # --- authorities ---------------------------------------------------------------------------

    def _root(self) -> Issued:
        key = _key(self.dir / "root.key.pem")
        path = self.dir / "root.crt.pem"
        cert = _fresh(path, key, None)
        if cert is None:
            name = _ca_name(ROOT_CN)
            cert = (
                with_key_ids(
                    certificate_builder(name, name, key.public_key(), *_validity(ROOT_DAYS)),
                    key.public_key(),
                    key,
                )
                .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
                .add_extension(key_usage(ca=True), critical=True)
                .sign(key, hashes.SHA256())
            )
            _atomic_write(path, cert.public_bytes(serialization.Encoding.PEM))
        return Issued(key, cert)

    def _ca(self) -> Issued:
        key = _key(self.dir / "ca.key.pem")
        path = self.cert_dir / "ca.crt.pem"
        cert = _fresh(path, key, self.root.cert)
        if cert is None:
            builder = certificate_builder(
                _ca_name(CA_CN), self.root.cert.subject, key.public_key(), *_validity(CA_DAYS)
            )
            cert = (
                _where_to_check(
                    with_key_ids(builder, key.public_key(), self.root.key), self.base_url, "root"
                )
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(key_usage(ca=True), critical=True)
                .add_extension(_policies(POLICY_CPS_AUTH, POLICY_CPS_SIGN), critical=False)
                .sign(self.root.key, hashes.SHA256())
            )
            _atomic_write(path, cert.public_bytes(serialization.Encoding.PEM))
        return Issued(key, cert)

    def authority(self, which: Authority) -> Issued:
        return self.root if which == "root" else self.ca

    def crl(
        self,
        which: Authority,
        revoked: Iterable[int],
        this_update: dt.datetime,
        next_update: dt.datetime,
    ) -> x509.CertificateRevocationList:
        """A v2 CRL of ``which`` (AKI, CRL number from ``this_update``) revoking ``revoked``."""
        issuer = self.authority(which)
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(issuer.cert.subject)
            .last_update(this_update)
            .next_update(next_update)
            .add_extension(x509.CRLNumber(int(this_update.timestamp())), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
                critical=False,
            )
        )
        for serial in sorted(set(revoked)):
            entry = (
                x509.RevokedCertificateBuilder()
                .serial_number(serial)
                .revocation_date(this_update - dt.timedelta(days=1))
                .add_extension(x509.CRLReason(x509.ReasonFlags.key_compromise), critical=False)
                .build()
            )
            builder = builder.add_revoked_certificate(entry)
        return builder.sign(issuer.key, hashes.SHA256())

    # --- end entities --------------------------------------------------------------------------

    def credentials(self, pro: Professional) -> ProfessionalCredentials:
        """The professional's auth and signature key+cert, from the cache or freshly made."""
        return ProfessionalCredentials(pro, self._issued(pro, False), self._issued(pro, True))

    def _issued(self, pro: Professional, signature: bool) -> Issued:
        tag = hashlib.sha256(repr(pro).encode()).hexdigest()[:12]
        stem = f"{pro.id}-{tag}.{'sig' if signature else 'auth'}"
        key = _key(self.dir / f"{stem}.key.pem")
        path = self.cert_dir / f"{stem}.crt.pem"
        cert = _fresh(path, key, self.ca.cert)
        if cert is None:
            cert = self.certify(pro, key.public_key(), signature=signature)
            _atomic_write(path, cert.public_bytes(serialization.Encoding.PEM))
        return Issued(key, cert)

    def certify(
        self, pro: Professional, public_key: CertificatePublicKeyTypes, *, signature: bool
    ) -> x509.Certificate:
        """Issue the professional's authentication (``signature=False``) or signature certificate
        for ``public_key`` (e.g. a key the virtual card generated)."""
        if signature:  # non-repudiation only: the document-signing key
            usage = key_usage(content_commitment=True)
            eku, policy = [ExtendedKeyUsageOID.EMAIL_PROTECTION], POLICY_CPS_SIGN
        else:
            usage = key_usage(digital_signature=True, key_encipherment=True)
            eku, policy = [ExtendedKeyUsageOID.CLIENT_AUTH], POLICY_CPS_AUTH
        start, end = _validity(END_ENTITY_DAYS)
        builder = certificate_builder(
            person_subject(pro),
            self.ca.cert.subject,
            public_key,
            start,
            end,
            serial=cert_serial(pro, signature),
        )
        return (
            _where_to_check(with_key_ids(builder, public_key, self.ca.key), self.base_url, "ca")
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(usage, critical=True)
            .add_extension(x509.ExtendedKeyUsage(eku), critical=False)
            .add_extension(_policies(policy), critical=False)
            .sign(self.ca.key, hashes.SHA256())
        )


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
