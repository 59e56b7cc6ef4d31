"""The structured posology reader on every example of the French ePrescription IG (HAS cases).

The examples are external material (the example Bundles of the ePrescription FHIR IG), found through
``LGO_POSOLOGY_EXAMPLES_DIR`` (``./dev test`` sets it when the conformance folder exists). Each expected row was worked
out by hand from the example's dosageInstruction (and checked against its rendered text):
units per day of a unit of presentation, treatment days, as-needed flag, the prescriber's daily
maximum, and why no figure is given where the structure does not define one.
"""

from __future__ import annotations

import json
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from lgo.domain import posology as p
from lgo.domain.posology import (
    Posology,
    PosologyFormatError,
    display_decimal,
    parse_dosages,
    read_posology,
    with_stated_duration,
)

EXAMPLES = Path(os.environ.get("LGO_POSOLOGY_EXAMPLES_DIR", "/nonexistent"))
needs_examples = pytest.mark.skipif(
    not EXAMPLES.is_dir(),
    reason="HAS posology examples absent: set LGO_POSOLOGY_EXAMPLES_DIR to the IG's example "
    "Bundles folder (./dev test does it when the conformance folder exists)",
)
MG = p._uncountable("mg")
G = p._uncountable("g")
APPL = p._uncountable("Application")

# file (without "Bundle-" and ".json") → one row per MedicationRequest, in bundle order:
# (units/day shown, duration days, as needed, max units/day shown, reason)
N = None
EXPECTED: dict[str, list[tuple[str | None, int | None, bool, str | None, str | None]]] = {
    # "40 mg le soir": a dose in mg is not a count of tablets without the strength.
    "HAS-01-Presc-Pantoprazole-DC": [(N, N, False, N, MG)],
    "HAS-01-Presc-Pantoprazole-MV": [(N, N, False, N, MG)],
    # 0,5 comprimé 1 fois par jour; no bounds.
    "HAS-02-Presc-Fluindione": [("0.5", N, False, N, p.NO_DURATION)],
    # 12 000 UI anti-Xa (170 UI/kg): a dose by weight.
    "HAS-03-Presc-INNOHEP": [(N, N, False, N, p.PER_WEIGHT)],
    # 2 gélules toutes les 6 h si douleurs, 10 jours: as needed, at most 2 × 4 = 8 per day.
    "HAS-04a-Presc-Paracetamol": [(N, 10, True, "8", p.AS_NEEDED)],
    # 1 à 2 cp toutes les 12 h, 10 jours, max 4 par jour: a range.
    "HAS-04b-Presc-DAFALGANCODEINE": [(N, 10, False, "4", p.DOSE_RANGE)],
    "HAS-05a-Presc-Fluindione": [("0.75", N, False, N, p.NO_DURATION)],
    # dix milligrammes par jour pendant sept jours.
    "HAS-05b-Presc-ACTISKENAN": [(N, 7, False, N, MG)],
    # 2 comprimés une fois par semaine (mardi) = 2/7 per day.
    "HAS-06-1-Presc-Methotrexate": [("0.286", N, False, N, p.NO_DURATION)],
    "HAS-06-2-Presc-Methotrexate": [(N, N, False, N, MG)],
    # si douleur, no timing, max 4000 mg/24 h (mg: no unit figure).
    "HAS-07-Presc-Paracetamol": [(N, N, True, N, p.AS_NEEDED)],
    # 1 à 2 applications par jour: an application is not a dispensed unit.
    "HAS-08-1-Presc-Betamethasone": [(N, N, False, N, APPL)],
    # 1 dose-graduation of 7 kg every 6 h: by weight.
    "HAS-08-2-Presc-Paracetamol": [(N, N, False, N, p.PER_WEIGHT)],
    # 1 comprimé at 7 h, 12 h, 18 h.
    "HAS-09-Presc-Ropinirole": [("3", N, False, N, p.NO_DURATION)],
    "HAS-10-Presc-Methotrexate": [("0.143", N, False, N, p.NO_DURATION)],
    # 1 ampoule per month (30-day month).
    "HAS-11-1-Presc-VitamineD": [("0.033", N, False, N, p.NO_DURATION)],
    # 3 patches per month for 6 months: 0.1 per day, 180 days (18 patches, as the 6 cycles).
    "HAS-11-2-Presc-EVRA": [("0.1", 180, False, N, N)],
    "HAS-12-1-Presc-BEPANTHEN": [(N, N, False, N, APPL)],
    "HAS-12-2-Presc-Methotrexate": [(N, N, False, N, MG)],
    # 1 seringue toutes les 12 heures.
    "HAS-12-3-Presc-Enoxaparine": [("2", N, False, N, p.NO_DURATION)],
    # 1 comprimé 1 à 2 fois par jour: variable, at most 2.
    "HAS-13-Presc-Desloratadine": [(N, N, False, "2", p.VARIABLE_FREQUENCY)],
    # 1 cp si douleur, max 2/prise, 8/jour.
    "HAS-14-1-Presc-CODOLIPRANE": [(N, N, True, "8", p.AS_NEEDED)],
    "HAS-14-2-Presc-Betamethasone": [(N, N, False, N, APPL)],
    # une gélule le soir (20 h + EVE: the same intake) pendant huit jours.
    "HAS-15-Presc-Morphine": [("1", 8, False, N, N)],
    # 1 gélule 3 fois par jour, at most 21 intakes: 7 days.
    "HAS-16-Presc-Racecadotril": [("3", 7, False, N, N)],
    # 1 mg four times a day from a date (start only: no duration).
    "HAS-17-Presc-Budesonide": [(N, N, False, N, MG)],
    "HAS-18-Presc-Budesonide-MV": [(N, N, False, N, MG)],
    # 1 comprimé 3 fois par jour, at most 1 every 4 h (6 per day).
    "HAS-19-Presc-Paracetamol": [("3", N, False, "6", p.NO_DURATION)],
    "HAS-20-Presc-Hydrocortisone": [(N, N, False, N, MG)],
    # tapering in mg, first phase "until 3 negative strips": no figure, no duration.
    "HAS-21-Presc-Prednisolone": [(N, N, False, N, MG)],
    "HAS-22-Presc-Prednisolone": [(N, N, False, N, MG)],
    # 0,5 cp day 1 and 0,75 cp day 2 of a 2-day cycle, a month: (0.5 + 0.75) / 2 = 0.625.
    "HAS-23-1-Presc-Fluindione": [("0.625", 30, False, N, N)],
    # 1 cp Monday to Friday, a month: 5/7 per day.
    "HAS-23-2-Presc-Amiodarone": [("0.714", 30, False, N, N)],
    "HAS-24-1-presc-Doxycyline": [("1", N, False, N, p.NO_DURATION)],
    # "Si difficulté à prendre la gélule…" is an administration hint on a single dosage.
    "HAS-24-1-presc-Topiramate": [("1", N, False, N, p.NO_DURATION)],
    # 6, 8 or 10 U before each meal depending on glycaemia: alternatives, not a sum.
    "HAS-25-NOVORAPID": [(N, N, False, N, p.ALTERNATIVES)],
    # 1 cp toutes les 6 heures si agitation: as needed, at most 4.
    "HAS-26-Diazepam": [(N, N, True, "4", p.AS_NEEDED)],
    "HAS-27-1-presc-GLUCOPHAGE": [("2", N, False, N, p.NO_DURATION)],
    "HAS-27-2-presc-Rifampicine": [("2", N, False, N, p.NO_DURATION)],
    # 1 syringe a day from before surgery, then 10 days: same rate, first phase open-ended.
    "HAS-28-Presc-LOVENOX": [("1", N, False, N, p.NO_DURATION)],
    "HAS-29-Presc-LOVENOX": [("1", N, False, N, p.NO_DURATION)],
    # 1+1 cp, 2+2 if fever, 2+2+2 above 40 °C, max 6/day, 6 months: alternatives.
    "HAS-30-1-Presc-Hydrocortisone": [(N, 180, False, "6", p.ALTERNATIVES)],
    # 1 à 4 comprimés par jour: a range without timing.
    "HAS-30-2-Presc-Cetirizine": [(N, N, False, N, p.DOSE_RANGE)],
    # 1 patch every 72 h for two weeks: 14/3 → 5 patches.
    "HAS-31-Presc-DUROGESIC": [("0.333", 14, False, N, N)],
    # The text says 1 week, the structure 2 weeks: the reader reads the structure; the text is
    # shown verbatim next to it for the pharmacist.
    "HAS-32-1-Presc-LOVENOX": [("1", 14, False, N, N)],
    "HAS-32-2-Presc-ULTIBRO-BREEZ": [("1", 30, False, N, N)],
    "HAS-33-Presc-VERSATIS": [("1", N, False, N, p.NO_DURATION)],
    # 0,5 cp twice a day (period defaults to 1) and 3 cp at breakfast, 2 May 14:49 → 31 May.
    "MultiLine-Presc-METFORMINE-GLICLAZIDE": [("1", 29, False, N, N), ("3", 29, False, N, N)],
    "MultiLine-Presc-METHOTREXATE-LEDERFOLINE": [
        ("0.286", 28, False, N, N),
        ("0.286", 28, False, N, N),
    ],
    "MultiLine-Presc-Sucralfate-Paracetamol": [(N, 29, False, N, G), (N, 29, False, N, MG)],
    # 0.3333333 + 0.666667 tablet: a third and two thirds, one tablet a day, 99 days.
    "Presc-BISOPROLOL-SANDOZ-DosesRationnelles": [("1", 99, False, N, N)],
    "Presc-Betamethasone-ApplCut": [(N, 5, False, N, p._uncountable("Appln"))],
    "Presc-CLARADOL-DoseDiffParHoraire": [("3", 5, False, N, N)],
    "Presc-CLARADOL-SiDouleur-MaxPrise-DelaisMin": [(N, 6, True, "6", p.AS_NEEDED)],
    "Presc-CLARADOL-TL6h-MedCodeableConcept": [("4", 5, False, N, N)],
    "Presc-CLARADOL-TLMardisVendredis": [("0.286", 92, False, N, N)],
    "Presc-CODOLIPRANE-MedCodeableConcept": [("2", 5, False, N, N)],
    # the ordered 1800 mg, not the calculated 1000 mg/m².
    "Presc-Capecitabine-Dose-Calculee": [(N, 14, False, N, MG)],
    "Presc-DIPROSONE-AppCut": [(N, 5, False, N, p._uncountable("application"))],
    "Presc-DOLIPRANE-20DoseParKG": [(N, 5, False, N, p.PER_WEIGHT)],
    "Presc-EFFERALGAN": [("3", 5, False, N, N)],
    "Presc-Fentanyl-patch72h-TL3j": [("0.333", 8, False, N, N)],
    "Presc-MATRIFEN-patch-TL72h": [("0.333", 8, False, N, N)],
    "Presc-MV-PerfGl-NaCl-KCl": [(N, 5, False, N, p._uncountable("ml"))],
    "Presc-Methylpredinosolone-DosesEvolutives": [(N, 6, False, N, MG)],
    "Presc-MiniperfCefotaxime-En20min-Pdt3j": [(N, 3, False, N, G)],
    "Presc-MiniperfCefotaxime-En20min-Pdt4j": [(N, 4, False, N, G)],
    "Presc-NICORETTESKIN-patch": [("1", 14, False, N, N)],
    "Presc-Nicotine-15mgPar16h": [(N, 14, False, N, MG)],
    "Presc-Paracetamol-DoseEvolutive": [(N, 5, False, N, G)],
    "Presc-Paracetamol-SiDouleur-MaxPrise-DelaisMin": [(N, 5, True, N, MG)],
    "Presc-Paracetamol-TL6h": [(N, 5, False, N, MG)],
    "Presc-Paracetamol": [(N, 5, False, N, G)],
    # 16:22 → 16:23:59 five days later: five days (to the nearest hour).
    "Presc-ParacetamolCodeine-500mg30mg": [("2", 5, False, N, N)],
    "Presc-PerfDobutamine-Qsp40mL": [(N, 1, False, N, p._uncountable("µg"))],
    # 1 bag every 12 h (a rate): 2 bags a day.
    "Presc-PerfGl-NaCl-KCl-1l": [("2", 5, False, N, N)],
    "Presc-PerfGl-NaCl-KCl-500ml": [("2", 5, False, N, N)],
    "Presc-SolPrPerf-BIONOLYTE-G5-500mL-Sur12h": [("2", 5, False, N, N)],
    "TradPN13FHIR-MultiLine-Presc-Alt-METFORMINE-GLICLAZIDE": [
        ("1", 29, False, N, N),
        ("3", 29, False, N, N),
    ],
    # 28 Dec 07:00 → 30 Dec 18:00 (59 h): three days, as the text "x 3j".
    "TradPN13FHIR-Presc-DOLIPRANE-Interpret": [("3", 3, False, N, N)],
    # the same with a local frequency code instead of a repeat rhythm.
    "TradPN13FHIR-Presc-DOLIPRANE": [(N, 3, False, N, p.CODED_TIMING)],
    "TradPN13FHIR-Presc-Morphine-PCA": [(N, 4, True, N, MG)],
    "TradPN13FHIR-Presc-Paracetamol-SiDouleur": [(N, 3, True, N, MG)],
    "TradPN13FHIR-Presc-Paracetamol": [(N, 3, True, N, MG)],
    # 1 bag every 12 h from a start date, no end.
    "TradPN13FHIR-Presc-perfusion-6-composants": [("2", N, False, N, p.NO_DURATION)],
}


def _requests(path: Path) -> list[dict[str, Any]]:
    bundle = json.loads(path.read_text(encoding="utf-8"))
    resources = [entry["resource"] for entry in bundle.get("entry", ())]
    return [r for r in resources if r["resourceType"] == "MedicationRequest"]


def _row(reading: Posology) -> tuple[str | None, int | None, bool, str | None, str | None]:
    return (
        display_decimal(reading.units_per_day),
        reading.duration_days,
        reading.as_needed,
        display_decimal(reading.max_units_per_day),
        reading.reason,
    )


@needs_examples
def test_every_example_has_an_expected_reading() -> None:
    names = sorted(
        f.name.removeprefix("Bundle-").removesuffix(".json") for f in EXAMPLES.glob("*.json")
    )
    assert names == sorted(EXPECTED)


@needs_examples
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_reader_on_the_has_example(name: str) -> None:
    requests = _requests(EXAMPLES / f"Bundle-{name}.json")
    readings = [read_posology(parse_dosages(r.get("dosageInstruction"))) for r in requests]
    assert [_row(r) for r in readings] == EXPECTED[name]
    for reading in readings:
        # No figure, no proposal: every unread line asks the pharmacist, with a reason.
        assert reading.needs_pharmacist_input == (reading.reason is not None)


# ---------------------------------------------------------------- without the examples


def _one(**dosage: Any) -> Posology:
    return read_posology(parse_dosages([dosage]))


TABLET = {"value": 1, "unit": "comprimé", "system": p.EDQM_SYSTEM, "code": "15054000"}


def test_text_only_gives_no_figure_and_says_so() -> None:
    reading = read_posology(parse_dosages([{"text": "1 comprimé 3 fois par jour"}]))
    assert (reading.units_per_day, reading.reason) == (None, p.TEXT_ONLY)
    assert read_posology(()).reason == p.TEXT_ONLY
    assert read_posology(()).needs_pharmacist_input


def test_three_tablets_a_day_for_five_days() -> None:
    reading = _one(
        timing={
            "repeat": {
                "frequency": 3,
                "period": 1,
                "periodUnit": "d",
                "boundsDuration": {"value": 5, "unit": "j", "code": "d"},
            }
        },
        doseAndRate=[{"doseQuantity": TABLET}],
    )
    assert (reading.units_per_day, reading.duration_days, reading.reason) == (Decimal(3), 5, None)
    assert not reading.needs_pharmacist_input


def test_stated_duration_fills_an_unbounded_dosage_but_never_overrides_bounds() -> None:
    daily = _one(timing={"repeat": {"when": ["EVE"]}}, doseAndRate=[{"doseQuantity": TABLET}])
    filled = with_stated_duration(daily, 30)
    assert (filled.duration_days, filled.reason, filled.needs_pharmacist_input) == (30, None, False)
    bounded = _one(
        timing={"repeat": {"when": ["EVE"], "boundsDuration": {"value": 8, "code": "d"}}},
        doseAndRate=[{"doseQuantity": TABLET}],
    )
    assert with_stated_duration(bounded, 30).duration_days == 8
    as_needed = with_stated_duration(_one(asNeededBoolean=True), 10)
    assert (as_needed.duration_days, as_needed.reason) == (10, p.AS_NEEDED)


def test_successive_phases_average_over_their_durations() -> None:
    def phase(seq: int, tablets: int, days: int) -> dict[str, Any]:
        return {
            "sequence": seq,
            "timing": {
                "repeat": {
                    "frequency": 1,
                    "period": 1,
                    "periodUnit": "d",
                    "boundsDuration": {"value": days, "code": "d"},
                }
            },
            "doseAndRate": [{"doseQuantity": {**TABLET, "value": tablets}}],
        }

    reading = read_posology(parse_dosages([phase(1, 3, 4), phase(2, 1, 6)]))
    # 3 × 4 + 1 × 6 = 18 tablets over 10 days
    assert (reading.units_per_day, reading.duration_days) == (Decimal("1.8"), 10)
    open_phase = phase(1, 3, 4)
    del open_phase["timing"]["repeat"]["boundsDuration"]
    steps = read_posology(parse_dosages([open_phase, phase(2, 1, 6)]))
    assert (steps.units_per_day, steps.reason) == (None, p.STEPS)


@pytest.mark.parametrize(
    "bad",
    [
        {"timing": "daily"},
        {"timing": {"repeat": {"frequency": "3"}}},
        {"sequence": -1},
        {"doseAndRate": [{"doseQuantity": {"value": "trois"}}]},
        {"asNeededBoolean": "yes"},
        {"timing": {"repeat": {"boundsPeriod": {"start": "2026-02-01T08:00:00", "end": "demain"}}}},
    ],
)
def test_malformed_dosage_is_a_typed_error(bad: dict[str, Any]) -> None:
    with pytest.raises(PosologyFormatError):
        read_posology(parse_dosages([bad]))
    with pytest.raises(PosologyFormatError):
        parse_dosages({"not": "a list"})


def test_a_zero_period_is_malformed_and_a_zero_dose_gives_no_figure() -> None:
    with pytest.raises(PosologyFormatError):
        parse_dosages([{"timing": {"repeat": {"frequency": 1, "period": 0, "periodUnit": "h"}}}])
    zero = _one(
        timing={"repeat": {"when": ["EVE"]}}, doseAndRate=[{"doseQuantity": {**TABLET, "value": 0}}]
    )
    assert (zero.units_per_day, zero.reason) == (None, p.NO_DOSE)
