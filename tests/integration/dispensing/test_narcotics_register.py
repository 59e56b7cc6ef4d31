"""Registre des stupéfiants in the database: withdrawal written with the dispensation, receipts,
balance and inventory over the API, UPDATE/DELETE refused on SQLite and PostgreSQL."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from lgo.domain.dispensing import InterventionKind, LineRequest
from lgo.domain.prescription import PrescriptionLine
from lgo.domain.products import Pack, Product, RegulatoryList
from lgo.services import narcotics
from lgo.services.dispensing import LineInput
from lgo.services.local_time import pharmacy_today
from lgo.services.prescriptions import InMemoryCatalog
from lgo.store.db import Database
from tests.fixtures.dispensing import (
    dispensation_input,
    dispensing_service,
    make_patient,
    open_pharmacist_session,
    paper,
    pharmacist,
)

pytestmark = pytest.mark.integration
MORPHINE = "3400999999069"
PRODUCT = Product(
    MORPHINE,
    "MORPHINE TEST LP 10 mg B/14",
    RegulatoryList.STUPEFIANT,
    molecule="morphine",
    packs=(Pack(MORPHINE, 14, 500),),
)


def dispense_morphine(db: Database, key: str = "stup-key-1") -> dict[str, Any]:
    line = PrescriptionLine(1, PRODUCT, Decimal(2), 14)
    rx = paper("STUP000000000" + key[-1], line, prescribed_on=pharmacy_today())
    data = dispensation_input(
        make_patient(db),
        rx,
        LineInput(LineRequest(1, InterventionKind.UNCHANGED, 14), cip13=MORPHINE),
    )
    service = dispensing_service(db, InMemoryCatalog([PRODUCT]))
    return service.dispense(key, data, pharmacist(), degraded=False).body


def test_withdrawal_recorded_in_the_dispensation_transaction(any_db: Database) -> None:
    body = dispense_morphine(any_db)
    rows = narcotics.register(any_db, MORPHINE)
    assert [(r["movement"], r["units"], r["dispensation_id"]) for r in rows] == [
        ("dispensing", -28, body["id"])
    ]


def test_register_lines_cannot_be_changed(any_db: Database) -> None:
    dispense_morphine(any_db)
    for statement in ("UPDATE narcotics_register SET units = 0", "DELETE FROM narcotics_register"):
        with pytest.raises(DBAPIError, match="append-only"), any_db.engine.begin() as conn:
            conn.execute(text(statement))
    assert narcotics.register(any_db, MORPHINE)[0]["units"] == -28


def test_receipt_balance_and_inventory_over_the_api(api: Any) -> None:
    open_pharmacist_session(api.container)
    dispense_morphine(api.container.db)
    receipt = {
        "product_code": MORPHINE,
        "designation": "MORPHINE TEST LP 10 mg",
        "movement": "receipt",
        "units": 140,
        "reference": "BL 2026-001",
    }
    assert api.client.post("/v1/narcotics/movements", json=receipt).status_code == 201
    month = pharmacy_today().strftime("%Y-%m")
    balance = api.client.get(
        "/v1/narcotics/balance", params={"product_code": MORPHINE, "month": month}
    ).json()
    assert (balance["received"], balance["withdrawn"], balance["closing"]) == (140, 28, 112)
    counted = api.client.post(
        "/v1/narcotics/inventory",
        json={
            "product_code": MORPHINE,
            "designation": "MORPHINE TEST LP 10 mg",
            "counted_units": 110,
            "note": "inventaire annuel",
        },
    ).json()
    assert (counted["expected"], counted["discrepancy"]) == (112, -2)
    lines = api.client.get("/v1/narcotics/register", params={"product_code": MORPHINE}).json()
    assert [ln["movement"] for ln in lines] == ["dispensing", "receipt", "inventory_adjustment"]
    assert lines[-1]["units"] == -2
