"""Structured posology: a FHIR R4 ``Dosage`` list read into units per day and a duration (pure).

The French ePrescription modelling (HAS cases): ``timing.repeat`` (frequency/period/periodUnit,
frequencyMax/periodMax, when, timeOfDay, dayOfWeek, boundsDuration/boundsPeriod, count/countMax),
``doseAndRate`` (doseQuantity, doseRange, rateRatio), ``asNeededBoolean``/``asNeededCodeableConcept``
with ``maxDosePerPeriod``, ``sequence`` for successive phases (same sequence = concurrent).

The reader gives a figure only where the structure defines it; otherwise ``units_per_day`` is None
and ``reason`` says in French what the pharmacist has to decide. It never reads the free text: the
prescriber's text is always shown verbatim next to the figures, never computed.

"Units" are units of presentation (comprimé, gélule, seringue, dispositif…: EDQM codes 15xxxxxx):
a dose in mg, ml, UI, applications or per kg is not a count of units without the product's strength
or a weighing, so it gives no figure. Calendar conversions: a week is 7 days, a month 30 (the
30-day month of the delivery caps), a year 365.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any

EDQM_SYSTEM = "http://standardterms.edqm.eu"
UNIT_OF_PRESENTATION_PREFIX = "15"  # EDQM "unit of presentation" codes: 15054000 comprimé…
ORDERED = "ordered"  # doseAndRate.type when a calculated and an ordered dose are both given

DAYS_PER_UNIT: dict[str, Fraction] = {
    "s": Fraction(1, 86400),
    "min": Fraction(1, 1440),
    "h": Fraction(1, 24),
    "d": Fraction(1),
    "wk": Fraction(7),
    "mo": Fraction(30),
    "a": Fraction(365),
}
# Events that happen once a day (FHIR EventTiming); C/AC/PC ("at/before/after meals") do not say
# how many meals, so they give no count on their own.
DAILY_EVENTS = frozenset(
    {
        "MORN",
        "MORN.early",
        "MORN.late",
        "NOON",
        "AFT",
        "AFT.early",
        "AFT.late",
        "EVE",
        "EVE.early",
        "EVE.late",
        "NIGHT",
        "PHS",
        "HS",
        "WAKE",
        "CM",
        "CD",
        "CV",
        "ACM",
        "ACD",
        "ACV",
        "PCM",
        "PCD",
        "PCV",
    }
)
MEAL_EVENTS = frozenset({"C", "AC", "PC"})
CONDITION_STARTS = ("si ", "en cas", "selon", "en fonction")

TEXT_ONLY = "Posologie en texte libre : indiquer la quantité par jour."
AS_NEEDED = "Prise si besoin : la quantité par jour est à fixer par le pharmacien."
VARIABLE_FREQUENCY = (
    "Nombre de prises variable : la quantité par jour est à fixer par le pharmacien."
)
DOSE_RANGE = "Dose variable (fourchette) : la quantité par jour est à fixer par le pharmacien."
PER_WEIGHT = (
    "Dose au poids ou à la surface corporelle : la quantité est à calculer par le pharmacien."
)
NO_TIMING = "Rythme des prises non structuré : la quantité par jour est à fixer par le pharmacien."
CODED_TIMING = (
    "Rythme des prises codé hors norme : la quantité par jour est à fixer par le pharmacien."
)
MEALS = (
    "Prises aux repas sans nombre de repas : la quantité par jour est à fixer par le pharmacien."
)
TIMES_CONFLICT = (
    "Horaires et moments de prise différents : la quantité par jour est à fixer par le pharmacien."
)
NO_DOSE = "Dose non structurée : la quantité par jour est à fixer par le pharmacien."
ALTERNATIVES = (
    "Doses différentes selon une condition : la quantité par jour est à fixer par le pharmacien."
)
MIXED_UNITS = (
    "Unités différentes selon les prises : la quantité par jour est à fixer par le pharmacien."
)
STEPS = "Paliers de doses sans durée pour chacun : la quantité est à fixer par le pharmacien."
NO_DURATION = "Durée de traitement non précisée : le pharmacien la fixe."


UNREADABLE = "Posologie structurée illisible : la quantité par jour est à fixer par le pharmacien."


def _uncountable(unit: str) -> str:
    return f"Dose exprimée en « {unit} » : le nombre d'unités à délivrer est à fixer par le pharmacien."


class PosologyFormatError(ValueError):
    """A dosage that is not a FHIR R4 Dosage (wrong types); the message names the field."""


# ---------------------------------------------------------------- typed Dosage (input)


@dataclass(frozen=True)
class Quantity:
    value: Fraction
    unit: str = ""
    system: str = ""
    code: str = ""

    @property
    def countable(self) -> bool:
        """A unit of presentation (comprimé, gélule…), i.e. something the pharmacist counts."""
        return self.system == EDQM_SYSTEM and self.code.startswith(UNIT_OF_PRESENTATION_PREFIX)

    @property
    def per_weight(self) -> bool:
        label = f"{self.unit} {self.code}".lower()
        return "kg" in label or "m2" in label or "m²" in label

    @property
    def days(self) -> Fraction | None:
        """A time quantity in days (UCUM code, else the unit text), None when not a time."""
        factor = DAYS_PER_UNIT.get(self.code) or DAYS_PER_UNIT.get(_time_unit(self.unit))
        return self.value * factor if factor is not None else None

    def same_unit(self, other: Quantity) -> bool:
        return (self.system, self.code or self.unit.lower()) == (
            other.system,
            other.code or other.unit.lower(),
        )


@dataclass(frozen=True)
class Repeat:
    frequency: int | None = None
    frequency_max: int | None = None
    period: Fraction | None = None
    period_max: Fraction | None = None
    period_unit: str | None = None
    when: tuple[str, ...] = ()
    time_of_day: tuple[str, ...] = ()
    day_of_week: tuple[str, ...] = ()
    bounds_duration: Quantity | None = None
    bounds_start: str | None = None
    bounds_end: str | None = None
    count: int | None = None
    count_max: int | None = None


@dataclass(frozen=True)
class Dosage:
    sequence: int | None = None
    text: str = ""
    instructions: tuple[str, ...] = ()
    repeat: Repeat | None = None
    timing_coded: bool = False  # timing.code without a structured repeat rhythm
    as_needed: bool = False
    dose: Quantity | None = None
    dose_low: Quantity | None = None
    dose_high: Quantity | None = None
    rate: tuple[Quantity, Quantity] | None = None  # rateRatio numerator / denominator
    max_per_period: tuple[Quantity, Quantity] | None = None

    @property
    def structured(self) -> bool:
        """Anything beyond the text: a rhythm, a dose, a rate, an as-needed flag or a maximum."""
        return any(
            (
                self.repeat,
                self.timing_coded,
                self.as_needed,
                self.dose,
                self.dose_low,
                self.dose_high,
                self.rate,
                self.max_per_period,
            )
        )

    @property
    def conditional(self) -> bool:
        """An instruction that makes this dose depend on a condition ("si…", "en cas de…")."""
        return any(i.strip().lower().startswith(CONDITION_STARTS) for i in self.instructions)


# ---------------------------------------------------------------- parsing (JSON → typed)


def _time_unit(text: str) -> str:
    words = {
        "jour": "d",
        "jours": "d",
        "semaine": "wk",
        "semaines": "wk",
        "mois": "mo",
        "an": "a",
        "ans": "a",
        "heure": "h",
        "heures": "h",
        "minute": "min",
    }
    return words.get(text.strip().lower(), text.strip())


def _obj(value: Any, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise PosologyFormatError(f"{where}: objet attendu")
    return value


def _text(value: Any, where: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise PosologyFormatError(f"{where}: texte attendu")
    return value


def _int(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise PosologyFormatError(f"{where}: entier positif attendu")
    return value


def _number(value: Any, where: str) -> Fraction:
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        raise PosologyFormatError(f"{where}: nombre attendu")
    try:
        exact = Fraction(str(value))
    except ValueError:
        raise PosologyFormatError(f"{where}: nombre attendu") from None
    if exact < 0:
        raise PosologyFormatError(f"{where}: nombre positif attendu")
    # Doses written as 0.3333333 or 0.666667 mean a third and two thirds of a tablet.
    simple = exact.limit_denominator(12)
    return simple if abs(simple - exact) <= Fraction(1, 10_000) else exact


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PosologyFormatError(f"{where}: liste de textes attendue")
    return tuple(value)


def _quantity(value: Any, where: str) -> Quantity | None:
    data = _obj(value, where)
    if not data:
        return None
    if "value" not in data:
        return None
    return Quantity(
        _number(data["value"], f"{where}.value"),
        _text(data.get("unit"), f"{where}.unit"),
        _text(data.get("system"), f"{where}.system"),
        _text(data.get("code"), f"{where}.code"),
    )


def _ratio(value: Any, where: str) -> tuple[Quantity, Quantity] | None:
    data = _obj(value, where)
    numerator = _quantity(data.get("numerator"), f"{where}.numerator")
    denominator = _quantity(data.get("denominator"), f"{where}.denominator")
    if numerator is None or denominator is None:
        return None
    return numerator, denominator


def _repeat(value: Any) -> Repeat | None:
    data = _obj(value, "timing.repeat")
    if not data:
        return None
    bounds = _obj(data.get("boundsPeriod"), "timing.repeat.boundsPeriod")
    period = data.get("period")
    period_max = data.get("periodMax")
    for name, value in (("period", period), ("periodMax", period_max)):
        if value is not None and _number(value, name) == 0:
            raise PosologyFormatError(f"{name}: durée nulle")
    return Repeat(
        frequency=_int(data.get("frequency"), "frequency"),
        frequency_max=_int(data.get("frequencyMax"), "frequencyMax"),
        period=_number(period, "period") if period is not None else None,
        period_max=_number(period_max, "periodMax") if period_max is not None else None,
        period_unit=_text(data.get("periodUnit"), "periodUnit") or None,
        when=_strings(data.get("when"), "when"),
        time_of_day=_strings(data.get("timeOfDay"), "timeOfDay"),
        day_of_week=_strings(data.get("dayOfWeek"), "dayOfWeek"),
        bounds_duration=_quantity(data.get("boundsDuration"), "boundsDuration"),
        bounds_start=_text(bounds.get("start"), "boundsPeriod.start") or None,
        bounds_end=_text(bounds.get("end"), "boundsPeriod.end") or None,
        count=_int(data.get("count"), "count"),
        count_max=_int(data.get("countMax"), "countMax"),
    )


def _dose_entry(value: Any) -> Mapping[str, Any]:
    """The ordered dose when a calculated one sits next to it, else the first entry."""
    if value is None:
        return {}
    if not isinstance(value, list):
        raise PosologyFormatError("doseAndRate: liste attendue")
    entries = [_obj(v, "doseAndRate[]") for v in value]
    for entry in entries:
        codings = _obj(entry.get("type"), "doseAndRate.type").get("coding") or []
        if any(isinstance(c, Mapping) and c.get("code") == ORDERED for c in codings):
            return entry
    return entries[0] if entries else {}


def _dosage(value: Any, index: int) -> Dosage:
    where = f"dosageInstruction[{index}]"
    data = _obj(value, where)
    timing = _obj(data.get("timing"), f"{where}.timing")
    repeat = _repeat(timing.get("repeat"))
    entry = _dose_entry(data.get("doseAndRate"))
    dose_range = _obj(entry.get("doseRange"), "doseRange")
    instructions = tuple(
        _text(_obj(i, "additionalInstruction[]").get("text"), "additionalInstruction.text")
        for i in data.get("additionalInstruction") or ()
    )
    as_needed_flag = data.get("asNeededBoolean")
    if as_needed_flag is not None and not isinstance(as_needed_flag, bool):
        raise PosologyFormatError(f"{where}.asNeededBoolean: booléen attendu")
    return Dosage(
        sequence=_int(data.get("sequence"), f"{where}.sequence"),
        text=_text(data.get("text"), f"{where}.text"),
        instructions=tuple(i for i in instructions if i),
        repeat=repeat,
        timing_coded=bool(timing.get("code")),
        as_needed=bool(as_needed_flag) or bool(data.get("asNeededCodeableConcept")),
        dose=_quantity(entry.get("doseQuantity"), "doseQuantity"),
        dose_low=_quantity(dose_range.get("low"), "doseRange.low"),
        dose_high=_quantity(dose_range.get("high"), "doseRange.high"),
        rate=_ratio(entry.get("rateRatio"), "rateRatio"),
        max_per_period=_ratio(data.get("maxDosePerPeriod"), f"{where}.maxDosePerPeriod"),
    )


def parse_dosages(data: Any) -> tuple[Dosage, ...]:
    """A FHIR R4 ``dosageInstruction`` JSON array → typed dosages (PosologyFormatError if not)."""
    if data is None:
        return ()
    if not isinstance(data, list):
        raise PosologyFormatError("dosageInstruction: liste attendue")
    return tuple(_dosage(item, i) for i, item in enumerate(data))


# ---------------------------------------------------------------- reading (typed → figures)


@dataclass(frozen=True)
class Posology:
    """What the structure says. ``units_per_day`` None ⇒ the pharmacist gives the figure."""

    units_per_day: Decimal | None = None
    duration_days: int | None = None
    as_needed: bool = False
    max_units_per_day: Decimal | None = None
    reason: str | None = TEXT_ONLY

    @property
    def needs_pharmacist_input(self) -> bool:
        return self.units_per_day is None or self.duration_days is None


@dataclass(frozen=True)
class _Reading:
    per_day: Fraction | None
    days: int | None
    as_needed: bool
    max_per_day: Fraction | None
    unit: Quantity | None  # the counted unit (for comparing phases)
    reason: str | None


def _intakes(dosage: Dosage) -> tuple[Fraction | None, Fraction | None, str | None]:
    """(intakes per day, most intakes per day, reason when not fixed)."""
    repeat = dosage.repeat
    if repeat is None or not _has_rhythm(repeat):
        return None, None, CODED_TIMING if dosage.timing_coded else NO_TIMING
    if repeat.frequency is not None or repeat.period is not None or repeat.frequency_max:
        return _by_frequency(repeat)
    if set(repeat.when) & MEAL_EVENTS:
        return None, None, MEALS
    times, events = len(repeat.time_of_day), len(repeat.when)
    if times and events and times != events:
        return None, None, TIMES_CONFLICT
    per_day = Fraction(times or events or 1)
    if repeat.day_of_week:
        per_day = per_day * len(repeat.day_of_week) / 7
    return per_day, per_day, None


def _has_rhythm(repeat: Repeat) -> bool:
    return any(
        (
            repeat.frequency,
            repeat.frequency_max,
            repeat.period,
            repeat.period_max,
            repeat.when,
            repeat.time_of_day,
            repeat.day_of_week,
        )
    )


def _by_frequency(repeat: Repeat) -> tuple[Fraction | None, Fraction | None, str | None]:
    unit = DAYS_PER_UNIT.get(repeat.period_unit or "")
    if unit is None:
        return None, None, NO_TIMING
    shortest = min(p for p in (repeat.period, repeat.period_max, Fraction(1)) if p is not None)
    if repeat.frequency_max is not None or repeat.period_max is not None:
        most = Fraction(repeat.frequency_max or repeat.frequency or 1) / (shortest * unit)
        return None, most, VARIABLE_FREQUENCY
    per_day = Fraction(repeat.frequency or 1) / ((repeat.period or 1) * unit)
    return per_day, per_day, None


def _dose(dosage: Dosage) -> tuple[Quantity | None, Quantity | None, str | None]:
    """(fixed countable dose, highest countable dose, reason when no fixed countable dose)."""
    if dosage.dose is not None:
        if not dosage.dose.countable:
            return None, None, _dose_reason(dosage, dosage.dose)
        return dosage.dose, dosage.dose, None
    if dosage.dose_low is not None or dosage.dose_high is not None:
        high = dosage.dose_high
        return None, high if high is not None and high.countable else None, DOSE_RANGE
    return None, None, NO_DOSE


def _dose_reason(dosage: Dosage, dose: Quantity) -> str:
    weighed = dose.per_weight or any("/kg" in i.replace(" ", "") for i in dosage.instructions)
    return PER_WEIGHT if weighed else _uncountable(dose.unit or dose.code or "?")


def _rate(dosage: Dosage) -> _Reading | None:
    """A continuous rate (perfusion): countable numerator over a time gives units per day."""
    if dosage.rate is None:
        return None
    numerator, denominator = dosage.rate
    over = denominator.days
    if not numerator.countable or not over:
        reason = PER_WEIGHT if numerator.per_weight else _uncountable(numerator.unit or "?")
        return _Reading(None, _duration(dosage, None), dosage.as_needed, None, None, reason)
    per_day = numerator.value / over
    return _Reading(per_day, _duration(dosage, per_day), dosage.as_needed, None, numerator, None)


def _max_per_day(
    dosage: Dosage, most_intakes: Fraction | None, high: Quantity | None
) -> Fraction | None:
    """The prescriber's ceiling: maxDosePerPeriod, else the most intakes times the highest dose
    of a variable dosage (as needed, frequencyMax, dose range)."""
    if dosage.max_per_period is not None:
        numerator, denominator = dosage.max_per_period
        over = denominator.days
        if numerator.countable and over:
            return numerator.value / over
        return None
    if most_intakes is not None and high is not None:
        return most_intakes * high.value
    return None


def _read_one(dosage: Dosage) -> _Reading:
    rated = _rate(dosage)
    if rated is not None:
        return rated
    intakes, most, timing_reason = _intakes(dosage)
    dose, high, dose_reason = _dose(dosage)
    reason = dose_reason or timing_reason
    if dosage.as_needed and dose_reason in (None, DOSE_RANGE, NO_DOSE):
        reason = AS_NEEDED
    per_day = None if reason or intakes is None or dose is None else intakes * dose.value
    ceiling = _max_per_day(dosage, most if per_day is None else None, high)
    return _Reading(
        per_day, _duration(dosage, intakes), dosage.as_needed, ceiling, dose or high, reason
    )


def _duration(dosage: Dosage, intakes_per_day: Fraction | None) -> int | None:
    repeat = dosage.repeat
    if repeat is None:
        return None
    if repeat.bounds_duration is not None:
        days = repeat.bounds_duration.days
        return math.ceil(days) if days else None
    if repeat.bounds_start and repeat.bounds_end:
        return _period_days(repeat.bounds_start, repeat.bounds_end)
    count = repeat.count or repeat.count_max
    if count and intakes_per_day:
        return math.ceil(count / intakes_per_day)
    return None


def _period_days(start: str, end: str) -> int | None:
    """Days of a boundsPeriod: dates count both ends; date-times count started days, to the
    nearest hour (``08:48`` → ``08:47:59`` five days later is five days)."""
    try:
        if len(start) <= 10 or len(end) <= 10:
            return (date.fromisoformat(end[:10]) - date.fromisoformat(start[:10])).days + 1
        elapsed = datetime.fromisoformat(end) - datetime.fromisoformat(start)
    except (ValueError, TypeError):
        raise PosologyFormatError("boundsPeriod: date invalide") from None
    hours = round(elapsed.total_seconds() / 3600)
    return math.ceil(hours / 24) if hours > 0 else None


def _concurrent(readings: Sequence[_Reading], dosages: Sequence[Dosage]) -> _Reading:
    """Dosages that apply together (same sequence): their units add up."""
    if len(readings) == 1:
        return readings[0]
    as_needed = any(r.as_needed for r in readings)
    days = _same([r.days for r in readings]) or _all_max([r.days for r in readings])
    ceiling = _same([r.max_per_day for r in readings])
    unit = readings[0].unit
    reason = next((r.reason for r in readings if r.reason), None)
    if any(d.conditional for d in dosages):
        reason = ALTERNATIVES  # "si glycémie…", "en cas de fièvre…": alternatives, not a sum
    elif reason is None and not all(_same_unit(r.unit, unit) for r in readings):
        reason = MIXED_UNITS
    per_day = None if reason else sum((r.per_day or Fraction(0) for r in readings), Fraction(0))
    return _Reading(per_day, days, as_needed, ceiling, unit, reason)


def _sequential(phases: Sequence[_Reading]) -> _Reading:
    """Successive phases (sequence 1, 2…): durations add up, units average over the whole."""
    if len(phases) == 1:
        return phases[0]
    days_each = [p.days for p in phases]
    total_days = sum(d for d in days_each if d is not None) if None not in days_each else None
    as_needed = any(p.as_needed for p in phases)
    maxima = [p.max_per_day for p in phases]
    ceiling = max(m for m in maxima if m is not None) if None not in maxima else None
    unit = phases[0].unit
    reason = next((p.reason for p in phases if p.reason), None)
    if reason is None and not all(_same_unit(p.unit, unit) for p in phases):
        reason = MIXED_UNITS
    per_day: Fraction | None = None
    if reason is None:
        rates = {p.per_day for p in phases}
        if len(rates) == 1:
            per_day = rates.pop()
        elif total_days:
            per_day = (
                sum(((p.per_day or Fraction(0)) * (p.days or 0) for p in phases), Fraction(0))
                / total_days
            )
        else:
            reason = STEPS
    return _Reading(per_day, total_days, as_needed, ceiling, unit, reason)


def _same(values: Iterable[Any]) -> Any:
    distinct = set(values)
    return distinct.pop() if len(distinct) == 1 else None


def _all_max(values: Sequence[int | None]) -> int | None:
    known = [v for v in values if v is not None]
    return max(known) if known and len(known) == len(values) else None


def _same_unit(left: Quantity | None, right: Quantity | None) -> bool:
    return left is None or right is None or left.same_unit(right)


def _decimal(value: Fraction | None) -> Decimal | None:
    return None if value is None else Decimal(value.numerator) / Decimal(value.denominator)


def read_posology(dosages: Sequence[Dosage]) -> Posology:
    """Units per day and duration where the structure defines them (see the module doc)."""
    if not any(d.structured for d in dosages):
        return Posology()  # text only: no figure
    groups: dict[int, list[Dosage]] = {}
    for dosage in dosages:
        groups.setdefault(dosage.sequence or 0, []).append(dosage)
    phases = [
        _concurrent([_read_one(d) for d in group], group) for _, group in sorted(groups.items())
    ]
    whole = _sequential(phases)
    if whole.per_day is not None and whole.per_day <= 0:
        whole = replace(whole, per_day=None, reason=NO_DOSE)  # a zero dose is no posology
    reason = whole.reason
    if reason is None and whole.days is None:
        reason = NO_DURATION
    return Posology(
        units_per_day=_decimal(whole.per_day),
        duration_days=whole.days,
        as_needed=whole.as_needed,
        max_units_per_day=_decimal(whole.max_per_day),
        reason=reason,
    )


def with_stated_duration(posology: Posology, stated_days: int | None) -> Posology:
    """The duration the prescription states elsewhere (the line's treatment duration) fills a
    dosage without bounds; the dosage's own bounds win when both exist."""
    if posology.duration_days is not None or stated_days is None:
        return posology
    reason = None if posology.reason == NO_DURATION else posology.reason
    return replace(posology, duration_days=stated_days, reason=reason)


def display_decimal(value: Decimal | None) -> str | None:
    """A figure for the counter: at most three decimals, no trailing zeros (``0.286``, ``2``)."""
    if value is None:
        return None
    shown = value.quantize(Decimal("0.001")).normalize()
    return format(shown, "f")
