"""IAS-ECC security objects and operations of the virtual CPS (the card side of OpenSC's
``card-iasecc.c`` / ``iasecc-sdo.c``): SDO GET DATA answers, MSE SET, the hash the card finishes
(PSO HASH), and RSA PKCS#1 v1.5 signing with a key held in the card object.
"""

from __future__ import annotations

import hashlib
import struct

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from hwsim.cards.base import SW_REFERENCED_DATA_NOT_FOUND, SW_WRONG_DATA, Apdu, SwError
from hwsim.cards.tlv import length, tlv

SW_SECURITY_NOT_SATISFIED = 0x6982
SW_CONDITIONS_NOT_SATISFIED = 0x6985
SW_INCORRECT_P1P2 = 0x6A86

# SDO classes (IAS-ECC; OpenSC IASECC_SDO_CLASS_*), as sent with the local bit 0x80 cleared
CLASS_CHV, CLASS_RSA_PRIVATE, CLASS_RSA_PUBLIC, CLASS_SE = 0x01, 0x10, 0x20, 0x7B
TAG_DOCP = 0xA0
TAG_CHV, TAG_PRIVATE, TAG_PUBLIC = 0x7F41, 0x7F48, 0x7F49
# CRT tags of MSE SET (P2) and the algorithm bytes this card accepts in them
CRT_AT, CRT_DST, CRT_HT, CRT_CT = 0xA4, 0xB6, 0xAA, 0xB8
ALGO_RSA_PKCS, ALGO_SHA256_RSA_PKCS, ALGO_SHA256 = 0x02, 0x42, 0x40
ALGO_RSA_PKCS_DECRYPT = 0x0A
# SCB bytes (IAS-ECC access rules): 00 always, FF never, 1n: user authentication in SE n
SCB_ALWAYS, SCB_NEVER, SCB_USER_SE1 = 0x00, 0xFF, 0x11
SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")


def acl(*scbs: int, amb: int) -> bytes:
    """An access-rule template ``A1 { 8C <AMB> <SCB>… }`` (one SCB per AMB bit, high bit first)."""
    return tlv(0xA1, tlv(0x8C, bytes([amb, *scbs])))


# PIN: change, verify, reset (user authentication in SE 3: the PUK), put data, get data; the
# bytes the CPS3 answers (AMB F3)
CHV_ACL = acl(SCB_ALWAYS, SCB_ALWAYS, 0x13, SCB_NEVER, SCB_ALWAYS, amb=0xF3)
# RSA private key: PSO signature, internal authenticate, decipher, generate, put data, get data
KEY_ACL = acl(SCB_USER_SE1, SCB_USER_SE1, SCB_USER_SE1, SCB_NEVER, SCB_NEVER, SCB_ALWAYS, amb=0x7B)


def parse_get_data(data: bytes) -> tuple[int, int, int]:
    """``4D L 70 L BF <class|80> <ref> L <tag> 80`` -> (class, ref, tag)."""
    if len(data) < 10 or data[0] != 0x4D or data[2] != 0x70 or data[4] != 0xBF:
        raise SwError(SW_WRONG_DATA)
    sdo_class, ref = data[5] & 0x7F, data[6] & 0x3F
    body = data[8:]
    tag = int.from_bytes(body[:2], "big") if body[0] in (0x7F, 0x5F) else body[0]
    return sdo_class, ref, tag


def sdo_answer(sdo_class: int, ref: int, part: bytes) -> bytes:
    """``70 L BF <class|80> <ref> L <part>``."""
    header = bytes([0xBF, 0x80 | sdo_class, ref]) + length(len(part)) + part
    return tlv(0x70, header)


def chv_part(tag: int, max_tries: int, tries_left: int) -> bytes:
    if tag == TAG_CHV:  # PIN length bounds
        return tlv(TAG_CHV, tlv(0x80, b"\x08") + tlv(0x81, b"\x04"))
    if tag == TAG_DOCP:
        counters = tlv(0x9A, bytes([max_tries])) + tlv(0x9B, bytes([tries_left]))
        return tlv(TAG_DOCP, counters + CHV_ACL)
    raise SwError(SW_REFERENCED_DATA_NOT_FOUND)


def private_key_part(tag: int) -> bytes:
    if tag == TAG_DOCP:  # size in bytes (2048 bits), access rules; the key itself never leaves
        return tlv(TAG_DOCP, tlv(0x80, b"\x01\x00") + KEY_ACL)
    raise SwError(SW_INCORRECT_P1P2)  # no public part: OpenSC then asks for the DOCP


def public_key_part(tag: int, public: rsa.RSAPublicKey) -> bytes:
    numbers = public.public_numbers()
    if tag == TAG_PUBLIC:
        n = numbers.n.to_bytes(256, "big")
        e = numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")
        return tlv(TAG_PUBLIC, tlv(0x81, n) + tlv(0x82, e))
    if tag == TAG_DOCP:
        return tlv(TAG_DOCP, tlv(0x80, b"\x01\x00") + acl(SCB_ALWAYS, amb=0x01))
    raise SwError(SW_REFERENCED_DATA_NOT_FOUND)


def se_part(tag: int, pin_ref: int) -> bytes:
    """SE #1: user authentication with the PIN (AT, usage 08 = user password)."""
    if tag != CLASS_SE:
        raise SwError(SW_REFERENCED_DATA_NOT_FOUND)
    crt = tlv(0x95, b"\x08") + tlv(0x83, bytes([pin_ref]))
    return tlv(CLASS_SE, tlv(CRT_AT, crt))


def rsa_pkcs1_sign(key: rsa.RSAPrivateKey, data: bytes) -> bytes:
    """RSA with EMSA-PKCS1-v1_5 type 1 padding around ``data`` as given (RFC 8017 §9.2 step 5)."""
    k = (key.key_size + 7) // 8
    if len(data) > k - 11:
        raise SwError(SW_WRONG_DATA)
    if len(data) == len(SHA256_DIGEST_INFO) + 32 and data.startswith(SHA256_DIGEST_INFO):
        # the same padding and RSA operation, done by OpenSSL (the Python one below costs ~15 ms)
        return key.sign(data[-32:], padding.PKCS1v15(), Prehashed(hashes.SHA256()))
    numbers = key.private_numbers()
    block = b"\x00\x01" + b"\xff" * (k - 3 - len(data)) + b"\x00" + data
    m = int.from_bytes(block, "big")
    # CRT: the card's own private operation
    s1 = pow(m, numbers.dmp1, numbers.p)
    s2 = pow(m, numbers.dmq1, numbers.q)
    h = (numbers.iqmp * (s1 - s2)) % numbers.p
    return (s2 + h * numbers.q).to_bytes(k, "big")


class SecurityEnvironment:
    """The current SE: key and algorithm per CRT (MSE SET), and the hash PSO HASH finished."""

    def __init__(self) -> None:
        self.crts: dict[int, tuple[int | None, int]] = {}
        self.digest: bytes | None = None

    def clear(self) -> None:
        self.crts.clear()
        self.digest = None

    def set(self, apdu: Apdu, known_keys: set[int]) -> None:
        """``00 22 41 <CRT tag> [84|83 01 <key ref>] 80 01 <algo>``."""
        if apdu.p1 != 0x41 or apdu.p2 not in (CRT_AT, CRT_DST, CRT_HT, CRT_CT):
            raise SwError(SW_INCORRECT_P1P2)
        fields = _crt_fields(apdu.data)
        key = fields.get(0x84, fields.get(0x83))
        algo = fields.get(0x80)
        allowed = {
            CRT_AT: ALGO_RSA_PKCS,
            CRT_DST: ALGO_SHA256_RSA_PKCS,
            CRT_HT: ALGO_SHA256,
            CRT_CT: ALGO_RSA_PKCS_DECRYPT,
        }
        if algo != allowed[apdu.p2]:
            raise SwError(SW_WRONG_DATA)
        if apdu.p2 != CRT_HT:
            if key is None or key & 0x7F not in known_keys:
                raise SwError(SW_REFERENCED_DATA_NOT_FOUND)
            key &= 0x7F
        self.crts[apdu.p2] = (key, algo)
        self.digest = None

    def _key(self, crt: int) -> int:
        found = self.crts.get(crt)
        if found is None or found[0] is None:
            raise SwError(SW_CONDITIONS_NOT_SATISFIED)
        return found[0]

    def authentication_key(self) -> int:
        return self._key(CRT_AT)

    def signature_key(self) -> int:
        return self._key(CRT_DST)

    def hash_last_block(self, data: bytes) -> None:
        """PSO HASH ``90 L <intermediate state ‖ bit counter> | 90 00``, ``80 L <last block>``:
        finish the SHA-256 the host started (IAS-ECC hash-on-card rule)."""
        if CRT_HT not in self.crts:
            raise SwError(SW_CONDITIONS_NOT_SATISFIED)
        fields = _tlv_fields(data)
        state, last = fields.get(0x90), fields.get(0x80)
        if state is None or last is None or len(state) not in (0, 40) or len(last) > 64:
            raise SwError(SW_WRONG_DATA)
        if not state:
            self.digest = hashlib.sha256(last).digest()
            return
        h = list(struct.unpack(">8I", state[:32]))
        counted_bits = int.from_bytes(state[32:], "big")
        if counted_bits % 512:
            raise SwError(SW_WRONG_DATA)
        self.digest = sha256_finish(h, counted_bits // 8, last)

    def take_digest_info(self) -> bytes:
        if self.digest is None:
            raise SwError(SW_CONDITIONS_NOT_SATISFIED)
        digest, self.digest = self.digest, None
        return SHA256_DIGEST_INFO + digest


def _tlv_fields(data: bytes) -> dict[int, bytes]:
    fields: dict[int, bytes] = {}
    at = 0
    while at + 2 <= len(data):
        tag, size = data[at], data[at + 1]
        if size > 0x7F or at + 2 + size > len(data):
            raise SwError(SW_WRONG_DATA)
        fields[tag] = data[at + 2 : at + 2 + size]
        at += 2 + size
    if at != len(data):
        raise SwError(SW_WRONG_DATA)
    return fields


def _crt_fields(data: bytes) -> dict[int, int]:
    fields = _tlv_fields(data)
    if any(len(value) != 1 for value in fields.values()):
        raise SwError(SW_WRONG_DATA)
    return {tag: value[0] for tag, value in fields.items()}


# --- SHA-256 from an intermediate state (FIPS 180-4 §6.2) ----------------------------------
_K = [
    0x428A2F98,
    0x71374491,
    0xB5C0FBCF,
    0xE9B5DBA5,
    0x3956C25B,
    0x59F111F1,
    0x923F82A4,
    0xAB1C5ED5,
    0xD807AA98,
    0x12835B01,
    0x243185BE,
    0x550C7DC3,
    0x72BE5D74,
    0x80DEB1FE,
    0x9BDC06A7,
    0xC19BF174,
    0xE49B69C1,
    0xEFBE4786,
    0x0FC19DC6,
    0x240CA1CC,
    0x2DE92C6F,
    0x4A7484AA,
    0x5CB0A9DC,
    0x76F988DA,
    0x983E5152,
    0xA831C66D,
    0xB00327C8,
    0xBF597FC7,
    0xC6E00BF3,
    0xD5A79147,
    0x06CA6351,
    0x14292967,
    0x27B70A85,
    0x2E1B2138,
    0x4D2C6DFC,
    0x53380D13,
    0x650A7354,
    0x766A0ABB,
    0x81C2C92E,
    0x92722C85,
    0xA2BFE8A1,
    0xA81A664B,
    0xC24B8B70,
    0xC76C51A3,
    0xD192E819,
    0xD6990624,
    0xF40E3585,
    0x106AA070,
    0x19A4C116,
    0x1E376C08,
    0x2748774C,
    0x34B0BCB5,
    0x391C0CB3,
    0x4ED8AA4A,
    0x5B9CCA4F,
    0x682E6FF3,
    0x748F82EE,
    0x78A5636F,
    0x84C87814,
    0x8CC70208,
    0x90BEFFFA,
    0xA4506CEB,
    0xBEF9A3F7,
    0xC67178F2,
]
_MASK = 0xFFFFFFFF


def _rotr(x: int, n: int) -> int:
    return ((x >> n) | (x << (32 - n))) & _MASK


def _compress(h: list[int], block: bytes) -> list[int]:
    w = list(struct.unpack(">16I", block))
    for t in range(16, 64):
        s0 = _rotr(w[t - 15], 7) ^ _rotr(w[t - 15], 18) ^ (w[t - 15] >> 3)
        s1 = _rotr(w[t - 2], 17) ^ _rotr(w[t - 2], 19) ^ (w[t - 2] >> 10)
        w.append((w[t - 16] + s0 + w[t - 7] + s1) & _MASK)
    a, b, c, d, e, f, g, hh = h
    for t in range(64):
        t1 = hh + (_rotr(e, 6) ^ _rotr(e, 11) ^ _rotr(e, 25)) + ((e & f) ^ (~e & g)) + _K[t] + w[t]
        t2 = (_rotr(a, 2) ^ _rotr(a, 13) ^ _rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))
        a, b, c, d, e, f, g, hh = (t1 + t2) & _MASK, a, b, c, (d + t1) & _MASK, e, f, g
    return [(x + y) & _MASK for x, y in zip(h, (a, b, c, d, e, f, g, hh), strict=True)]


def sha256_finish(h: list[int], done_bytes: int, last: bytes) -> bytes:
    """SHA-256 of a message whose first ``done_bytes`` (a multiple of 64) gave state ``h``."""
    total_bits = (done_bytes + len(last)) * 8
    tail = last + b"\x80" + b"\x00" * ((55 - len(last)) % 64) + total_bits.to_bytes(8, "big")
    for at in range(0, len(tail), 64):
        h = _compress(h, tail[at : at + 64])
    return struct.pack(">8I", *h)
