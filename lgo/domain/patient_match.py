"""Is the patient at the counter the patient the prescription was written for? (pure)

The rule (written down for pharmacists in docs/dispensing.md, "Patient de l'ordonnance"):

1. **INS** when both sides carry one under the same OID: equal matricules → same patient, different
   → another patient, whatever the traits say (twins share every trait but their NIR).
2. Otherwise the **strict identity traits**: birth family name (the prescription's family name may
   also equal the used name), first given name, birth date, sex. Names are compared after the INS
   normalisation (upper case, no accents, ligatures spelled out) with hyphens, apostrophes and
   spaces removed inside a name, so ``D'ARC``, ``D ARC`` and ``DARC`` are one name. Given names
   are separated by spaces as in the INS referential; a composed given name keeps its hyphen
   (``JEAN-PIERRE`` is one first given name, ``JEAN PIERRE`` is JEAN then PIERRE).
3. Birth dates are compared as their sources give them, never corrected: 8 characters
   ``YYYYMMDD``; a month ``00`` or above 12, a day ``00`` or above 31 is *unknown* (lunar date of a
   carte Vitale, or a partial FHIR date ``1980``/``1980-05``). Years must be equal; a month or day
   must be equal when both are known, or unknown on both sides.
4. Sex is compared when both sides know it (M/F); ``U`` (unknown) on either side is not compared.

Nothing here logs or prints identity data (``repr`` hides it).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

_LIGATURES: Final = {"Œ": "OE", "Æ": "AE", "ß": "SS"}
_SEPARATORS: Final = re.compile(r"[\s\-'’‘ʼ`]+")
_ISO_DATE: Final = re.compile(r"^(\d{4})(?:-?(\d{2})(?:-?(\d{2}))?)?$")


class Trait(StrEnum):
    """Which part of the identity differs (the problem detail names them)."""

    INS = "ins"
    FAMILY_NAME = "family_name"
    GIVEN_NAME = "given_name"
    BIRTH_DATE = "birth_date"
    SEX = "sex"


TRAIT_LABELS_FR: Final = {
    Trait.INS: "INS",
    Trait.FAMILY_NAME: "nom de naissance",
    Trait.GIVEN_NAME: "premier prénom",
    Trait.BIRTH_DATE: "date de naissance",
    Trait.SEX: "sexe",
}


def name_key(raw: str) -> str:
    """One name as compared: upper case, no accents, no hyphen, apostrophe or space."""
    text = raw.strip().upper()
    for source, target in _LIGATURES.items():
        text = text.replace(source, target)
    decomposed = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _SEPARATORS.sub("", text)


def birth_date_digits(raw: str) -> str:
    """``YYYYMMDD`` from a card's 8 digits or an ISO date, full (``1980-05-04``) or partial
    (``1980``, ``1980-05``: missing parts become ``00``). Digits are kept as given (lunar dates
    stay lunar). ``ValueError`` for anything else."""
    match = _ISO_DATE.match(raw.strip())
    if match is None:
        raise ValueError("date de naissance illisible")
    year, month, day = match.groups()
    return f"{year}{month or '00'}{day or '00'}"


def display_birth_date(digits: str) -> str:
    """``JJ/MM/AAAA`` as the source gave it (``00/00/1980`` for a lunar date)."""
    return f"{digits[6:8]}/{digits[4:6]}/{digits[:4]}"


def _month_known(part: str) -> bool:
    return 1 <= int(part) <= 12


def _day_known(part: str) -> bool:
    return 1 <= int(part) <= 31


def same_birth_date(left: str, right: str) -> bool:
    """Both ``YYYYMMDD``: equal years; month and day equal when known on both sides, or unknown
    on both sides (a known part never matches an unknown one)."""
    if left == right:
        return True
    if left[:4] != right[:4]:
        return False
    for start, known in ((4, _month_known), (6, _day_known)):
        a, b = left[start : start + 2], right[start : start + 2]
        if known(a) and known(b):
            if a != b:
                return False
        elif known(a) or known(b):
            return False
    return True


@dataclass(frozen=True)
class PatientTraits:
    """One side's identity. ``family_names``: birth name first, then the used name if any.
    ``given_names``: in order, the first given name first. ``birth_date``: ``YYYYMMDD``.
    ``sex``: ``M``, ``F`` or ``U``. ``ins``/``ins_oid``: only an INS the side may rely on."""

    family_names: tuple[str, ...]
    given_names: tuple[str, ...]
    birth_date: str
    sex: str = "U"
    ins: str | None = None
    ins_oid: str | None = None

    def __post_init__(self) -> None:
        if not self.family_names or not self.family_names[0].strip():
            raise ValueError("family name required")
        if not re.fullmatch(r"\d{8}", self.birth_date):
            raise ValueError("birth date must be YYYYMMDD")
        if self.sex not in ("M", "F", "U"):
            raise ValueError("sex must be M, F or U")

    @property
    def first_given_name(self) -> str:
        return name_key(self.given_names[0]) if self.given_names else ""

    @property
    def display_name(self) -> str:
        """``FAMILLE Prénoms`` as read, for the pharmacist."""
        return " ".join([self.family_names[0], *self.given_names]).strip()

    def __repr__(self) -> str:  # identity traits stay out of logs and tracebacks
        return "PatientTraits(<hidden>)"


class MatchBasis(StrEnum):
    INS = "ins"
    TRAITS = "traits"


@dataclass(frozen=True)
class PatientMatch:
    same: bool
    basis: MatchBasis
    differing: tuple[Trait, ...] = ()


def _comparable_ins(a: PatientTraits, b: PatientTraits) -> bool:
    # An INS-NIR and an INS-NIA (or a test OID) are different registers: not comparable.
    return bool(a.ins and b.ins and a.ins_oid and a.ins_oid == b.ins_oid)


def _names(names: tuple[str, ...]) -> set[str]:
    return {name_key(n) for n in names if name_key(n)}


def _differing_traits(prescribed: PatientTraits, patient: PatientTraits) -> tuple[Trait, ...]:
    differing: list[Trait] = []
    # A prescriber may write the used name (e.g. a married name): any shared name will do.
    if not _names(prescribed.family_names) & _names(patient.family_names):
        differing.append(Trait.FAMILY_NAME)
    first = prescribed.first_given_name
    if not first or first != patient.first_given_name:
        differing.append(Trait.GIVEN_NAME)
    if not same_birth_date(prescribed.birth_date, patient.birth_date):
        differing.append(Trait.BIRTH_DATE)
    if "U" not in (prescribed.sex, patient.sex) and prescribed.sex != patient.sex:
        differing.append(Trait.SEX)
    return tuple(differing)


def match_patient(prescribed: PatientTraits, patient: PatientTraits) -> PatientMatch:
    """Compare the prescription's patient with the dispensation's patient (rule in the module
    docstring)."""
    if _comparable_ins(prescribed, patient):
        same = prescribed.ins == patient.ins
        return PatientMatch(same, MatchBasis.INS, () if same else (Trait.INS,))
    differing = _differing_traits(prescribed, patient)
    return PatientMatch(not differing, MatchBasis.TRAITS, differing)
