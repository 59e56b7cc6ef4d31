"""NIR/NIA/INS keys, OIDs, traits and every RNIV status transition (allowed and refused)."""

from __future__ import annotations

import itertools

import pytest

from lgo.domain.identity import (
    TRANSITIONS,
    IdentityEvent,
    IdentityStatus,
    Ins,
    InsOid,
    InvalidNirError,
    InvalidOidError,
    InvalidTraitError,
    RawBirthDate,
    Traits,
    TransitionRefusedError,
    check_nir,
    display_nir,
    first_name_attempts,
    is_definitive_nir,
    is_valid_nir,
    may_send_ins,
    next_status,
    nir_key,
    normalise_name,
    split_given_names,
    validate_ins,
    with_key,
)

# Public test values (domain.md §3.1, formats.md §3.3).
ANS_CDA_NIR = "279035121518989"
PADOA_NIA = "109076322088835"
DATAMATRIX_NIR = "299127505699943"


@pytest.mark.parametrize("nir", [ANS_CDA_NIR, PADOA_NIA, DATAMATRIX_NIR])
def test_public_test_values_have_valid_keys(nir: str) -> None:
    assert is_valid_nir(nir)
    assert validate_ins(nir)


def test_key_formula() -> None:
    assert nir_key("2790351215189") == 97 - 2790351215189 % 97 == 89


@pytest.mark.parametrize(("department", "substitute"), [("2A", "19"), ("2B", "18")])
def test_corsica_departments_counted_as_19_and_18(department: str, substitute: str) -> None:
    first13 = f"18505{department}123456"
    expected = 97 - int(f"18505{substitute}123456") % 97
    assert nir_key(first13) == expected
    assert check_nir(f"{first13}{expected:02d}") == f"{first13}{expected:02d}"
    # The same key on the numeric twin would be wrong for 2A vs 2B: keys differ between them.
    assert nir_key("185052A123456") != nir_key("185052B123456")


def test_corsica_lower_case_and_spaces_normalised() -> None:
    nir = with_key("185052A123456")
    typed = display_nir(nir).lower()
    assert check_nir(typed) == nir


@pytest.mark.parametrize("nir", [ANS_CDA_NIR, PADOA_NIA, with_key("185052B123456")])
def test_every_wrong_key_refused(nir: str) -> None:
    for key in range(100):
        candidate = f"{nir[:13]}{key:02d}"
        assert is_valid_nir(candidate) == (candidate == nir)


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "27903512151898",  # 14 chars
        "2790351215189890",  # 16 chars
        "579035121518989",  # sex digit 5 does not exist
        "2790351215189AB",  # letters in key
        "27903_121518989",
        "279132C12345678",  # 2C is no department
        with_key("2791351215189"),  # month 13
        with_key("2790051215189"),  # month 00
    ],
)
def test_malformed_nir_refused(bad: str) -> None:
    assert not is_valid_nir(bad)
    with pytest.raises(InvalidNirError):
        check_nir(bad)


def test_unknown_birth_month_codes_accepted() -> None:
    assert is_valid_nir(with_key("1802575123456"))  # month 25
    assert is_valid_nir(with_key("1809975123456"))  # month 99


def test_definitive_vs_temporary_numbers() -> None:
    assert is_definitive_nir(ANS_CDA_NIR)
    assert not is_definitive_nir(with_key("7850575123456"))
    assert not is_definitive_nir(with_key("3850575123456"))


def test_oids_and_flags() -> None:
    assert InsOid("1.2.250.1.213.1.4.8").is_production
    assert InsOid("1.2.250.1.213.1.4.9").is_production
    assert InsOid.TEST.is_test and not InsOid.TEST.is_production
    assert InsOid("1.2.250.1.213.1.4.11").is_demo
    assert InsOid.DEMO.label == "INS-NIR [DEMO]"
    assert not InsOid.DEMO.is_test
    assert validate_ins(ANS_CDA_NIR, "1.2.250.1.213.1.4.10")
    assert not validate_ins(ANS_CDA_NIR, "1.2.250.1.213.1.4.12")
    with pytest.raises(InvalidOidError):
        Ins.of(ANS_CDA_NIR, "1.2.250.1.213.1.4.12")


def test_ins_repr_hides_the_number() -> None:
    ins = Ins.of(ANS_CDA_NIR, InsOid.TEST)
    assert ANS_CDA_NIR not in repr(ins)
    assert ins.matricule == ANS_CDA_NIR


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Éloïse", "ELOISE"),
        ("  de   la  Fontaine ", "DE LA FONTAINE"),
        ("d’Arc", "D'ARC"),
        ("Lætitia", "LAETITIA"),
        ("Cœur", "COEUR"),
        ("Jean--Luc", "JEAN--LUC"),
        ("Müller-Çelik", "MULLER-CELIK"),
    ],
)
def test_names_upper_unaccented_and_match_insi_regex(raw: str, expected: str) -> None:
    assert normalise_name(raw) == expected


@pytest.mark.parametrize("raw", ["", "J0HN", "-MARIE", "MARIE-", "A.B", "O'", "ANNE---MARIE"])
def test_unusable_names_refused(raw: str) -> None:
    with pytest.raises(InvalidTraitError):
        normalise_name(raw)


def test_first_names_one_by_one_then_all() -> None:
    names = split_given_names("Marie-Claire, Anne Élise")
    assert names == ["MARIE-CLAIRE", "ANNE", "ELISE"]
    assert first_name_attempts(names) == [
        "MARIE-CLAIRE",
        "ANNE",
        "ELISE",
        "MARIE-CLAIRE ANNE ELISE",
    ]
    assert first_name_attempts(["PAUL"]) == ["PAUL"]


@pytest.mark.parametrize("raw", ["19800000", "1980-00-00", "19801300", "19800231"])
def test_lunar_birth_dates_round_trip_unchanged(raw: str) -> None:
    date = RawBirthDate.parse(raw)
    assert date.raw == raw.replace("-", "")
    assert date.iso_like == f"{date.raw[:4]}-{date.raw[4:6]}-{date.raw[6:]}"
    assert RawBirthDate.parse(date.iso_like) == date


def test_birth_date_shape_checked_and_hidden() -> None:
    assert RawBirthDate.parse("19800000").is_lunar
    assert not RawBirthDate.parse("19800115").is_lunar
    assert "1980" not in repr(RawBirthDate.parse("19800115"))
    for bad in ["1980", "1980-1-1", "abcdefgh", "1980/01/15"]:
        with pytest.raises(InvalidTraitError):
            RawBirthDate.parse(bad)


def test_traits_build_and_validate() -> None:
    traits = Traits.of("Dupont", "Jean Paul", "m", "19800000", "2a004")
    assert traits.birth_name == "DUPONT"
    assert traits.given_names == ("JEAN", "PAUL")
    assert traits.sex == "M"
    assert traits.birthplace == "2A004"
    assert "DUPONT" not in repr(traits)
    with pytest.raises(InvalidTraitError):
        Traits.of("Dupont", "Jean", "X", "19800101")
    with pytest.raises(InvalidTraitError):
        Traits.of("Dupont", "", "F", "19800101")
    with pytest.raises(InvalidTraitError):
        Traits.of("Dupont", "Jean", "F", "19800101", "7505")


S, E = IdentityStatus, IdentityEvent

ALLOWED = {
    (S.PROV, E.INSI_OK): S.RECUP,
    (S.PROV, E.DOCUMENT_CHECKED): S.VALI,
    (S.RECUP, E.INSI_OK): S.RECUP,
    (S.RECUP, E.DOCUMENT_CHECKED): S.QUAL,
    (S.VALI, E.INSI_OK): S.QUAL,
    (S.VALI, E.DOCUMENT_CHECKED): S.VALI,
    (S.QUAL, E.INSI_OK): S.QUAL,
    (S.QUAL, E.DOCUMENT_CHECKED): S.QUAL,
    (S.RECUP, E.INSI_KO): S.PROV,
    (S.QUAL, E.INSI_KO): S.VALI,
}


@pytest.mark.parametrize(("start", "event"), list(itertools.product(S, E)))
def test_every_transition_allowed_or_refused(start: IdentityStatus, event: IdentityEvent) -> None:
    if (start, event) in ALLOWED:
        assert next_status(start, event) is ALLOWED[(start, event)]
    else:
        with pytest.raises(TransitionRefusedError) as info:
            next_status(start, event)
        assert info.value.status is start and info.value.event is event


def test_table_is_exactly_the_expected_one() -> None:
    assert TRANSITIONS == ALLOWED


def test_reference_paths_reach_qualified() -> None:
    assert next_status(next_status(S.PROV, E.INSI_OK), E.DOCUMENT_CHECKED) is S.QUAL
    assert next_status(next_status(S.PROV, E.DOCUMENT_CHECKED), E.INSI_OK) is S.QUAL


def test_only_qualified_and_not_on_work_list_may_send_ins() -> None:
    assert [s for s in S if may_send_ins(s)] == [S.QUAL]
    assert not may_send_ins(S.QUAL, on_work_list=True)


def test_status_stored_as_words_with_fr_core_codes() -> None:
    assert IdentityStatus("provisional") is S.PROV
    assert [s.code for s in S] == ["PROV", "RECUP", "VALI", "QUAL"]
    assert S.QUAL.label == "Identité qualifiée"
