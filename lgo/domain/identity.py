"""Patient identity rules: NIR/NIA/INS keys, INS OIDs, identity traits and the RNIV status machine.

Pure domain (no I/O, no framework). Facts: reference domain.md §3, §9 and formats.md §1.5.

- INS matricule = NIR or NIA, 15 characters = 13 + 2-digit key, key = ``97 - (N13 mod 97)``
  where the Corsican departments ``2A``/``2B`` count as ``19``/``18``.
- OIDs: INS-NIR ``…4.8``, INS-NIA ``…4.9``, INS-NIR *test* ``…4.10``, INS-NIR *DEMO* ``…4.11``.
- Identity status (RNIV): PROV → RECUP (INSi ok) → QUAL (ID document checked), PROV → VALI
  (ID document checked) → QUAL (INSi ok). Only a QUAL identity may carry its INS out.
- Birth dates stay raw 8-digit text (``YYYYMMDD``): lunar dates (``19800000``) are legal.

Errors raised here are :class:`IdentityRuleError` subclasses (``ValueError``); the service layer
turns them into the API's typed errors. Messages are in French: a pharmacist may read them.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from stdnum.fr import nir as nir_numbers


class IdentityRuleError(ValueError):
    """An identity value or change breaks a rule; nothing was changed."""


class InvalidNirError(IdentityRuleError):
    """Malformed NIR/NIA or wrong key."""


class InvalidOidError(IdentityRuleError):
    """OID that is not an INS OID."""


class InvalidTraitError(IdentityRuleError):
    """Identity trait (name, sex, birth date, birthplace) that cannot be used."""


class TransitionRefusedError(IdentityRuleError):
    """Identity status change that the RNIV does not allow."""

    def __init__(self, status: IdentityStatus, event: IdentityEvent) -> None:
        self.status = status
        self.event = event
        super().__init__(f"Changement de statut d'identité refusé ({status.code}, {event.value}).")


# --- NIR / NIA ------------------------------------------------------------------------------

_NIR_SHAPE: Final = re.compile(r"^([1-478])(\d{2})(\d{2})(\d{2}|2A|2B)(\d{3})(\d{3})(\d{2})$")
_CORSICA: Final = {"2A": "19", "2B": "18"}
DEFINITIVE_FIRST_DIGITS: Final = frozenset("12")


def normalise_nir(raw: str) -> str:
    """Drop spaces/dots/dashes people type and upper-case ``2a``/``2b``."""
    return re.sub(r"[\s.\-]", "", raw).upper()


def nir_key(first13: str) -> int:
    """Key of the first 13 characters of a NIR/NIA (Corsica ``2A``→``19``, ``2B``→``18``)."""
    if len(first13) != 13:
        raise InvalidNirError("Le NIR doit compter 13 caractères avant la clé.")
    department = first13[5:7]
    digits = first13[:5] + _CORSICA.get(department, department) + first13[7:]
    if not digits.isascii() or not digits.isdigit():
        raise InvalidNirError("Le NIR contient des caractères non autorisés.")
    return int(nir_numbers.calc_check_digits(first13))


def _month_ok(month: int) -> bool:
    # 01–12 calendar; 20–42 and 50–99 are used when the month of birth is unknown (formats §1.5).
    return 1 <= month <= 12 or 20 <= month <= 42 or 50 <= month <= 99


def check_nir(raw: str) -> str:
    """Return the normalised 15-character NIR/NIA, or raise :class:`InvalidNirError`."""
    value = normalise_nir(raw)
    match = _NIR_SHAPE.match(value)
    if match is None:
        raise InvalidNirError("Format de NIR invalide (15 caractères attendus).")
    if not _month_ok(int(match.group(3))):
        raise InvalidNirError("Mois de naissance du NIR invalide.")
    if nir_key(value[:13]) != int(match.group(7)):
        raise InvalidNirError("Clé du NIR invalide.")
    return value


def is_valid_nir(raw: str) -> bool:
    try:
        check_nir(raw)
    except InvalidNirError:
        return False
    return True


def is_definitive_nir(nir: str) -> bool:
    """First digit 1/2: definitive NIR; 3/4/7/8: temporary number (NIA or provisional)."""
    return nir[:1] in DEFINITIVE_FIRST_DIGITS


def with_key(first13: str) -> str:
    """Append the key to 13 characters (for generating fictitious test NIRs)."""
    return f"{first13}{nir_key(first13):02d}"


def display_nir(nir: str) -> str:
    """``X XX XX XX XXX XXX XX`` as printed on documents."""
    parts = (nir[0], nir[1:3], nir[3:5], nir[5:7], nir[7:10], nir[10:13], nir[13:15])
    return " ".join(parts)


# --- OIDs and INS -----------------------------------------------------------------------------


class InsOid(StrEnum):
    NIR = "1.2.250.1.213.1.4.8"
    NIA = "1.2.250.1.213.1.4.9"
    TEST = "1.2.250.1.213.1.4.10"
    DEMO = "1.2.250.1.213.1.4.11"

    @property
    def is_test(self) -> bool:
        return self is InsOid.TEST

    @property
    def is_demo(self) -> bool:
        return self is InsOid.DEMO

    @property
    def is_production(self) -> bool:
        return self in (InsOid.NIR, InsOid.NIA)

    @property
    def label(self) -> str:
        return {
            InsOid.NIR: "INS-NIR",
            InsOid.NIA: "INS-NIA",
            InsOid.TEST: "INS-NIR [TEST]",
            InsOid.DEMO: "INS-NIR [DEMO]",
        }[self]


def check_oid(raw: str) -> InsOid:
    try:
        return InsOid(raw.strip())
    except ValueError:
        raise InvalidOidError("OID d'INS inconnu.") from None


@dataclass(frozen=True, slots=True)
class Ins:
    """An INS matricule with its OID. Build with :meth:`of` to validate."""

    matricule: str
    oid: InsOid

    @classmethod
    def of(cls, matricule: str, oid: str) -> Ins:
        return cls(check_nir(matricule), check_oid(oid))

    def __repr__(self) -> str:  # never print the number itself (logs)
        return f"Ins(oid={self.oid.label})"


def validate_ins(matricule: str, oid: str | None = None) -> bool:
    """True when the matricule has a valid key (and the OID, if given, is an INS OID)."""
    if not is_valid_nir(matricule):
        return False
    if oid is None:
        return True
    try:
        check_oid(oid)
    except InvalidOidError:
        return False
    return True


# --- traits -----------------------------------------------------------------------------------

INSI_NAME: Final = re.compile(r"^[A-Z]+(?:(?:-{1,2}|[' ])[A-Z]+)*$")
_LIGATURES: Final = {"Œ": "OE", "Æ": "AE", "ß": "SS"}
_APOSTROPHES: Final = {"’": "'", "‘": "'", "ʼ": "'", "`": "'"}


def normalise_name(raw: str) -> str:
    """Upper-case, unaccented name matching the INSi regex, or :class:`InvalidTraitError`.

    ``"Éloïse-Marie d’Arc"`` → ``"ELOISE-MARIE D'ARC"``.
    """
    text = raw.strip().upper()
    for source, target in {**_LIGATURES, **_APOSTROPHES}.items():
        text = text.replace(source, target)
    decomposed = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in decomposed if not unicodedata.combining(c))
    text = re.sub(r"\s+", " ", text)
    if not INSI_NAME.match(text):
        raise InvalidTraitError("Nom ou prénom non conforme (lettres, espace, tiret, apostrophe).")
    return text


def split_given_names(raw: str) -> list[str]:
    """Given names as written on the record: separated by spaces or commas; hyphens kept."""
    return [normalise_name(part) for part in re.split(r"[,\s]+", raw.strip()) if part]


def first_name_attempts(given_names: list[str]) -> list[str]:
    """INSi order: each given name alone, then all of them together (no repeats)."""
    attempts: list[str] = []
    for name in [*given_names, " ".join(given_names)]:
        if name and name not in attempts:
            attempts.append(name)
    return attempts


class Sex(StrEnum):
    F = "F"
    M = "M"


def check_sex(raw: str) -> Sex:
    value = raw.strip().upper()
    aliases = {"1": "M", "2": "F", "H": "M"}
    try:
        return Sex(aliases.get(value, value))
    except ValueError:
        raise InvalidTraitError("Sexe invalide (F ou M attendu).") from None


_RAW_DATE: Final = re.compile(r"^(\d{4})-?(\d{2})-?(\d{2})$")


@dataclass(frozen=True, slots=True)
class RawBirthDate:
    """Birth date kept as 8 digits ``YYYYMMDD``; ``00`` or out-of-range parts are legal (lunar)."""

    raw: str

    @classmethod
    def parse(cls, text: str) -> RawBirthDate:
        """Accept ``YYYYMMDD`` (Vitale) or ``YYYY-MM-DD`` (INSi); never calendar-checked."""
        match = _RAW_DATE.match(text.strip())
        if match is None:
            raise InvalidTraitError("Date de naissance invalide (AAAAMMJJ attendu).")
        return cls("".join(match.groups()))

    @property
    def iso_like(self) -> str:
        """``YYYY-MM-DD`` text for INSi (``DateLunaire``), even for ``1980-00-00``."""
        return f"{self.raw[:4]}-{self.raw[4:6]}-{self.raw[6:]}"

    @property
    def is_lunar(self) -> bool:
        month, day = int(self.raw[4:6]), int(self.raw[6:])
        return not (1 <= month <= 12 and 1 <= day <= 31)

    def __repr__(self) -> str:  # birth dates stay out of logs
        return "RawBirthDate(<hidden>)"


_COG: Final = re.compile(r"^(\d{5}|2A\d{3}|2B\d{3})$")


def check_cog(raw: str) -> str:
    """INSEE COG of the birthplace (5 characters, Corsica ``2A``/``2B``; ``99xxx`` abroad)."""
    value = raw.strip().upper()
    if not _COG.match(value):
        raise InvalidTraitError("Code INSEE du lieu de naissance invalide.")
    return value


@dataclass(frozen=True, slots=True)
class Traits:
    """The five INS traits (birth name, given names, sex, birth date, birthplace COG)."""

    birth_name: str
    given_names: tuple[str, ...]
    sex: Sex
    birth_date: RawBirthDate
    birthplace: str | None = None

    @classmethod
    def of(
        cls,
        birth_name: str,
        given_names: str | list[str],
        sex: str,
        birth_date: str,
        birthplace: str | None = None,
    ) -> Traits:
        names = (
            split_given_names(given_names)
            if isinstance(given_names, str)
            else [normalise_name(n) for n in given_names]
        )
        if not names:
            raise InvalidTraitError("Au moins un prénom est requis.")
        return cls(
            birth_name=normalise_name(birth_name),
            given_names=tuple(names),
            sex=check_sex(sex),
            birth_date=RawBirthDate.parse(birth_date),
            birthplace=check_cog(birthplace) if birthplace else None,
        )

    def __repr__(self) -> str:  # identity traits stay out of logs
        return "Traits(<hidden>)"


# --- status machine (RNIV) --------------------------------------------------------------------


class IdentityStatus(StrEnum):
    """Stored as the English word (``patients.identity_status``); :attr:`code` is the FR Core code."""

    PROV = "provisional"  # provisoire: no INSi, no document check
    RECUP = "recovered"  # récupérée: INS from INSi, no document check
    VALI = "validated"  # validée: high-trust document checked, no INSi
    QUAL = "qualified"  # qualifiée: both

    @property
    def code(self) -> str:
        """FR Core ``fr-core-cs-v2-0445`` code (PROV, RECUP, VALI, QUAL)."""
        return self.name

    @property
    def label(self) -> str:
        return {
            IdentityStatus.PROV: "Identité provisoire",
            IdentityStatus.RECUP: "Identité récupérée",
            IdentityStatus.VALI: "Identité validée",
            IdentityStatus.QUAL: "Identité qualifiée",
        }[self]


class IdentityEvent(StrEnum):
    INSI_OK = "insi_ok"  # INS retrieved or verified by INSi with the local traits
    DOCUMENT_CHECKED = "document_checked"  # high-trust ID document seen at the counter
    INSI_KO = "insi_ko"  # re-verification of a stored INS failed (not found / other identity)


TRANSITIONS: Final[dict[tuple[IdentityStatus, IdentityEvent], IdentityStatus]] = {
    (IdentityStatus.PROV, IdentityEvent.INSI_OK): IdentityStatus.RECUP,
    (IdentityStatus.PROV, IdentityEvent.DOCUMENT_CHECKED): IdentityStatus.VALI,
    (IdentityStatus.RECUP, IdentityEvent.INSI_OK): IdentityStatus.RECUP,
    (IdentityStatus.RECUP, IdentityEvent.DOCUMENT_CHECKED): IdentityStatus.QUAL,
    (IdentityStatus.VALI, IdentityEvent.INSI_OK): IdentityStatus.QUAL,
    (IdentityStatus.VALI, IdentityEvent.DOCUMENT_CHECKED): IdentityStatus.VALI,
    (IdentityStatus.QUAL, IdentityEvent.INSI_OK): IdentityStatus.QUAL,
    (IdentityStatus.QUAL, IdentityEvent.DOCUMENT_CHECKED): IdentityStatus.QUAL,
    # A failed re-verification withdraws what INSi had brought: the INS may no longer be used
    # and the identity goes to the work list until a new INSi check succeeds.
    (IdentityStatus.RECUP, IdentityEvent.INSI_KO): IdentityStatus.PROV,
    (IdentityStatus.QUAL, IdentityEvent.INSI_KO): IdentityStatus.VALI,
}


def next_status(status: IdentityStatus, event: IdentityEvent) -> IdentityStatus:
    """Apply ``event``; :class:`TransitionRefusedError` when the RNIV does not allow it.

    Refused: ``insi_ko`` on PROV/VALI (no INSi-backed INS to lose).
    """
    try:
        return TRANSITIONS[(status, event)]
    except KeyError:
        raise TransitionRefusedError(status, event) from None


def may_send_ins(status: IdentityStatus, on_work_list: bool = False) -> bool:
    """Only a qualified identity, not awaiting resolution, carries its INS out of the pharmacy."""
    return status is IdentityStatus.QUAL and not on_work_list
