"""Professional identity from a CPS authentication certificate (formats.md §2.5).

Subject attributes are read by type, not position: CN = national id (``8`` + RPPS for RPPS
professions, other prefixes for ADELI-based ids), SN = family name, GN = given name, title =
profession. A CN that claims an RPPS (``8`` + 11 digits) must pass the Luhn check.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import NameOID
from stdnum import luhn

from drivers.errors import CertificateError


@dataclass(frozen=True, slots=True)
class ProfessionalIdentity:
    national_id: str
    rpps: str | None
    family_name: str
    given_name: str
    profession: str


def luhn_is_valid(digits: str) -> bool:
    return digits.isascii() and digits.isdigit() and luhn.is_valid(digits)


def _attribute(name: x509.Name, oid: x509.ObjectIdentifier) -> str:
    values = name.get_attributes_for_oid(oid)
    if not values:
        return ""
    value = values[0].value
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def identity_from_certificate(der: bytes) -> ProfessionalIdentity:
    """Decode ``der`` (X.509) into a professional identity; CertificateError if it cannot."""
    try:
        certificate = x509.load_der_x509_certificate(der)
        subject = certificate.subject
    except ValueError as exc:
        raise CertificateError("authentication certificate does not decode") from exc
    national_id = _attribute(subject, NameOID.COMMON_NAME).strip()
    if not national_id:
        raise CertificateError("certificate subject has no CN (national id)")
    rpps = None
    if national_id.startswith("8") and len(national_id) == 12 and national_id.isdigit():
        rpps = national_id[1:]
        if not luhn_is_valid(rpps):
            raise CertificateError("RPPS in certificate fails its Luhn check")
    return ProfessionalIdentity(
        national_id=national_id,
        rpps=rpps,
        family_name=_attribute(subject, NameOID.SURNAME).strip(),
        given_name=_attribute(subject, NameOID.GIVEN_NAME).strip(),
        profession=_attribute(subject, NameOID.TITLE).strip(),
    )
