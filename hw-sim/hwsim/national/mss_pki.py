"""A small test PKI for the MSSanté simulator: a CA, the SMTP server's certificate, client certs.

Stand-in for the IGC-Santé "organisation" certificates a pharmacy uses for MSSanté (TLS client
authentication): ``O`` = structure name, ``OU`` = idNat_Struct, ``CN`` = the MSS mailbox domain.
Keys are EC P-256 (fast to generate). Everything is written as PEM files in one folder; nothing
here is a real credential.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hwsim.pki import certificate_builder, key_usage, private_key_pem, with_key_ids

# Two years: a technician's bench stays green in `lgo doctor` (which warns 30 days before expiry)
# for at least a year after `hwsim up` issued them.
VALIDITY = timedelta(days=730)


@dataclass(frozen=True)
class Issued:
    cert_file: Path
    key_file: Path


@dataclass(frozen=True)
class TestCa:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    cert_file: Path

    def issue(
        self,
        folder: Path,
        stem: str,
        subject: x509.Name,
        *,
        server: bool,
        now: datetime | None = None,
    ) -> Issued:
        """Issue a TLS server (127.0.0.1/localhost) or client certificate into ``folder``."""
        start = (now or datetime.now(UTC)) - timedelta(minutes=5)
        key = ec.generate_private_key(ec.SECP256R1())
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (
            with_key_ids(
                certificate_builder(
                    subject, self.cert.subject, key.public_key(), start, start + VALIDITY
                ),
                key.public_key(),
                self.key,
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if server:
            names: list[x509.GeneralName] = [
                x509.DNSName("localhost"),
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            ]
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        return _write(folder, stem, cert, key)


def _write(
    folder: Path, stem: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey
) -> Issued:
    folder.mkdir(parents=True, exist_ok=True)
    cert_file, key_file = folder / f"{stem}.crt", folder / f"{stem}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(private_key_pem(key))
    key_file.chmod(0o600)
    return Issued(cert_file, key_file)


def make_ca(folder: Path, name: str = "AC TEST IGC-SANTE ORGANISATIONS (hwsim)") -> TestCa:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "FR"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "hwsim test PKI"),
            x509.NameAttribute(NameOID.COMMON_NAME, name),
        ]
    )
    start = datetime.now(UTC) - timedelta(minutes=5)
    cert = (
        with_key_ids(
            certificate_builder(subject, subject, key.public_key(), start, start + VALIDITY),
            key.public_key(),
            key,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(key_usage(ca=True), critical=True)
        .sign(key, hashes.SHA256())
    )
    issued = _write(folder, "ca", cert, key)
    return TestCa(cert, key, issued.cert_file)


def organisation_name(structure_name: str, idnat_struct: str, domain: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "FR"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, structure_name),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, idnat_struct),
            x509.NameAttribute(NameOID.COMMON_NAME, domain),
        ]
    )


def server_name(host: str = "localhost") -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
