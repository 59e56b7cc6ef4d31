"""What an ordonnancier entry must hold (R.5132-10, R.5132-35): each datum, refused when absent."""

from __future__ import annotations

from dataclasses import replace

import pytest

from lgo.domain.legal_record import (
    Bearer,
    Datum,
    RecordData,
    RecordedLine,
    describe_fr,
    missing_data,
)
from lgo.domain.ordonnancier import GENESIS_HASH, canonical, entry_hash

LISTED = RecordedLine("AMOXICILLINE TEST 1 g", 12, narcotic=False)
NARCOTIC = RecordedLine("MORPHINE TEST LP 10 mg", 14, narcotic=True)
COMPLETE = RecordData(
    prescriber_name="TESTMEDECIN DOMINIQUE",
    prescriber_address="12 rue des Essais, 75010 PARIS",
    patient_name="TESTPATIENT DOMINIQUE",
    patient_address="1 rue Fictive, 75000 Paris",
    bearer=None,
    lines=(LISTED,),
)


def test_a_complete_record_lacks_nothing() -> None:
    assert missing_data(COMPLETE) == []
    assert missing_data(replace(COMPLETE, lines=(NARCOTIC,), bearer=Bearer(True))) == []


def test_nothing_is_required_when_nothing_goes_to_the_ordonnancier() -> None:
    empty = RecordData("", "", "", "", None, ())
    assert missing_data(empty) == []


@pytest.mark.parametrize(
    ("change", "datum"),
    [
        ({"prescriber_name": " "}, Datum.PRESCRIBER_NAME),
        ({"prescriber_address": ""}, Datum.PRESCRIBER_ADDRESS),
        ({"prescriber_address": "x"}, Datum.PRESCRIBER_ADDRESS),  # not an address
        ({"patient_name": ""}, Datum.PATIENT_NAME),
        ({"patient_address": ""}, Datum.PATIENT_ADDRESS),
        ({"patient_address": "Pa"}, Datum.PATIENT_ADDRESS),
        ({"lines": (RecordedLine("", 12, narcotic=False),)}, Datum.DESIGNATION),
        ({"lines": (RecordedLine("X", 0, narcotic=False),)}, Datum.QUANTITY),
    ],
)
def test_each_r5132_10_datum_is_required(change: dict[str, object], datum: Datum) -> None:
    assert missing_data(replace(COMPLETE, **change)) == [datum]  # type: ignore[arg-type]


def test_stupefiant_needs_to_know_who_brought_the_prescription() -> None:
    narcotic = replace(COMPLETE, lines=(LISTED, NARCOTIC))
    assert missing_data(narcotic) == [Datum.BEARER]
    assert missing_data(replace(narcotic, bearer=Bearer(False))) == [
        Datum.BEARER_NAME,
        Datum.BEARER_ADDRESS,
    ]
    someone = Bearer(False, "TESTVOISIN ALEX", "5 rue Voisine, 75000 Paris")
    assert missing_data(replace(narcotic, bearer=someone)) == []
    assert missing_data(replace(COMPLETE, bearer=None)) == []  # list I only: no bearer needed


def test_the_message_names_each_datum_with_its_article() -> None:
    text = describe_fr([Datum.PATIENT_ADDRESS, Datum.BEARER])
    assert text == (
        "adresse du patient (art. R.5132-10 CSP), porteur de l'ordonnance (le patient, ou le "
        "nom et l'adresse du porteur) (art. R.5132-35 CSP)"
    )


def test_new_fields_are_chained_only_when_present() -> None:
    old = {"number": 1, "prescriber_name": "X"}
    assert canonical(old) == canonical({**old, "prescriber_address": None, "bearer_name": None})
    with_address = {**old, "prescriber_address": "12 rue des Essais"}
    assert entry_hash(GENESIS_HASH, with_address) != entry_hash(GENESIS_HASH, old)
