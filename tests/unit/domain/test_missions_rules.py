"""Pharmacist vaccination eligibility and the TROD antibiotic protocol, at their boundaries."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from lgo.domain.trod import (
    REGIMENS,
    Allergy,
    Exclusion,
    MacIsaac,
    ProtocolInput,
    Reading,
    TrodTest,
    assess_protocol,
    mac_isaac_score,
    positive,
)
from lgo.domain.vaccination import EligibilityInput, Vaccine, age_range, assess
from lgo.services.vaccinations import VaccineCodeInvalid, vaccine_code

DAY = date(2026, 3, 15)


def _vacc(born: str, vaccine: Vaccine = Vaccine.GRIPPE, **flags: bool) -> EligibilityInput:
    return EligibilityInput(vaccine, born, DAY, **flags)


# ---------------------------------------------------------------- vaccination


def test_eleven_years_old_on_the_day_is_eligible_one_day_before_is_not() -> None:
    assert assess(_vacc("20150315")).eligible  # 11th birthday today
    refused = assess(_vacc("20150316"))  # 11 tomorrow
    assert not refused.eligible
    assert [r.code for r in refused.refusals] == ["too-young"]
    assert "11 ans" in refused.refusals[0].message


def test_lunar_birth_date_counts_the_youngest_possible_age() -> None:
    # Born some day of 2015: may still be 10 on 15 March 2026.
    assert age_range("20150000", DAY) == (10, 11)
    assert not assess(_vacc("20150000")).eligible
    assert assess(_vacc("20140000")).eligible
    assert [r.code for r in assess(_vacc("2015XX01")).refusals] == ["birth-date-unknown"]


def test_hpv_up_to_26_with_a_warning_after_19() -> None:
    assert assess(_vacc("20060316", Vaccine.HPV)).warnings == ()  # 19
    late = assess(_vacc("20060315", Vaccine.HPV))  # 20 today
    assert late.eligible and [w.code for w in late.warnings] == ["catch-up-only"]
    assert assess(_vacc("19990316", Vaccine.HPV)).eligible  # 26
    assert [r.code for r in assess(_vacc("19990315", Vaccine.HPV)).refusals] == ["too-old"]


def test_live_vaccine_excluded_for_immunocompromised_only() -> None:
    assert assess(_vacc("19900101", Vaccine.ROR)).eligible
    refused = assess(_vacc("19900101", Vaccine.ROR, immunocompromised=True))
    assert [r.code for r in refused.refusals] == ["live-vaccine-immunocompromised"]
    # An inactivated vaccine stays possible for an immunocompromised person.
    assert assess(_vacc("19900101", Vaccine.GRIPPE, immunocompromised=True)).eligible


def test_severe_reaction_history_refuses() -> None:
    refused = assess(_vacc("19900101", severe_reaction_history=True))
    assert [r.code for r in refused.refusals] == ["severe-reaction-history"]


# ---------------------------------------------------------------- TROD protocol


def _angine(age: int, temp: str | None = "38.5", **kwargs: object) -> ProtocolInput:
    signs = kwargs.pop("signs", MacIsaac(no_cough=True))
    return ProtocolInput(
        TrodTest.ANGINE, age, age, "M", Decimal(temp) if temp else None, signs, **kwargs
    )  # type: ignore[arg-type]


@pytest.mark.parametrize(("age", "expected"), [(3, 1), (14, 1), (15, 0), (44, 0), (45, -1)])
def test_mac_isaac_age_points(age: int, expected: int) -> None:
    assert mac_isaac_score(age, None, MacIsaac()) == expected


def test_mac_isaac_fever_is_strictly_above_38() -> None:
    assert mac_isaac_score(30, Decimal("38.0"), MacIsaac()) == 0
    assert mac_isaac_score(30, Decimal("38.1"), MacIsaac()) == 1


def test_angine_age_ten_is_in_nine_is_out() -> None:
    assert assess_protocol(_angine(10)).within
    refused = assess_protocol(_angine(9))
    assert [c.code for c in refused.refusals] == ["too-young"]


def test_angine_mac_isaac_two_is_in_one_is_out_from_15() -> None:
    # 30 years: fever + no cough = 2.
    decision = assess_protocol(_angine(30))
    assert decision.within and decision.score == 2
    # 45 years: the same signs give 1.
    refused = assess_protocol(_angine(45))
    assert [c.code for c in refused.refusals] == ["mac-isaac"] and refused.score == 1
    # 14 years: no score required, even without any sign.
    assert assess_protocol(_angine(14, None, signs=MacIsaac())).within


def test_angine_fever_above_39_5_is_out() -> None:
    assert assess_protocol(_angine(30, "39.5")).within
    assert "fever" in [c.code for c in assess_protocol(_angine(30, "39.6")).refusals]


def test_angine_exclusions_and_regimens_by_allergy() -> None:
    refused = assess_protocol(_angine(30, exclusions=frozenset({Exclusion.PREGNANCY})))
    assert [c.code for c in refused.refusals] == ["exclusion:grossesse"] and not refused.regimens
    assert [r.code for r in assess_protocol(_angine(30)).regimens] == ["amoxicilline"]
    pen = assess_protocol(_angine(30, allergy=Allergy.PENICILLIN))
    assert [r.code for r in pen.regimens] == ["cefpodoxime", "cefuroxime"]
    child = assess_protocol(_angine(12, allergy=Allergy.PENICILLIN))
    assert [r.code for r in child.regimens] == ["cefpodoxime"]  # céfuroxime: adults only
    bl = assess_protocol(_angine(30, allergy=Allergy.BETALACTAMS))
    assert [r.code for r in bl.regimens] == ["azithromycine", "clarithromycine"]


def _cystite(age: int, sex: str = "F", **kwargs: object) -> ProtocolInput:
    return ProtocolInput(TrodTest.CYSTITE, age, age, sex, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(("age", "within"), [(15, False), (16, True), (65, True), (66, False)])
def test_cystite_age_bounds(age: int, within: bool) -> None:
    assert assess_protocol(_cystite(age)).within is within


def test_cystite_women_only_fever_recurrence_and_exclusions() -> None:
    assert [c.code for c in assess_protocol(_cystite(30, "M")).refusals] == ["not-a-woman"]
    assert assess_protocol(_cystite(30, temperature_c=Decimal("38.0"))).within
    assert not assess_protocol(_cystite(30, temperature_c=Decimal("38.1"))).within
    assert assess_protocol(_cystite(30, previous_episodes_12_months=2)).within
    assert [
        c.code for c in assess_protocol(_cystite(30, previous_episodes_12_months=3)).refusals
    ] == ["recurrent"]
    lumbar = assess_protocol(_cystite(30, exclusions=frozenset({Exclusion.LUMBAR_PAIN})))
    assert [c.code for c in lumbar.refusals] == ["exclusion:douleur-lombaire"]
    # An exclusion of the other protocol does not apply (tropical travel is an angine criterion).
    assert assess_protocol(_cystite(30, exclusions=frozenset({Exclusion.TROPICAL_TRAVEL}))).within
    assert [r.code for r in assess_protocol(_cystite(30)).regimens] == [
        "fosfomycine",
        "pivmecillinam",
    ]


def test_regimen_quantities() -> None:
    amox = REGIMENS["amoxicilline"]
    assert amox.dose_mg(30, None) == 1000
    assert amox.total_units(Decimal(1000), Decimal(1000)) == 12  # 1 g x 2 x 6 days
    assert amox.total_units(Decimal(1000), Decimal(500)) == 24
    # Child of 30 kg: 50 mg/kg/d = 1500 mg/d → 750 mg per intake → 1.5 tablets of 500 mg.
    assert amox.dose_mg(12, Decimal(30)) == 750
    assert amox.units_per_intake(Decimal(750), Decimal(500)) == Decimal("1.5")
    assert amox.total_units(Decimal(750), Decimal(500)) == 18
    # Capped at 2 g/d: a heavy child gets the adult dose.
    assert amox.dose_mg(12, Decimal(60)) == 1000
    with pytest.raises(ValueError):
        amox.dose_mg(12, None)
    assert REGIMENS["fosfomycine"].total_units(Decimal(3000), Decimal(3000)) == 1
    assert REGIMENS["pivmecillinam"].total_units(Decimal(400), Decimal(200)) == 12


def test_positive_readings() -> None:
    assert positive(TrodTest.ANGINE, {"streptocoque-a": Reading.POSITIVE})
    assert not positive(TrodTest.ANGINE, {"streptocoque-a": Reading.NEGATIVE})
    assert positive(
        TrodTest.CYSTITE, {"leucocytes": Reading.NEGATIVE, "nitrites": Reading.POSITIVE}
    )
    assert not positive(
        TrodTest.CYSTITE, {"leucocytes": Reading.NEGATIVE, "nitrites": Reading.NEGATIVE}
    )


def test_tests_without_protocol() -> None:
    decision = assess_protocol(ProtocolInput(TrodTest.COVID_19, 30, 30, "F"))
    assert not decision.within and [c.code for c in decision.refusals] == ["no-protocol"]


@pytest.mark.parametrize(
    ("code", "french"),
    [
        ("]d2010340093000001217271231" + "10L1", "clé de contrôle du code produit (GTIN) fausse"),
        ("]d2010340093000001417271331" + "10L1", "mois de péremption invalide"),
        ("]d2010340093000001417271299" + "10L1", "jour de péremption invalide"),
        ("]d20103400930000014" + "99XYZ", "identifiant d'application (AI) inconnu"),
        ("]d20103400930000014" + "17271", "champ AI 17 trop court"),
    ],
)
def test_a_malformed_vaccine_code_is_explained_in_french(code: str, french: str) -> None:
    with pytest.raises(VaccineCodeInvalid) as refused:
        vaccine_code(code)
    assert refused.value.detail == f"Code GS1 non conforme : {french}."
