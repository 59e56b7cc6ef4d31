"""A complete legal record (issue #17 item 5) through the API: a dispensation lacking a datum the
ordonnancier must hold (R.5132-10; R.5132-35 for a stupéfiant's bearer) is refused with a French
message naming it and writes nothing; a complete one records the prescriber's address and, for a
stupéfiant brought by someone else, the bearer; the chain still verifies. The migration (branch
``legal_record``) round-trips on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, inspect, select

from lgo.bootstrap.dispensing import part_of
from lgo.domain.products import Pack, Product, RegulatoryList
from lgo.services import ordonnancier
from lgo.store import migrate
from lgo.store.db import Database
from lgo.store.models.dispensing import DispensationRow, OrdonnancierEntry
from tests.fixtures.dispensing import (
    LIST_I_PRODUCT,
    PRESCRIBER_RPPS,
    cip13,
    make_patient,
    open_pharmacist_session,
)

pytestmark = pytest.mark.integration
LISTED = LIST_I_PRODUCT.packs[0].cip13
MORPHINE = cip13("4000099")
NARCOTIC = Product(
    MORPHINE,
    "MORPHINE TEST LP 10 mg",
    RegulatoryList.STUPEFIANT,
    molecule="morphine-test",
    packs=(Pack(MORPHINE, 14, 900),),
)
INCOMPLETE = "urn:lgo:problem:legal-record-incomplete"


def body(patient: str, *, narcotic: bool = False, **changes: Any) -> dict[str, Any]:
    product, listed = (MORPHINE, "stupefiant") if narcotic else (LISTED, "list_i")
    data: dict[str, Any] = {
        "patient_id": patient,
        "patient_address": "1 rue Fictive, 75000 Paris",
        "prescriber_acknowledged": True,
        "paper": {
            "prescribed_on": "2026-01-01",
            "prescriber_rpps": PRESCRIBER_RPPS,
            "prescriber_name": "DOCTEUR FICTIF",
            "prescriber_address": "2 avenue du Test, 75011 Paris",
            "lines": [
                {
                    "designation": "PRODUIT TEST",
                    "cip13": product,
                    "regulatory_list": listed,
                    "units_per_day": "2",
                    "duration_days": 7,
                }
            ],
        },
        "lines": [{"line_no": 1, "intervention": "unchanged", "days": 7, "cip13": product}],
    }
    if narcotic:
        data["bearer"] = {"is_patient": True}
    data.update(changes)
    return data


@pytest.fixture
def counter(api: Any) -> Any:
    from lgo.services.local_time import pharmacy_today

    part_of(api.container).catalog.add(LIST_I_PRODUCT)
    part_of(api.container).catalog.add(NARCOTIC)
    open_pharmacist_session(api.container)
    api.today = pharmacy_today().isoformat()
    return api


def post(counter: Any, data: dict[str, Any], key: str) -> Any:
    data["paper"]["prescribed_on"] = counter.today
    return counter.client.post("/v1/dispensations", json=data, headers={"Idempotency-Key": key})


def written(counter: Any) -> tuple[int, int]:
    with counter.container.db.uow(readonly=True) as uow:
        count = uow.session.execute
        return (
            count(select(func.count()).select_from(DispensationRow)).scalar_one(),
            count(select(func.count()).select_from(OrdonnancierEntry)).scalar_one(),
        )


def without_prescriber_address(data: dict[str, Any]) -> dict[str, Any]:
    data["paper"]["prescriber_address"] = ""
    return data


@pytest.mark.parametrize(
    ("make", "datum", "words"),
    [
        (lambda p: body(p, patient_address=""), "patient_address", "adresse du patient"),
        (
            lambda p: without_prescriber_address(body(p)),
            "prescriber_address",
            "adresse du prescripteur",
        ),
        (lambda p: body(p, narcotic=True, bearer=None), "bearer", "porteur de l'ordonnance"),
        (
            lambda p: body(
                p, narcotic=True, bearer={"is_patient": False, "name": "TESTVOISIN ALEX"}
            ),
            "bearer_address",
            "adresse du porteur",
        ),
        (
            lambda p: body(
                p,
                narcotic=True,
                bearer={"is_patient": False, "address": "5 rue Voisine, 75000 Paris"},
            ),
            "bearer_name",
            "nom du porteur",
        ),
    ],
)
def test_a_missing_datum_is_named_and_nothing_is_written(
    counter: Any, make: Any, datum: str, words: str
) -> None:
    patient = make_patient(counter.container.db)
    before = written(counter)
    refused = post(counter, make(patient), "legal-key-01")
    assert refused.status_code == 422, refused.text
    problem = refused.json()
    assert problem["type"] == INCOMPLETE
    assert [m["datum"] for m in problem["missing"]] == [datum]
    assert words in problem["detail"] and "R.5132-" in problem["detail"]
    assert written(counter) == before


def test_the_typed_prescriber_address_completes_the_record(counter: Any) -> None:
    patient = make_patient(counter.container.db)
    data = without_prescriber_address(body(patient))
    data["prescriber_address"] = "9 rue du Cabinet, 75012 Paris"
    created = post(counter, data, "legal-key-02")
    assert created.status_code == 201, created.text
    entries = ordonnancier.query(counter.container.db, ordonnancier.Query())
    assert [e["prescriber_address"] for e in entries] == ["9 rue du Cabinet, 75012 Paris"]


def test_a_stupefiant_brought_by_someone_else_records_the_bearer(counter: Any) -> None:
    patient = make_patient(counter.container.db)
    bearer = {
        "is_patient": False,
        "name": "TESTVOISIN ALEX",
        "address": "5 rue Voisine, 75000 Paris",
    }
    created = post(counter, body(patient, narcotic=True, bearer=bearer), "legal-key-03")
    assert created.status_code == 201, created.text
    listed = post(counter, body(patient), "legal-key-04")  # list I: no bearer recorded
    assert listed.status_code == 201, listed.text
    entries = ordonnancier.query(counter.container.db, ordonnancier.Query())
    by_list = {e["regulatory_list"]: e for e in entries}
    assert (by_list["stupefiant"]["bearer_name"], by_list["stupefiant"]["bearer_address"]) == (
        "TESTVOISIN ALEX",
        "5 rue Voisine, 75000 Paris",
    )
    assert by_list["list_i"]["bearer_name"] is None
    assert all(e["prescriber_address"] == "2 avenue du Test, 75011 Paris" for e in entries)
    assert ordonnancier.verify(counter.container.db).ok


def test_migration_round_trip_keeps_older_entries_verifiable(any_db: Database) -> None:
    columns = {c["name"] for c in inspect(any_db.engine).get_columns("ordonnancier_entries")}
    assert {"prescriber_address", "bearer_name", "bearer_address"} <= columns
    migrate.downgrade(any_db, "legal_record@-1")
    columns = {c["name"] for c in inspect(any_db.engine).get_columns("ordonnancier_entries")}
    assert "prescriber_address" not in columns
    migrate.upgrade(any_db)
    migrate.check(any_db)
    assert ordonnancier.verify(any_db).ok


def test_check_says_what_the_record_still_needs(counter: Any) -> None:
    patient = make_patient(counter.container.db)
    data = body(patient, narcotic=True, patient_address="", bearer=None)
    data["paper"]["prescribed_on"] = counter.today
    checked = counter.client.post("/v1/dispensations/check", json=data)
    assert checked.status_code == 200, checked.text
    assert [m["datum"] for m in checked.json()["record_missing"]] == ["patient_address", "bearer"]
    complete = counter.client.post(
        "/v1/dispensations/check", json=body(patient, narcotic=True) | {"paper": data["paper"]}
    )
    assert complete.json()["record_missing"] == []
    assert written(counter) == (0, 0)
