"""Rapid tests (TROD) at the counter and the national protocol for dispensing an antibiotic without
a prescription after a positive angine or cystite test (pure; the facts and their sources are in
``docs/vaccination-trod.md``: arrêté and décret of 17 June 2024, HAS antibiotic fiches).

- **Angine** (streptocoque A): patient aged 10 or over; from 15 years the Mac Isaac score must be at
  least 2 for the test to be indicated; exclusions (fever above 39.5 °C, pregnancy, immunodepression,
  ongoing antibiotic, similar episode within 15 days, signs of complication …) send to a doctor.
- **Cystite** (bandelette urinaire, positive when leucocytes or nitrites are): women aged 16 to 65,
  uncomplicated (no fever above 38 °C, no lumbar pain, not pregnant, not a 4th episode in 12 months …).

Within the criteria and with a positive test, the pharmacist chooses one of the protocol's regimens
(:data:`REGIMENS`); outside them, the patient is referred to a doctor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from enum import StrEnum

ANGINE_MIN_AGE = 10
MAC_ISAAC_FROM_AGE = (
    15  # below, the score is not required (HAS: the score is for 15 years and over)
)
MAC_ISAAC_MIN_SCORE = 2
ANGINE_MAX_TEMPERATURE = Decimal("39.5")
MAC_ISAAC_FEVER = Decimal("38")
CYSTITE_MIN_AGE = 16
CYSTITE_MAX_AGE = 65
CYSTITE_MAX_TEMPERATURE = Decimal("38")
CYSTITE_MAX_PREVIOUS_EPISODES = 2  # a 3rd previous episode in 12 months makes this one the 4th
ADULT_AGE = 18


class TrodTest(StrEnum):
    """The tests of the BIO-TROD volet done at the counter (values as in the documents part)."""

    ANGINE = "angine"
    CYSTITE = "cystite"
    COVID_19 = "covid-19"
    GRIPPE = "grippe"


class Reading(StrEnum):
    POSITIVE = "positif"
    NEGATIVE = "negatif"
    INDETERMINATE = "indetermine"
    UNSATISFACTORY = "echantillon-insatisfaisant"


# Analytes read by each test (one reading each), by the documents part's names.
ANALYTES: dict[TrodTest, tuple[str, ...]] = {
    TrodTest.ANGINE: ("streptocoque-a",),
    TrodTest.CYSTITE: ("leucocytes", "nitrites"),
    TrodTest.COVID_19: ("sars-cov-2",),
    TrodTest.GRIPPE: ("grippe-a", "grippe-b"),
}


class Exclusion(StrEnum):
    """Exclusion criteria the pharmacist checks before the test (questionnaire)."""

    PREGNANCY = "grossesse"
    IMMUNODEPRESSION = "immunodepression"
    ONGOING_ANTIBIOTIC = "antibiotique-en-cours"
    RECENT_EPISODE = "episode-recent"  # angine: similar episode within 15 days
    COMPLICATION_SIGNS = "signes-de-complication"
    TROPICAL_TRAVEL = "retour-pays-tropical"
    CHILD_DIGESTIVE_TROUBLES = "troubles-digestifs-enfant"
    SYMPTOMS_OVER_8_DAYS = "symptomes-plus-de-8-jours"
    LUMBAR_PAIN = "douleur-lombaire"
    URINARY_ABNORMALITY = "anomalie-urinaire"
    URINARY_CATHETER = "sonde-urinaire"
    SEVERE_RENAL_FAILURE = "insuffisance-renale-severe"


EXCLUSION_LABELS: dict[Exclusion, str] = {
    Exclusion.PREGNANCY: "grossesse en cours ou possible",
    Exclusion.IMMUNODEPRESSION: "immunodépression",
    Exclusion.ONGOING_ANTIBIOTIC: "antibiothérapie en cours",
    Exclusion.RECENT_EPISODE: "épisode semblable dans les 15 jours précédents",
    Exclusion.COMPLICATION_SIGNS: "signes de gravité ou de complication (trismus, altération de "
    "l'état général, gêne respiratoire, douleur unilatérale …)",
    Exclusion.TROPICAL_TRAVEL: "retour d'un pays tropical",
    Exclusion.CHILD_DIGESTIVE_TROUBLES: "troubles digestifs importants chez l'enfant",
    Exclusion.SYMPTOMS_OVER_8_DAYS: "symptômes depuis plus de 8 jours",
    Exclusion.LUMBAR_PAIN: "douleur lombaire (suspicion de pyélonéphrite)",
    Exclusion.URINARY_ABNORMALITY: "anomalie organique ou fonctionnelle de l'arbre urinaire",
    Exclusion.URINARY_CATHETER: "sonde urinaire",
    Exclusion.SEVERE_RENAL_FAILURE: "insuffisance rénale sévère",
}

EXCLUSIONS: dict[TrodTest, frozenset[Exclusion]] = {
    TrodTest.ANGINE: frozenset(
        {
            Exclusion.PREGNANCY,
            Exclusion.IMMUNODEPRESSION,
            Exclusion.ONGOING_ANTIBIOTIC,
            Exclusion.RECENT_EPISODE,
            Exclusion.COMPLICATION_SIGNS,
            Exclusion.TROPICAL_TRAVEL,
            Exclusion.CHILD_DIGESTIVE_TROUBLES,
            Exclusion.SYMPTOMS_OVER_8_DAYS,
        }
    ),
    TrodTest.CYSTITE: frozenset(
        {
            Exclusion.PREGNANCY,
            Exclusion.IMMUNODEPRESSION,
            Exclusion.ONGOING_ANTIBIOTIC,
            Exclusion.LUMBAR_PAIN,
            Exclusion.URINARY_ABNORMALITY,
            Exclusion.URINARY_CATHETER,
            Exclusion.SEVERE_RENAL_FAILURE,
        }
    ),
}


class Allergy(StrEnum):
    NONE = "aucune"
    PENICILLIN = "penicillines"  # allergy to penicillins, cephalosporins tolerated
    BETALACTAMS = "betalactamines"  # contraindication to every beta-lactam


@dataclass(frozen=True)
class Regimen:
    """One antibiotic course of the protocol: a fixed adult dose, or mg/kg/day for a child."""

    code: str
    test: TrodTest
    molecule: str  # lower-case, unaccented: matched against the product's substance
    label: str  # French
    intakes_per_day: int
    days: int
    adult_mg: int  # per intake
    child_mg_per_kg_day: int | None = None  # None: adults only
    child_max_mg_day: int | None = None
    allergies: frozenset[Allergy] = frozenset({Allergy.NONE})
    first_line: bool = True

    def dose_mg(self, age: int, weight_kg: Decimal | None) -> Decimal:
        """Dose per intake in mg; a child's needs the weight (ValueError without it)."""
        if age >= ADULT_AGE or self.child_mg_per_kg_day is None:
            return Decimal(self.adult_mg)
        if weight_kg is None or weight_kg <= 0:
            raise ValueError("weight needed for a child's dose")
        per_day = Decimal(self.child_mg_per_kg_day) * weight_kg
        if self.child_max_mg_day is not None:
            per_day = min(per_day, Decimal(self.child_max_mg_day))
        return min(per_day / self.intakes_per_day, Decimal(self.adult_mg))

    def units_per_intake(self, dose_mg: Decimal, unit_mg: Decimal) -> Decimal:
        """Dosage units per intake, rounded up to the half unit (scored tablets)."""
        halves = (dose_mg * 2 / unit_mg).to_integral_value(rounding=ROUND_CEILING)
        return halves / 2

    def total_units(self, dose_mg: Decimal, unit_mg: Decimal) -> int:
        return math.ceil(self.units_per_intake(dose_mg, unit_mg) * self.intakes_per_day * self.days)


_PEN = frozenset({Allergy.PENICILLIN})
_BL = frozenset({Allergy.BETALACTAMS})
REGIMENS: dict[str, Regimen] = {
    r.code: r
    for r in (
        Regimen(
            "amoxicilline",
            TrodTest.ANGINE,
            "amoxicilline",
            "Amoxicilline 1 g matin et soir pendant 6 jours (enfant : 50 mg/kg/j en 2 prises, "
            "2 g/j au plus)",
            2,
            6,
            1000,
            50,
            2000,
        ),
        Regimen(
            "cefpodoxime",
            TrodTest.ANGINE,
            "cefpodoxime",
            "Cefpodoxime 100 mg matin et soir pendant 5 jours (enfant : 8 mg/kg/j en 2 prises)",
            2,
            5,
            100,
            8,
            200,
            _PEN,
            False,
        ),
        Regimen(
            "cefuroxime",
            TrodTest.ANGINE,
            "cefuroxime",
            "Céfuroxime-axétil 250 mg matin et soir pendant 4 jours (adulte)",
            2,
            4,
            250,
            None,
            None,
            _PEN,
            False,
        ),
        Regimen(
            "azithromycine",
            TrodTest.ANGINE,
            "azithromycine",
            "Azithromycine 500 mg une fois par jour pendant 3 jours (enfant : 20 mg/kg/j)",
            1,
            3,
            500,
            20,
            500,
            _BL,
            False,
        ),
        Regimen(
            "clarithromycine",
            TrodTest.ANGINE,
            "clarithromycine",
            "Clarithromycine 250 mg matin et soir pendant 5 jours (enfant : 15 mg/kg/j en 2 "
            "prises)",
            2,
            5,
            250,
            15,
            500,
            _BL,
            False,
        ),
        Regimen(
            "fosfomycine",
            TrodTest.CYSTITE,
            "fosfomycine",
            "Fosfomycine-trométamol 3 g en prise unique",
            1,
            1,
            3000,
            allergies=frozenset(Allergy),
        ),
        Regimen(
            "pivmecillinam",
            TrodTest.CYSTITE,
            "pivmecillinam",
            "Pivmécillinam 400 mg matin et soir pendant 3 jours (2e intention)",
            2,
            3,
            400,
            allergies=frozenset({Allergy.NONE}),
            first_line=False,
        ),
    )
}


@dataclass(frozen=True)
class MacIsaac:
    """The Mac Isaac score's clinical signs (temperature is given separately)."""

    no_cough: bool = False
    tender_nodes: bool = False  # adénopathies cervicales sensibles
    tonsil_swelling: bool = False  # augmentation de volume ou exsudat amygdalien


def mac_isaac_score(age: int, temperature_c: Decimal | None, signs: MacIsaac) -> int:
    """Fever > 38 °C, no cough, tender nodes, tonsils: 1 point each; age 3-14 +1, 45 and over -1."""
    score = sum(
        (
            temperature_c is not None and temperature_c > MAC_ISAAC_FEVER,
            signs.no_cough,
            signs.tender_nodes,
            signs.tonsil_swelling,
        )
    )
    if 3 <= age <= 14:
        score += 1
    elif age >= 45:
        score -= 1
    return score


@dataclass(frozen=True)
class ProtocolInput:
    test: TrodTest
    age_min: int  # youngest possible age on the day (lunar birth dates give a range)
    age_max: int
    sex: str | None  # "F", "M" or None (unknown)
    temperature_c: Decimal | None = None
    mac_isaac: MacIsaac = MacIsaac()
    exclusions: frozenset[Exclusion] = frozenset()
    previous_episodes_12_months: int = 0  # cystite
    allergy: Allergy = Allergy.NONE
    weight_kg: Decimal | None = None


@dataclass(frozen=True)
class Criterion:
    code: str
    message: str  # French


@dataclass(frozen=True)
class ProtocolDecision:
    """Whether the patient is within the protocol's criteria (before the test result)."""

    within: bool
    refusals: tuple[Criterion, ...]
    score: int | None  # Mac Isaac score when it applies
    regimens: tuple[Regimen, ...]  # the choices when within the criteria


def protocol_applies(test: TrodTest) -> bool:
    return test in (TrodTest.ANGINE, TrodTest.CYSTITE)


def assess_protocol(data: ProtocolInput) -> ProtocolDecision:
    if not protocol_applies(data.test):
        return ProtocolDecision(
            False,
            (
                Criterion(
                    "no-protocol",
                    "Aucun protocole de délivrance sans ordonnance pour ce test.",
                ),
            ),
            None,
            (),
        )
    refusals: list[Criterion] = []
    score: int | None = None
    if data.test is TrodTest.ANGINE:
        score = _angine(data, refusals)
    else:
        _cystite(data, refusals)
    for exclusion in sorted(data.exclusions & EXCLUSIONS[data.test]):
        refusals.append(
            Criterion(
                f"exclusion:{exclusion.value}",
                f"Critère d'exclusion : {EXCLUSION_LABELS[exclusion]}.",
            )
        )
    regimens = _regimens(data, refusals) if not refusals else ()
    return ProtocolDecision(not refusals, tuple(refusals), score, regimens)


def _angine(data: ProtocolInput, refusals: list[Criterion]) -> int | None:
    if data.age_min < ANGINE_MIN_AGE:
        refusals.append(
            Criterion("too-young", f"Angine : protocole à partir de {ANGINE_MIN_AGE} ans.")
        )
    if data.temperature_c is not None and data.temperature_c > ANGINE_MAX_TEMPERATURE:
        refusals.append(Criterion("fever", "Fièvre supérieure à 39,5 °C."))
    if data.age_max < MAC_ISAAC_FROM_AGE:
        return None
    score = mac_isaac_score(data.age_min, data.temperature_c, data.mac_isaac)
    if score < MAC_ISAAC_MIN_SCORE:
        refusals.append(
            Criterion(
                "mac-isaac",
                f"Score de Mac Isaac {score} : inférieur à {MAC_ISAAC_MIN_SCORE}, test "
                "non indiqué (origine virale probable).",
            )
        )
    return score


def _cystite(data: ProtocolInput, refusals: list[Criterion]) -> None:
    if data.sex != "F":
        refusals.append(Criterion("not-a-woman", "Cystite : protocole réservé aux femmes."))
    if data.age_min < CYSTITE_MIN_AGE or data.age_max > CYSTITE_MAX_AGE:
        refusals.append(
            Criterion(
                "age",
                f"Cystite : protocole pour les femmes de "
                f"{CYSTITE_MIN_AGE} à {CYSTITE_MAX_AGE} ans.",
            )
        )
    if data.temperature_c is not None and data.temperature_c > CYSTITE_MAX_TEMPERATURE:
        refusals.append(Criterion("fever", "Fièvre : cystite à risque de complication."))
    if data.previous_episodes_12_months > CYSTITE_MAX_PREVIOUS_EPISODES:
        refusals.append(
            Criterion(
                "recurrent",
                "Cystite récidivante (au moins 4 épisodes en 12 mois).",
            )
        )


def _regimens(data: ProtocolInput, refusals: list[Criterion]) -> tuple[Regimen, ...]:
    chosen = []
    for regimen in REGIMENS.values():
        if regimen.test is not data.test or data.allergy not in regimen.allergies:
            continue
        if (
            data.age_min < ADULT_AGE
            and regimen.child_mg_per_kg_day is None
            and regimen.test is TrodTest.ANGINE
        ):
            continue
        chosen.append(regimen)
    if not chosen:
        refusals.append(
            Criterion(
                "no-regimen",
                "Aucun antibiotique du protocole ne convient "
                "(allergies) : orienter vers le médecin.",
            )
        )
    return tuple(chosen)


def positive(test: TrodTest, readings: dict[str, Reading]) -> bool:
    """Angine: streptocoque A positive. Cystite: leucocytes or nitrites positive. Others: any."""
    return any(readings.get(analyte) is Reading.POSITIVE for analyte in ANALYTES[test])


def conclusive(readings: dict[str, Reading]) -> bool:
    return all(r in (Reading.POSITIVE, Reading.NEGATIVE) for r in readings.values())
