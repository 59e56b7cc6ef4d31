"""Outside tools on the running bench: OpenSC's pkcs11-tool drives the virtual CPS through hw-sim's
private pcscd (PCSCLITE_CSOCK_NAME), as it would a CPS3 on a real counter."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from hwsim.cards.cps import SIG_ID
from hwsim.fixtures.people import load_people
from tests.fixtures.pcsc import wait_card

pytestmark = pytest.mark.integration
PHARMACIST = load_people().professionals["pharmacien"]
CPS_READER = 1
SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")


def p11(module: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["pkcs11-tool", "--module", str(module), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=dict(os.environ),
    )


@pytest.fixture
def cps_in_reader(hwsim, opensc_module: Path) -> str:  # type: ignore[no-untyped-def]
    if shutil.which("pkcs11-tool") is None:
        pytest.skip("pkcs11-tool (opensc) is not installed")
    reader = hwsim.reader_names[CPS_READER]
    hwsim.client.insert("cps", PHARMACIST.id, reader=CPS_READER)
    wait_card(reader, present=True)
    return reader


def test_token_listed_then_gone_when_the_card_is_pulled(
    hwsim, cps_in_reader, opensc_module
) -> None:  # type: ignore[no-untyped-def]
    listed = p11(opensc_module, "--list-token-slots")
    assert listed.returncode == 0, listed.stderr
    assert f"serial num         : {PHARMACIST.card_serial}" in listed.stdout
    assert f"token label        : CPS {PHARMACIST.nom}" in listed.stdout
    assert "login required" in listed.stdout
    hwsim.client.remove(CPS_READER)
    wait_card(cps_in_reader, present=False)
    gone = p11(opensc_module, "--list-slots")
    assert "serial num" not in gone.stdout and gone.stdout.count("(empty)") == 2


def test_login_and_sign_verifies_with_the_card_certificate(
    cps_in_reader, opensc_module, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    message = b"ordonnance a signer"
    (tmp_path / "in").write_bytes(SHA256_DIGEST_INFO + hashlib.sha256(message).digest())
    signed = p11(
        opensc_module,
        "--login",
        "--pin",
        PHARMACIST.pin,
        "--sign",
        "-m",
        "RSA-PKCS",
        "--id",
        SIG_ID.hex(),
        "-i",
        str(tmp_path / "in"),
        "-o",
        str(tmp_path / "sig"),
    )
    assert signed.returncode == 0, signed.stderr
    read = p11(
        opensc_module,
        "--read-object",
        "--type",
        "cert",
        "--id",
        SIG_ID.hex(),
        "-o",
        str(tmp_path / "cert.der"),
    )
    assert read.returncode == 0, read.stderr
    cert = x509.load_der_x509_certificate((tmp_path / "cert.der").read_bytes())
    assert (
        cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == PHARMACIST.idnat
    )
    public = cert.public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    signature = (tmp_path / "sig").read_bytes()
    public.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())  # raises if not


def test_three_wrong_pins_lock_the_card(hwsim, cps_in_reader, opensc_module) -> None:  # type: ignore[no-untyped-def]
    outcomes = [p11(opensc_module, "--login", "--pin", "0000", "--list-objects") for _ in range(3)]
    assert [o.returncode != 0 for o in outcomes] == [True, True, True]
    assert "CKR_PIN_INCORRECT" in outcomes[0].stderr
    assert "CKR_PIN_LOCKED" in outcomes[2].stderr or "CKR_PIN_INCORRECT" in outcomes[2].stderr
    right = p11(opensc_module, "--login", "--pin", PHARMACIST.pin, "--list-objects")
    assert right.returncode != 0 and "CKR_PIN_LOCKED" in right.stderr
    assert "user PIN locked" in p11(opensc_module, "--list-token-slots").stdout
    card = next(r["card"] for r in hwsim.client.status()["readers"] if r["index"] == CPS_READER)
    assert card["tries_left"] == 0  # the counter is the card's own


def test_cps4_is_driven_through_the_bench_opensc_conf(hwsim, opensc_module, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """OpenSC 0.23 has no CPS4 ATR: the bench's opensc.conf (OPENSC_CONF) maps it to its CPx type."""
    if shutil.which("pkcs11-tool") is None:
        pytest.skip("pkcs11-tool (opensc) is not installed")
    prescriber = load_people().professionals["medecin"]
    reader = hwsim.reader_names[CPS_READER]
    hwsim.client.insert("cps", prescriber.id, reader=CPS_READER, cps4=True)
    wait_card(reader, present=True)
    listed = p11(opensc_module, "--list-token-slots")
    assert f"serial num         : {prescriber.card_serial}" in listed.stdout, listed.stdout
    without_conf = subprocess.run(
        ["pkcs11-tool", "--module", str(opensc_module), "--list-slots"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "OPENSC_CONF": str(tmp_path / "absent.conf")},
    )
    assert "token not recognized" in without_conf.stdout
