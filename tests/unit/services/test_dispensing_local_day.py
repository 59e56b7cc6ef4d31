"""Rules count calendar days in Paris time, not UTC (the 3-day rule at 00:30 local)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from lgo.core.events import EventBus
from lgo.domain.dispensing import InterventionKind, LineRequest
from lgo.domain.prescription import PrescriptionLine
from lgo.domain.products import Product, RegulatoryList
from lgo.services.dispensing import DispensingService, LineInput
from lgo.services.dispensing_errors import DispensingRefused
from lgo.services.local_time import local_date
from lgo.services.prescriptions import InMemoryCatalog
from lgo.store import migrate
from lgo.store.db import Database
from tests.fixtures.dispensing import dispensation_input, make_patient, paper, pharmacist


def test_local_date_crosses_midnight_before_utc() -> None:
    assert local_date(datetime(2026, 2, 4, 22, 59, tzinfo=UTC)) == date(2026, 2, 4)
    assert local_date(datetime(2026, 2, 4, 23, 30, tzinfo=UTC)) == date(2026, 2, 5)
    assert local_date(datetime(2026, 7, 4, 22, 30, tzinfo=UTC)) == date(2026, 7, 5)  # summer
    with pytest.raises(ValueError):
        local_date(datetime(2026, 2, 4, 23, 30))


def test_three_day_rule_uses_the_pharmacy_day(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'd.sqlite3'}")
    migrate.upgrade(db)
    morphine = Product("3400999999069", "MORPHINE TEST", RegulatoryList.STUPEFIANT)
    rx = paper(
        "LOCALDAY000001",
        PrescriptionLine(1, morphine, Decimal(1), 28),
        prescribed_on=date(2026, 2, 1),
    )
    data = dispensation_input(
        make_patient(db), rx, LineInput(LineRequest(1, InterventionKind.UNCHANGED, 28))
    )
    # 4 Feb 23:30 UTC is 5 Feb 00:30 in Paris: D+4, the full 28 days are no longer allowed
    at = datetime(2026, 2, 4, 23, 30, tzinfo=UTC)
    service = DispensingService(db, EventBus(), InMemoryCatalog(), clock=lambda: at)
    with pytest.raises(DispensingRefused) as refused:
        service.dispense("local-day-key", data, pharmacist(), degraded=False)
    assert refused.value.extra["refusals"][0]["code"] == "presented_late_reduced"
    db.dispose()
