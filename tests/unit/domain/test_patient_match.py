"""The prescription's patient vs the dispensation's patient: every edge case of the rule."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lgo.domain.patient_match import (
    MatchBasis,
    PatientTraits,
    Trait,
    birth_date_digits,
    display_birth_date,
    match_patient,
    name_key,
    same_birth_date,
)

CAMILLE = PatientTraits(("TESTNOM",), ("CAMILLE",), "19991231", "F")
INS_A = "299127505699943"
INS_B = "210067505632166"
TEST_OID = "1.2.250.1.213.1.4.10"
NIR_OID = "1.2.250.1.213.1.4.8"


def traits(**changes: object) -> PatientTraits:
    fields: dict[str, object] = {
        "family_names": ("TESTNOM",),
        "given_names": ("CAMILLE",),
        "birth_date": "19991231",
        "sex": "F",
        "ins": None,
        "ins_oid": None,
    }
    fields.update(changes)
    return PatientTraits(**fields)  # type: ignore[arg-type]


def test_same_traits_match_on_traits() -> None:
    result = match_patient(CAMILLE, traits())
    assert result.same and result.basis is MatchBasis.TRAITS and result.differing == ()


def test_another_patient_names_every_differing_trait() -> None:
    lou = traits(given_names=("LOU",), birth_date="20100615")
    result = match_patient(CAMILLE, lou)
    assert not result.same
    assert result.differing == (Trait.GIVEN_NAME, Trait.BIRTH_DATE)


@pytest.mark.parametrize(
    ("prescribed", "card"),
    [
        ("Éloïse", "ELOISE"),
        ("d'Arc", "D ARC"),
        ("D’ARC", "DARC"),
        ("Martin-Dupont", "MARTIN DUPONT"),
        ("MARTIN--DUPONT", "MARTIN-DUPONT"),
        ("Lætitia", "LAETITIA"),
        ("  de la  Fontaine ", "DE LA FONTAINE"),
    ],
)
def test_names_compare_without_accents_case_or_separators(prescribed: str, card: str) -> None:
    assert name_key(prescribed) == name_key(card)
    assert match_patient(traits(family_names=(prescribed,)), traits(family_names=(card,))).same


def test_a_different_family_name_is_another_patient() -> None:
    result = match_patient(CAMILLE, traits(family_names=("TESTNOMS",)))
    assert not result.same and result.differing == (Trait.FAMILY_NAME,)


def test_prescription_may_name_the_used_name() -> None:
    patient = traits(family_names=("TESTNAISSANCE", "TESTNOM"))  # birth name, used name
    assert match_patient(CAMILLE, patient).same
    assert not match_patient(traits(family_names=("AUTRE",)), patient).same


def test_only_the_first_given_name_counts() -> None:
    prescribed = traits(given_names=("DOMINIQUE", "JEAN"))
    assert match_patient(prescribed, traits(given_names=("DOMINIQUE",))).same
    assert not match_patient(prescribed, traits(given_names=("JEAN", "DOMINIQUE"))).same


def test_composed_first_given_name_is_one_name() -> None:
    # INS referential: given names are separated by spaces; a composed name keeps its hyphen.
    prescribed = traits(given_names=("JEAN-PIERRE",))
    assert match_patient(prescribed, traits(given_names=("JEAN-PIERRE", "PAUL"))).same
    assert not match_patient(prescribed, traits(given_names=("JEAN", "PIERRE"))).same


def test_no_given_name_never_matches_on_traits() -> None:
    assert not match_patient(traits(given_names=()), traits(given_names=())).same


def test_twins_same_birth_date_and_name_are_not_a_match() -> None:
    paul = traits(
        family_names=("TESTCORSE",), given_names=("PAUL",), birth_date="20150901", sex="M"
    )
    lea = traits(family_names=("TESTCORSE",), given_names=("LEA",), birth_date="20150901", sex="F")
    result = match_patient(paul, lea)
    assert not result.same and Trait.GIVEN_NAME in result.differing


def test_twins_with_identical_traits_are_told_apart_by_ins() -> None:
    one = traits(ins=INS_A, ins_oid=TEST_OID)
    two = traits(ins=INS_B, ins_oid=TEST_OID)
    result = match_patient(one, two)
    assert not result.same and result.basis is MatchBasis.INS and result.differing == (Trait.INS,)


def test_same_ins_is_the_same_patient_whatever_the_traits() -> None:
    # The INS is the reference: a typing variation in the traits does not refuse it.
    result = match_patient(
        traits(ins=INS_A, ins_oid=TEST_OID),
        traits(given_names=("KAMILLE",), ins=INS_A, ins_oid=TEST_OID),
    )
    assert result.same and result.basis is MatchBasis.INS


def test_ins_on_one_side_only_falls_back_to_traits() -> None:
    result = match_patient(traits(ins=INS_A, ins_oid=TEST_OID), traits(given_names=("LOU",)))
    assert not result.same and result.basis is MatchBasis.TRAITS


def test_ins_under_different_oids_is_not_compared() -> None:
    result = match_patient(traits(ins=INS_A, ins_oid=TEST_OID), traits(ins=INS_B, ins_oid=NIR_OID))
    assert result.basis is MatchBasis.TRAITS and result.same


@pytest.mark.parametrize(
    ("left", "right", "same"),
    [
        ("19800000", "19800000", True),  # lunar on both cards, as given
        ("19800000", "19801332", True),  # month and day unknown on both sides
        ("19800000", "19800101", False),  # never "corrected" into 1 January
        ("19800500", "19800512", False),  # known day against an unknown one
        ("19800500", "19800500", True),
        ("19800035", "19800000", True),  # day 35: unknown, like 00
        ("19801301", "19800001", True),  # month 13: unknown; day 01 on both
        ("19801301", "19800002", False),
        ("19800000", "19810000", False),  # years always compared
        ("19991231", "19991231", True),
        ("19991231", "19991230", False),
        ("20150901", "20150109", False),  # day and month swapped
    ],
)
def test_birth_dates_compare_as_given(left: str, right: str, same: bool) -> None:
    assert same_birth_date(left, right) is same
    assert same_birth_date(right, left) is same


def test_partial_fhir_dates_meet_lunar_card_dates() -> None:
    assert birth_date_digits("1980") == "19800000"
    assert birth_date_digits("1980-05") == "19800500"
    assert birth_date_digits("1980-05-04") == "19800504"
    assert birth_date_digits("19800000") == "19800000"
    prescribed = traits(birth_date=birth_date_digits("1980"))
    assert match_patient(prescribed, traits(birth_date="19800000")).same
    assert not match_patient(prescribed, traits(birth_date="19800101")).same


@pytest.mark.parametrize("bad", ["", "1980-5", "80-05-04", "1980/05/04", "1980050", "abcd"])
def test_unreadable_birth_dates_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        birth_date_digits(bad)


def test_display_keeps_the_date_as_given() -> None:
    assert display_birth_date("19800000") == "00/00/1980"
    assert display_birth_date("19991231") == "31/12/1999"


def test_sex_compared_only_when_both_known() -> None:
    assert match_patient(CAMILLE, traits(sex="M")).differing == (Trait.SEX,)
    assert match_patient(traits(sex="U"), traits(sex="M")).same
    assert match_patient(CAMILLE, traits(sex="U")).same


def test_traits_are_validated_and_hidden() -> None:
    with pytest.raises(ValueError):
        traits(birth_date="1999-12-31")
    with pytest.raises(ValueError):
        traits(sex="X")
    with pytest.raises(ValueError):
        traits(family_names=(" ",))
    assert "TESTNOM" not in repr(CAMILLE) and "1999" not in repr(CAMILLE)


names = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZÉÈÏ'- ", min_size=1, max_size=20).filter(
    lambda n: name_key(n) != ""
)
dates = st.from_regex(r"\A(19|20)\d{2}(0[0-9]|1[0-4])(0[0-9]|[1-3][0-9])\Z")


@given(family=names, first=names, birth=dates, sex=st.sampled_from(["M", "F", "U"]))
def test_a_patient_always_matches_itself(family: str, first: str, birth: str, sex: str) -> None:
    one = PatientTraits((family,), (first,), birth, sex)
    assert match_patient(one, one).same


@given(a=dates, b=dates)
def test_birth_date_comparison_is_symmetric(a: str, b: str) -> None:
    assert same_birth_date(a, b) is same_birth_date(b, a)
