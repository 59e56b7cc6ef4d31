"""DER encoding of the PKCS#15 (ISO 7816-15) files of the virtual CPS, as OpenSC decodes them.

Only what the CPS application needs: EF.ODF, EF.TokenInfo (with ``supportedAlgorithms``, which
OpenSC's IAS-ECC driver reads to fill the algorithm byte of MSE SET), AODF (one PIN), PrKDF (RSA
keys held as IAS-ECC SDOs: a key reference, no file), CDF (X.509 certificates in EFs).
Layouts follow OpenSC ``pkcs15.c`` / ``pkcs15-prkey.c`` / ``pkcs15-pin.c`` / ``pkcs15-cert.c``.
"""

from __future__ import annotations

from dataclasses import dataclass

from hwsim.cards.tlv import tlv

# PKCS#11 mechanism numbers (OpenSC's AlgorithmInfo carries them as "algorithmPKCS#11")
CKM_RSA_PKCS = 0x0001
CKM_SHA256_RSA_PKCS = 0x0040
CKM_SHA256 = 0x0250

# AlgorithmInfo.supportedOperations bits (OpenSC SC_PKCS15_ALGO_OP_*)
OP_COMPUTE_SIGNATURE = 0x02
OP_DECIPHER = 0x20
OP_HASH = 0x40

# CommonKeyAttributes.usage bits (PKCS#15 KeyUsageFlags)
USAGE_DECRYPT = 0x02
USAGE_SIGN = 0x04
USAGE_NON_REPUDIATION = 0x200


def integer(value: int) -> bytes:
    raw = value.to_bytes(max(1, (value.bit_length() + 8) // 8), "big")
    return tlv(0x02, raw)


def octets(value: bytes) -> bytes:
    return tlv(0x04, value)


def utf8(text: str) -> bytes:
    return tlv(0x0C, text.encode("utf-8"))


def seq(*items: bytes) -> bytes:
    return tlv(0x30, b"".join(items))


def bit_field(flags: int) -> bytes:
    """A BIT STRING where flag ``1 << i`` is named bit ``i`` (bit 0 = most significant bit of the
    first octet), with the unused-bits count DER wants."""
    if flags == 0:
        return bytes([0x03, 0x01, 0x00])
    nbits = flags.bit_length()
    nbytes = (nbits + 7) // 8
    value = 0
    for i in range(nbits):
        if flags >> i & 1:
            value |= 1 << (nbytes * 8 - 1 - i)
    return tlv(0x03, bytes([nbytes * 8 - nbits]) + value.to_bytes(nbytes, "big"))


def path(raw: bytes) -> bytes:
    return seq(octets(raw))


@dataclass(frozen=True)
class Algorithm:
    reference: int  # AlgorithmInfo.reference (what a key's algReference names)
    mechanism: int  # PKCS#11 mechanism
    operations: int
    algo_ref: int  # IAS-ECC algorithm byte the card expects in MSE SET (tag 80)

    def der(self) -> bytes:
        return seq(
            integer(self.reference),
            integer(self.mechanism),
            bytes([0x05, 0x00]),  # parameters: NULL (RSA)
            bit_field(self.operations),
            integer(self.algo_ref),
        )


# The algorithm references of the IAS-ECC specification (OpenSC iasecc-sdo.h IASECC_ALGORITHM_*).
# SHA-1 (IAS-ECC 0x10 / 0x12) is left out: the virtual card hashes with SHA-256 only.
ALGORITHMS = (
    Algorithm(2, CKM_SHA256, OP_HASH, 0x40),
    Algorithm(4, CKM_SHA256_RSA_PKCS, OP_COMPUTE_SIGNATURE, 0x42),
    Algorithm(5, CKM_RSA_PKCS, OP_COMPUTE_SIGNATURE, 0x02),
    Algorithm(6, CKM_RSA_PKCS, OP_DECIPHER, 0x0A),
)


def token_info(serial: bytes, label: str, manufacturer: str) -> bytes:
    """EF.TokenInfo: version 0, serialNumber, manufacturerID, label [0], tokenflags
    (loginRequired), supportedAlgorithms [2]."""
    return seq(
        integer(0),
        octets(serial),
        utf8(manufacturer),
        tlv(0x80, label.encode("utf-8")),
        bit_field(0x02),  # loginRequired
        tlv(0xA2, b"".join(a.der() for a in ALGORITHMS)),
    )


def odf(entries: list[tuple[int, bytes]]) -> bytes:
    """EF.ODF: ``[tag] Path`` per directory file (A0 PrKDF, A4 CDF, A8 AODF)."""
    return b"".join(tlv(tag, path(raw)) for tag, raw in entries)


def pin_object(label: str, auth_id: bytes, reference: int) -> bytes:
    """AODF entry: a global ASCII-numeric PIN, 4 to 8 digits stored on 8 bytes padded with FF."""
    common = seq(utf8(label), bit_field(0x01 | 0x02))  # private, modifiable
    # pinFlags: initialized (4), needs-padding (5)
    attrs = seq(
        bit_field(1 << 4 | 1 << 5),
        tlv(0x0A, b"\x01"),  # pinType ascii-numeric
        integer(4),  # minLength
        integer(8),  # storedLength
        integer(8),  # maxLength
        tlv(0x80, bytes([reference])),  # pinReference [0]
        tlv(0x04, b"\xff"),  # padChar
    )
    return seq(common, seq(octets(auth_id)), tlv(0xA1, attrs))


def rsa_key_object(
    label: str,
    key_id: bytes,
    usage: int,
    key_ref: int,
    auth_id: bytes,
    algo_refs: list[int],
    df_path: bytes,
) -> bytes:
    """PrKDF entry of a private RSA-2048 key held by the card as an SDO of the DF ``df_path``."""
    common = seq(utf8(label), bit_field(0x01), octets(auth_id))  # private
    key_attrs = seq(
        octets(key_id),
        bit_field(usage),
        tlv(0x01, b"\xff"),  # native
        integer(key_ref),
        tlv(0xA1, b"".join(integer(ref) for ref in algo_refs)),  # algReference
    )
    rsa_attrs = seq(path(df_path), integer(2048))  # value: the DF holding the SDO, modulusLength
    return seq(common, key_attrs, tlv(0xA1, rsa_attrs))


def certificate_object(label: str, cert_id: bytes, cert_path: bytes) -> bytes:
    """CDF entry: an X.509 certificate in an EF (public)."""
    common = seq(utf8(label))
    return seq(common, seq(octets(cert_id)), tlv(0xA1, seq(path(cert_path))))
