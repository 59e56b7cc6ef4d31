"""The bench's PKCS#11 modules: OpenSC's (the CPS card itself) and SoftHSM tokens (no card).

The bench default for the daemon's CPS driver is OpenSC's module (:func:`opensc_module`): it
drives the virtual CPS through pcscd with its IAS-ECC driver, so login, signature, the PIN counter
and card removal come from the card (hwsim.cards.cps). SoftHSM stays for what has no card: a
second, card-less module the PKCS#11 driver is also tested with.

SoftHSM tokens provisioned as CPS stand-ins (formats.md §2.4, §7.2).

`provision(workdir, professionals)` writes a private SOFTHSM2_CONF under `<workdir>/softhsm/` and
one token per professional that has a card serial:
- token label `CPS-TEST <NOM>` (the real label is not public: read it, never hard-code it); the
  token **serial is the CPS card serial** (EF.SN.ICC without the 8025000001 prefix), so the daemon
  pairs the card in a reader with its keys;
- objects as Cryptolib CPS presents them: certificates "Certificat d'Authentification CPS" /
  "Certificat de Signature CPS", private keys CPS_PRIV_AUT / CPS_PRIV_SIG, public keys
  "Cle publique - <cert label>", CKA_IDs E828BD080F8025000001FF0010 + 02 (auth) / 01 (sig);
- public data objects CPS_ID_CARD, CPS_NAME_PS, CPS_LANG_PS, CPS_INFO_PS, CPS_DATA and private
  ones CPS_ACTIVITY_01_PS, CPS_SIT_FACT (their ASN.1 layout is not public: ours is documented in
  cards/README.md).
Keys and certificates come from the cached test PKI (hwsim.pki), not from the card: SoftHSM tokens
never lock a PIN and sign with no card in any reader.

Object import runs in a child process so the caller's PKCS#11 library state stays untouched
(a module may snapshot its slot list at C_Initialize).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization

from hwsim.cards.cps import sn_icc
from hwsim.cards.tlv import tlv
from hwsim.fixtures.people import Professional
from hwsim.pki import Issued, TestPki

MODULE = Path("/usr/lib/softhsm/libsofthsm2.so")
OPENSC_MODULE_NAME = "opensc-pkcs11.so"


# The bench's opensc.conf (point OPENSC_CONF at it; hwsim up prints the export line):
# - card_drivers = iasecc: OpenSC probes the card of every reader at each C_GetSlotList, with the
#   APDUs of each driver it tries; limited to the IAS-ECC driver (the CPS) it matches by ATR only
#   and never sends an APDU to the carte Vitale (nor waits on a card that does not answer);
# - OpenSC 0.23 knows the CPS3 ATR (card-iasecc.c "IAS/ECC CPx") but not the CPS4 one: map it to
#   the same driver and card type (SC_CARD_TYPE_IASECC_CPX = 25007), as a technician would.
OPENSC_CONF_NAME = "opensc.conf"
OPENSC_CONF_TEXT = """\
# hw-sim: OpenSC configuration of the bench (written by hwsim; see hwsim/pkcs11.py)
app default {
\tcard_drivers = iasecc;
\tframework pkcs15 {
\t}
\tcard_atr 3b:9b:18:80:01:00:12:25:00:64:80:04:01:00:00:90:44 {
\t\tdriver = "iasecc";
\t\ttype = 25007;
\t\tname = "IAS/ECC CPx (CPS4)";
\t}
}
"""


def write_opensc_conf(directory: Path) -> Path:
    """Write the bench's opensc.conf (CPS4 ATR mapping) into ``directory``; returns its path."""
    path = directory / OPENSC_CONF_NAME
    directory.mkdir(parents=True, exist_ok=True)
    path.write_text(OPENSC_CONF_TEXT)
    return path


def opensc_module() -> Path | None:
    """OpenSC's PKCS#11 module (Debian: /usr/lib/<multiarch>/opensc-pkcs11.so), if installed."""
    candidates = sorted(Path("/usr/lib").glob(f"*/{OPENSC_MODULE_NAME}"))
    candidates.append(Path("/usr/lib") / OPENSC_MODULE_NAME)
    return next((path for path in candidates if path.exists()), None)


AID = bytes.fromhex("E828BD080F8025000001FF0010")
SIG_ID = AID + b"\x01"
AUTH_ID = AID + b"\x02"
AUTH_CERT_LABEL = "Certificat d'Authentification CPS"
SIG_CERT_LABEL = "Certificat de Signature CPS"
TOKENS_VERSION = "1"  # bump when the token contents change (invalidates cached tokens)
_SERIAL_ATTR = bytes.fromhex("00000000 8000534A 00000000 00000003 00000000 00000010")


class ProvisionError(RuntimeError):
    pass


@dataclass(frozen=True)
class TokenInfo:
    profile: str
    label: str
    serial: str
    pin: str
    so_pin: str
    idnat: str
    auth_id: str  # hex CKA_ID
    sig_id: str
    auth_cert: str  # PEM file paths
    sig_cert: str

    def public(self) -> dict[str, str]:
        """For status output: no PIN."""
        data = asdict(self)
        data.pop("pin")
        data.pop("so_pin")
        return data


def softhsm_dir(workdir: Path) -> Path:
    return workdir / "softhsm"


def softhsm_conf(workdir: Path) -> Path:
    return softhsm_dir(workdir) / "softhsm2.conf"


def token_label(pro: Professional) -> str:
    return f"CPS-TEST {pro.nom}"[:32]


def provision(
    workdir: Path, professionals: list[Professional], cache_dir: Path | None = None
) -> list[TokenInfo]:
    """(Re)create one token per professional with a card serial; returns their descriptions."""
    if not MODULE.exists():
        raise ProvisionError(f"SoftHSM missing: {MODULE} (apt install softhsm2)")
    base = softhsm_dir(workdir.absolute())
    tokens_dir = base / "tokens"
    shutil.rmtree(tokens_dir, ignore_errors=True)
    tokens_dir.mkdir(parents=True)
    conf = softhsm_conf(workdir.absolute())
    conf.write_text(
        f"directories.tokendir = {tokens_dir}\nobjectstore.backend = file\nlog.level = ERROR\n"
    )
    pki = TestPki(cache_dir)
    (base / "root.pem").write_bytes(pki.root.cert_pem)
    (base / "ca.pem").write_bytes(pki.ca.cert_pem)
    env = {**os.environ, "SOFTHSM2_CONF": str(conf)}
    pros = [p for p in professionals if p.card_serial]
    creds = [pki.credentials(p) for p in pros]
    infos = [_info(base, p, c.auth, c.signature) for p, c in zip(pros, creds, strict=True)]
    # SoftHSM takes ~0.1 s per object created: reuse a cached copy of identical tokens
    key = hashlib.sha256(repr((TOKENS_VERSION, pros, pki.ca.cert_der)).encode()).hexdigest()
    cached = pki.dir / f"tokens-{key[:16]}"
    if cached.is_dir():
        shutil.copytree(cached, tokens_dir, dirs_exist_ok=True)
    else:
        for pro in pros:
            _init_token(env, tokens_dir, pro)
        _import_objects(
            base, env, [_spec(p, c.auth, c.signature) for p, c in zip(pros, creds, strict=True)]
        )
        tmp = pki.dir / f"tokens-{key[:16]}.{os.getpid()}"
        shutil.copytree(tokens_dir, tmp)
        with contextlib.suppress(OSError):  # another session cached it first
            tmp.rename(cached)
        shutil.rmtree(tmp, ignore_errors=True)
    (base / "tokens.json").write_text(json.dumps([i.public() for i in infos], indent=2))
    return infos


def _import_objects(base: Path, env: dict[str, str], specs: list[dict[str, Any]]) -> None:
    spec_file = base / "import.json"
    spec_file.touch(0o600)
    spec_file.write_text(json.dumps(specs))
    try:
        _run([sys.executable, "-m", "hwsim.pkcs11", str(spec_file)], env)
    finally:
        spec_file.unlink()  # holds private keys


def _run(cmd: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        raise ProvisionError(f"{cmd[0]} failed: {done.stderr.strip()[-500:]}")


def _init_token(env: dict[str, str], tokens_dir: Path, pro: Professional) -> None:
    before = set(tokens_dir.iterdir())
    _run(
        [
            "softhsm2-util",
            "--init-token",
            "--free",
            "--label",
            token_label(pro),
            "--so-pin",
            pro.so_pin,
            "--pin",
            pro.pin,
        ],
        env,
    )
    (new_dir,) = set(tokens_dir.iterdir()) - before
    _set_serial(new_dir / "token.object", pro.card_serial)


def _set_serial(token_object: Path, serial: str) -> None:
    """SoftHSM picks a random serial; overwrite it with the card's (same 16-byte field)."""
    data = token_object.read_bytes()
    at = data.find(_SERIAL_ATTR)
    if at < 0:
        raise ProvisionError("SoftHSM token serial attribute not found (object store changed?)")
    start = at + len(_SERIAL_ATTR)
    value = serial.encode("ascii").ljust(16, b" ")
    token_object.write_bytes(data[:start] + value + data[start + 16 :])


def _info(base: Path, pro: Professional, auth: Issued, sig: Issued) -> TokenInfo:
    auth_pem = base / f"{pro.id}-auth.pem"
    sig_pem = base / f"{pro.id}-sig.pem"
    auth_pem.write_bytes(auth.cert_pem)
    sig_pem.write_bytes(sig.cert_pem)
    return TokenInfo(
        profile=pro.id,
        label=token_label(pro),
        serial=pro.card_serial,
        pin=pro.pin,
        so_pin=pro.so_pin,
        idnat=pro.idnat,
        auth_id=AUTH_ID.hex().upper(),
        sig_id=SIG_ID.hex().upper(),
        auth_cert=str(auth_pem),
        sig_cert=str(sig_pem),
    )


def data_objects(pro: Professional) -> list[tuple[str, bytes, bool]]:
    """(label, value, private) of the CKO_DATA objects; layouts are ours ([A] in formats.md)."""
    activity = tlv(
        0xEE,
        tlv(0x84, pro.structure_name.encode("utf-8"))
        + tlv(0x85, pro.structure_id.encode())
        + tlv(0x86, pro.activity_sector.encode()),
    )
    return [
        ("CPS_ID_CARD", sn_icc(pro.card_serial), False),
        ("CPS_NAME_PS", tlv(0x80, pro.nom.encode()) + tlv(0x81, pro.prenom.encode()), False),
        ("CPS_LANG_PS", b"fr", False),
        ("CPS_INFO_PS", f"{pro.idnat}|{pro.profession}|{pro.specialty}".encode(), False),
        ("CPS_DATA", b"\x00", False),
        ("CPS_ACTIVITY_01_PS", activity, True),
        ("CPS_SIT_FACT", tlv(0x80, pro.structure_id.encode()), True),
    ]


def _pkcs1(issued: Issued) -> tuple[str, str]:
    key = issued.key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    pub = issued.key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.PKCS1
    )
    return key.hex(), pub.hex()


def _spec(pro: Professional, auth: Issued, sig: Issued) -> dict[str, Any]:
    keys = []
    for issued, key_id, cert_label, key_label in (
        (auth, AUTH_ID, AUTH_CERT_LABEL, "CPS_PRIV_AUT"),
        (sig, SIG_ID, SIG_CERT_LABEL, "CPS_PRIV_SIG"),
    ):
        priv, pub = _pkcs1(issued)
        keys.append(
            {
                "id": key_id.hex(),
                "cert_label": cert_label,
                "key_label": key_label,
                "private": priv,
                "public": pub,
                "cert": issued.cert_der.hex(),
                "decrypt": key_label == "CPS_PRIV_AUT",
            }
        )
    return {
        "label": token_label(pro),
        "pin": pro.pin,
        "keys": keys,
        "data": [(label, value.hex(), private) for label, value, private in data_objects(pro)],
    }


def _import(spec_file: Path) -> None:
    """Child process: create the objects in each token with python-pkcs11."""
    import pkcs11
    from pkcs11 import Attribute, ObjectClass
    from pkcs11.util.rsa import decode_rsa_private_key, decode_rsa_public_key
    from pkcs11.util.x509 import decode_x509_certificate

    lib = pkcs11.lib(str(MODULE))
    for spec in json.loads(spec_file.read_text()):
        token = lib.get_token(token_label=spec["label"])
        with token.open(rw=True, user_pin=spec["pin"]) as session:
            for key in spec["keys"]:
                key_id = bytes.fromhex(key["id"])
                priv = decode_rsa_private_key(bytes.fromhex(key["private"]))
                priv.update(
                    {
                        Attribute.ID: key_id,
                        Attribute.LABEL: key["key_label"],
                        Attribute.TOKEN: True,
                        Attribute.PRIVATE: True,
                        Attribute.SENSITIVE: True,
                        Attribute.EXTRACTABLE: False,
                        Attribute.SIGN: True,
                        Attribute.DECRYPT: key["decrypt"],
                    }
                )
                session.create_object(priv)
                pub = decode_rsa_public_key(bytes.fromhex(key["public"]))
                pub.update(
                    {
                        Attribute.ID: key_id,
                        Attribute.LABEL: "Cle publique - " + key["cert_label"],
                        Attribute.TOKEN: True,
                        Attribute.VERIFY: True,
                        Attribute.ENCRYPT: key["decrypt"],
                    }
                )
                session.create_object(pub)
                cert = decode_x509_certificate(bytes.fromhex(key["cert"]))
                cert.update(
                    {
                        Attribute.ID: key_id,
                        Attribute.LABEL: key["cert_label"],
                        Attribute.TOKEN: True,
                        Attribute.PRIVATE: False,
                    }
                )
                session.create_object(cert)
            for label, value, private in spec["data"]:
                session.create_object(
                    {
                        Attribute.CLASS: ObjectClass.DATA,
                        Attribute.LABEL: label,
                        Attribute.APPLICATION: "CPS",
                        Attribute.VALUE: bytes.fromhex(value),
                        Attribute.TOKEN: True,
                        Attribute.PRIVATE: private,
                        Attribute.MODIFIABLE: label == "CPS_DATA",
                    }
                )


if __name__ == "__main__":
    _import(Path(sys.argv[1]))
