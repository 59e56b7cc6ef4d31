"""Who a pharmacist may vaccinate, with which vaccine (pure; the facts and sources are in
``docs/vaccination-trod.md``).

Since décret n° 2023-736 and the arrêté of 8 August 2023, pharmacists prescribe and administer the
vaccines of the calendrier des vaccinations to persons aged **11 and over**, except live attenuated
vaccines for immunocompromised persons. The arrêté of 21 April 2022 already excluded, for influenza,
persons with a history of severe allergic reaction to a previous vaccination (or to ovalbumin):
the same exclusion is applied to every vaccine here, on the pharmacist's questionnaire.

Ages are computed from the birth date as read (``YYYYMMDD``, lunar dates with ``00`` month or day
included): a lunar date gives a range of possible ages; a minimum age must hold for the youngest
possible age, a maximum age for the oldest.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

PHARMACIST_MIN_AGE = 11


class Vaccine(StrEnum):
    """The vaccines (valences) pharmacists may give, as the counter names them."""

    GRIPPE = "grippe"
    COVID_19 = "covid-19"
    HPV = "hpv"
    DTCAP = "dtcap"  # diphtérie, tétanos, coqueluche, poliomyélite
    DTP = "dtp"  # diphtérie, tétanos, poliomyélite
    PNEUMOCOQUE = "pneumocoque"
    HEPATITE_A = "hepatite-a"
    HEPATITE_B = "hepatite-b"
    MENINGOCOQUE_ACWY = "meningocoque-acwy"
    MENINGOCOQUE_B = "meningocoque-b"
    MENINGOCOQUE_C = "meningocoque-c"
    RAGE = "rage"
    ROR = "ror"  # rougeole, oreillons, rubéole: live attenuated


@dataclass(frozen=True)
class VaccineRule:
    vaccine: Vaccine
    label: str  # French, as shown at the counter and in the note
    atc: str  # ATC class (mandatory in the VAC-NOTE document)
    atc_label: str
    live: bool = False
    min_age: int = PHARMACIST_MIN_AGE
    max_age: int | None = None  # inclusive, in years
    warn_above: int | None = None  # inclusive upper bound of the general recommendation
    warning: str = ""


RULES: dict[Vaccine, VaccineRule] = {
    rule.vaccine: rule
    for rule in (
        VaccineRule(
            Vaccine.GRIPPE,
            "Grippe saisonnière",
            "J07BB02",
            "vaccin grippal inactivé, antigène purifié",
        ),
        VaccineRule(Vaccine.COVID_19, "Covid-19", "J07BN01", "vaccin covid-19 à ARN"),
        # Calendrier: 11-14 years, catch-up to 19; to 26 for men who have sex with men.
        VaccineRule(
            Vaccine.HPV,
            "Papillomavirus humains (HPV)",
            "J07BM03",
            "vaccin papillomavirus (types 6, 11, 16, 18, 31, 33, 45, 52, 58)",
            max_age=26,
            warn_above=19,
            warning="Au-delà de 19 ans, rattrapage recommandé seulement pour les hommes "
            "ayant des relations sexuelles avec des hommes (jusqu'à 26 ans).",
        ),
        VaccineRule(
            Vaccine.DTCAP,
            "Diphtérie, tétanos, coqueluche, poliomyélite",
            "J07CA02",
            "vaccin diphtérie-coqueluche-poliomyélite-tétanos",
        ),
        VaccineRule(
            Vaccine.DTP,
            "Diphtérie, tétanos, poliomyélite",
            "J07CA01",
            "vaccin diphtérie-poliomyélite-tétanos",
        ),
        VaccineRule(
            Vaccine.PNEUMOCOQUE,
            "Infections invasives à pneumocoque",
            "J07AL02",
            "vaccin pneumococcique conjugué",
        ),
        VaccineRule(Vaccine.HEPATITE_A, "Hépatite A", "J07BC02", "vaccin hépatite A inactivé"),
        VaccineRule(
            Vaccine.HEPATITE_B, "Hépatite B", "J07BC01", "vaccin hépatite B, antigène purifié"
        ),
        VaccineRule(
            Vaccine.MENINGOCOQUE_ACWY,
            "Méningocoques A, C, W, Y",
            "J07AH08",
            "vaccin méningococcique tétravalent conjugué",
        ),
        VaccineRule(
            Vaccine.MENINGOCOQUE_B,
            "Méningocoque B",
            "J07AH09",
            "vaccin méningococcique B multicomposant",
        ),
        VaccineRule(
            Vaccine.MENINGOCOQUE_C, "Méningocoque C", "J07AH07", "vaccin méningococcique C conjugué"
        ),
        VaccineRule(Vaccine.RAGE, "Rage", "J07BG01", "vaccin rabique inactivé"),
        VaccineRule(
            Vaccine.ROR,
            "Rougeole, oreillons, rubéole",
            "J07BD52",
            "vaccin rougeole-oreillons-rubéole vivant atténué",
            live=True,
        ),
    )
}


@dataclass(frozen=True)
class Reason:
    code: str
    message: str  # French


@dataclass(frozen=True)
class EligibilityInput:
    vaccine: Vaccine
    birth_date_raw: str  # YYYYMMDD as read; 00 for an unknown month or day
    on: date  # the day of the act
    immunocompromised: bool = False
    severe_reaction_history: bool = False


@dataclass(frozen=True)
class Eligibility:
    eligible: bool
    age_min: int | None  # youngest possible age on the day (None: birth date unreadable)
    age_max: int | None
    refusals: tuple[Reason, ...] = ()
    warnings: tuple[Reason, ...] = ()


def birth_range(raw: str) -> tuple[date, date] | None:
    """(earliest, latest) possible birth date of a raw ``YYYYMMDD``; None when unreadable."""
    if len(raw) != 8 or not raw.isdigit():
        return None
    year, month, day = int(raw[:4]), int(raw[4:6]), int(raw[6:])
    if year < 1850 or month > 12:
        return None
    months = (month, month) if month else (1, 12)
    first_day = day if day else 1
    last_day = day if day else calendar.monthrange(year, months[1])[1]
    try:
        return date(year, months[0], first_day), date(year, months[1], last_day)
    except ValueError:
        return None


def age_on(born: date, on: date) -> int:
    """Completed years on ``on`` (a person born on 29 February has a birthday on 1 March)."""
    had_birthday = (on.month, on.day) >= (born.month, born.day)
    return on.year - born.year - (0 if had_birthday else 1)


def age_range(raw: str, on: date) -> tuple[int, int] | None:
    """(youngest, oldest) possible age on ``on``."""
    births = birth_range(raw)
    if births is None:
        return None
    earliest, latest = births
    return age_on(latest, on), age_on(earliest, on)


def assess(data: EligibilityInput) -> Eligibility:
    rule = RULES[data.vaccine]
    ages = age_range(data.birth_date_raw, data.on)
    refusals: list[Reason] = []
    warnings: list[Reason] = []
    if ages is None:
        refusals.append(
            Reason("birth-date-unknown", "Date de naissance illisible : âge impossible à vérifier.")
        )
        return Eligibility(False, None, None, tuple(refusals))
    youngest, oldest = ages
    if youngest < rule.min_age:
        refusals.append(
            Reason(
                "too-young",
                f"Le pharmacien vaccine à partir de {rule.min_age} ans (âge du patient : "
                f"{_age_text(ages)}).",
            )
        )
    if rule.max_age is not None and oldest > rule.max_age:
        refusals.append(
            Reason(
                "too-old",
                f"{rule.label} : vaccination recommandée jusqu'à {rule.max_age} ans (âge du patient : "
                f"{_age_text(ages)}).",
            )
        )
    elif rule.warn_above is not None and oldest > rule.warn_above:
        warnings.append(Reason("catch-up-only", rule.warning))
    if rule.live and data.immunocompromised:
        refusals.append(
            Reason(
                "live-vaccine-immunocompromised",
                "Vaccin vivant atténué : exclu chez une personne immunodéprimée (orienter vers le "
                "médecin).",
            )
        )
    if data.severe_reaction_history:
        refusals.append(
            Reason(
                "severe-reaction-history",
                "Antécédent de réaction allergique sévère à une vaccination : orienter vers le "
                "médecin.",
            )
        )
    return Eligibility(not refusals, youngest, oldest, tuple(refusals), tuple(warnings))


def _age_text(ages: tuple[int, int]) -> str:
    youngest, oldest = ages
    return f"{youngest} ans" if youngest == oldest else f"{youngest} à {oldest} ans"
