"""The strict test PKI as a relying party sees it: the real ``openssl verify -x509_strict
-crl_check_all`` accepts the CPS certificates with the CRLs and CA certificates fetched from the URLs
inside them (served by the national simulator), and refuses the revoked card's."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import AuthorityInformationAccessOID

from hwsim.fixtures.people import load_people
from hwsim.pki import TEST_OID_ARC, TestPki
from tests.fixtures.national import NationalSim
from tests.fixtures.opensc import card_certificate, forget_pulled_cards
from tests.fixtures.pcsc import wait_card

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl binary missing"),
]
PEOPLE = load_people().professionals


def _url(cert: x509.Certificate, kind: type[x509.ExtensionType]) -> str:
    value = cert.extensions.get_extension_for_class(kind).value
    if isinstance(value, x509.CRLDistributionPoints):
        (point,) = value
        (name,) = point.full_name or []
    else:
        (access,) = [
            a for a in value if a.access_method == AuthorityInformationAccessOID.CA_ISSUERS
        ]
        name = access.access_location
    assert isinstance(name, x509.UniformResourceIdentifier)
    return name.value


def _fetch(url: str, media_type: str) -> bytes:
    response = httpx.get(url, timeout=10.0)
    assert response.status_code == 200, url
    assert response.headers["content-type"] == media_type
    return response.content


def _pem_of_der_crl(der: bytes) -> bytes:
    crl = x509.load_der_x509_crl(der)
    return crl.public_bytes(serialization.Encoding.PEM)


def _relying_party_files(pki: TestPki, leaf: x509.Certificate, folder: Path) -> tuple[Path, Path]:
    """CA file and CRL file built only from what the leaf points to (AIA, then CRLDPs)."""
    ca_der = _fetch(_url(leaf, x509.AuthorityInformationAccess), "application/pkix-cert")
    ca = x509.load_der_x509_certificate(ca_der)
    root_der = _fetch(_url(ca, x509.AuthorityInformationAccess), "application/pkix-cert")
    root = x509.load_der_x509_certificate(root_der)
    assert root == pki.root.cert  # the trust anchor a relying party installed beforehand
    ca_file, crl_file = folder / "chain.pem", folder / "crls.pem"
    ca_file.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (root, ca)))
    crls = [_fetch(_url(c, x509.CRLDistributionPoints), "application/pkix-crl") for c in (leaf, ca)]
    crl_file.write_bytes(b"".join(_pem_of_der_crl(der) for der in crls))
    return ca_file, crl_file


def _openssl_verify(ca_file: Path, crl_file: Path, leaf: x509.Certificate, folder: Path) -> str:
    leaf_file = folder / "leaf.pem"
    leaf_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    done = subprocess.run(
        [
            "openssl",
            "verify",
            "-x509_strict",
            "-crl_check_all",
            "-CAfile",
            str(ca_file),
            "-CRLfile",
            str(crl_file),
            str(leaf_file),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return (done.stdout + done.stderr).strip() + f" rc={done.returncode}"


def test_cps_certificates_verify_strictly_with_the_published_crls(
    national_sim: NationalSim, tmp_path: Path
) -> None:
    pki = TestPki(base_url=national_sim.base_url)
    creds = pki.credentials(PEOPLE["pharmacien"])
    for leaf in (creds.auth.cert, creds.signature.cert):
        assert _url(leaf, x509.CRLDistributionPoints).startswith(national_sim.base_url + "/pki/")
        ca_file, crl_file = _relying_party_files(pki, leaf, tmp_path)
        assert _openssl_verify(ca_file, crl_file, leaf, tmp_path).endswith(": OK rc=0")


def test_the_revoked_card_fails_and_a_revocation_reaches_the_next_crl(
    national_sim: NationalSim, tmp_path: Path
) -> None:
    pki = TestPki(base_url=national_sim.base_url)
    revoked = pki.credentials(PEOPLE["pharmacien-revoque"]).auth.cert
    ca_file, crl_file = _relying_party_files(pki, revoked, tmp_path)
    outcome = _openssl_verify(ca_file, crl_file, revoked, tmp_path)
    assert "certificate revoked" in outcome and outcome.endswith("rc=2"), outcome

    good = pki.credentials(PEOPLE["pharmacien-adjoint"]).signature.cert
    answer = httpx.post(
        national_sim.url("/_sim/pki/revoke"), json={"profile": "pharmacien-adjoint"}, timeout=10.0
    )
    assert answer.status_code == 200
    ca_file, crl_file = _relying_party_files(pki, good, tmp_path)
    assert "certificate revoked" in _openssl_verify(ca_file, crl_file, good, tmp_path)


def test_the_crl_follows_the_simulator_clock(national_sim: NationalSim) -> None:
    then = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)
    national_sim.state.clock.freeze(then)
    der = _fetch(national_sim.url("/pki/ac-personnes-test.crl"), "application/pkix-crl")
    crl = x509.load_der_x509_crl(der)
    assert crl.last_update_utc == then
    assert crl.next_update_utc == then + dt.timedelta(hours=24)
    assert crl.is_signature_valid(TestPki(base_url=national_sim.base_url).ca.key.public_key())
    assert httpx.get(national_sim.url("/pki/inconnue.crl"), timeout=10.0).status_code == 404


def test_every_certificate_has_key_ids_test_policies_and_a_long_life(tmp_path: Path) -> None:
    pki = TestPki(tmp_path, base_url="http://127.0.0.1:1")
    creds = pki.credentials(PEOPLE["pharmacien"])
    now = dt.datetime.now(dt.UTC)
    for cert in (pki.root.cert, pki.ca.cert, creds.auth.cert, creds.signature.cert):
        cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
        cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
        assert cert.not_valid_after_utc - now > dt.timedelta(days=365)
    for cert in (pki.ca.cert, creds.auth.cert, creds.signature.cert):
        policies = cert.extensions.get_extension_for_class(x509.CertificatePolicies).value
        oids = [p.policy_identifier.dotted_string for p in policies]
        assert oids and all(o.startswith(TEST_OID_ARC + ".") for o in oids)
        assert not any(o.startswith("1.2.250.1.71.") for o in oids)  # never IGC-Santé's arc
    assert creds.auth.cert.serial_number != creds.signature.cert.serial_number
    again = TestPki(tmp_path, base_url="http://127.0.0.1:1").credentials(PEOPLE["pharmacien"])
    assert again.auth.cert == creds.auth.cert  # cached, not re-issued


def test_the_virtual_cards_own_certificates_verify_strictly(
    hwsim: Any, opensc_module: Path, national_sim: NationalSim, tmp_path: Path
) -> None:
    """The certificates the virtual CPS cards hold (read through OpenSC), with the CRLs the
    simulator publishes: the good card passes ``openssl verify``, the revoked one fails."""
    pki = TestPki()  # the bench's cards are certified by it (its CA key signs every CRL)
    ca_file, crl_file = tmp_path / "chain.pem", tmp_path / "crls.pem"
    ca_file.write_bytes(pki.root.cert_pem + pki.ca.cert_pem)
    crls = [
        _fetch(national_sim.url(f"/pki/{name}.crl"), "application/pkix-crl")
        for name in ("ac-personnes-test", "ac-racine-test")
    ]
    crl_file.write_bytes(b"".join(_pem_of_der_crl(der) for der in crls))
    reader = hwsim.reader_names[1]
    for profile, verdict in (("pharmacien", ": OK rc=0"), ("pharmacien-revoque", "revoked")):
        pro = PEOPLE[profile]
        hwsim.client.insert("cps", profile, reader=1)
        wait_card(reader, present=True)
        for signature in (False, True):
            leaf = card_certificate(opensc_module, pro.card_serial, signature)
            assert verdict in _openssl_verify(ca_file, crl_file, leaf, tmp_path), profile
        hwsim.client.remove(1)
        wait_card(reader, present=False)
        forget_pulled_cards(opensc_module)
