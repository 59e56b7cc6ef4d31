"""A busy pharmacy day, compressed: 16 counters dispensing at once against one daemon on loopback.

Each counter is a thread with its own token and its own HTTP connection, posting paper
dispensations (list I, so each one writes an ordonnancier entry) with a fresh ``Idempotency-Key``;
every 5th request is sent twice (a double click / a lost answer). Afterwards the database must hold
exactly one dispensation per key, no error may have been answered, and the ordonnancier chain must
verify with one entry per dispensed line, numbered without gap.

Sized for CI (16 × 12 on SQLite, the embedded default; 16 × 6 on PostgreSQL); raise
``LGO_LOAD_PER_COUNTER`` for a longer run.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from lgo.core.settings import load_settings
from lgo.services import ordonnancier
from lgo.store.db import Database
from lgo.store.models.dispensing import (
    DispensationLineRow,
    DispensationRow,
    IdempotencyKey,
    OrdonnancierEntry,
)
from tests.fixtures.dispensing import LIST_I_PRODUCT, PRESCRIBER_RPPS, make_patient
from tests.load.harness import LiveDaemon, free_port, live_daemon

pytestmark = pytest.mark.integration

COUNTERS = 16
# CI size by default; a longer day (LGO_LOAD_PER_COUNTER) gets a proportionate time limit.
TIME_LIMIT_S = 240 + COUNTERS * int(os.environ.get("LGO_LOAD_PER_COUNTER", "0")) // 10
CIP = LIST_I_PRODUCT.packs[0].cip13


def body(patient_id: str, counter: int, seq: int) -> dict[str, Any]:
    return {
        "patient_id": patient_id,
        # The address makes each body (hence its local paper prescription id) distinct.
        "patient_address": f"{seq} rue Fictive, comptoir {counter}, 75000 Paris",
        "paper": {
            "prescribed_on": date.today().isoformat(),
            "prescriber_rpps": PRESCRIBER_RPPS,
            "prescriber_name": "DOCTEUR FICTIF",
            "prescriber_address": "2 avenue du Test, Paris",
            "lines": [
                {
                    "designation": "FICTIVOL 10 mg cp",
                    "cip13": CIP,
                    "regulatory_list": "list_i",
                    "units_per_day": "1",
                    "duration_days": 30,
                }
            ],
        },
        "lines": [{"line_no": 1, "intervention": "unchanged", "days": 30, "cip13": CIP}],
        "prescriber_acknowledged": True,  # no Annuaire Santé here: the warning is acknowledged
    }


def counter_day(daemon: LiveDaemon, counter: int, per_counter: int, outcomes: list[Any]) -> None:
    patient = make_patient(daemon.container.db)
    with httpx.Client(base_url=daemon.url, headers=daemon.headers(counter), timeout=60) as http:
        for seq in range(per_counter):
            key = f"load-{counter:02d}-{seq:05d}"
            payload = body(patient, counter, seq)
            sends = 2 if seq % 5 == 0 else 1
            for _ in range(sends):
                response = http.post(
                    "/v1/dispensations", json=payload, headers={"Idempotency-Key": key}
                )
                outcomes.append(
                    (
                        key,
                        response.status_code,
                        response.headers.get("idempotent-replayed"),
                        response.json().get("id"),
                    )
                )


def run_day(daemon: LiveDaemon, per_counter: int) -> list[Any]:
    outcomes: list[Any] = []
    threads = [
        threading.Thread(target=counter_day, args=(daemon, c, per_counter, outcomes))
        for c in range(COUNTERS)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=TIME_LIMIT_S)
    assert not any(t.is_alive() for t in threads)
    return outcomes


def check_day(db: Database, outcomes: list[Any], per_counter: int) -> None:
    expected = COUNTERS * per_counter
    statuses = Counter(status for _, status, _, _ in outcomes)
    assert statuses == {201: len(outcomes)}, statuses
    ids_by_key: dict[str, set[str]] = {}
    for key, _, _, dispensation_id in outcomes:
        ids_by_key.setdefault(key, set()).add(dispensation_id)
    assert len(ids_by_key) == expected
    assert all(len(ids) == 1 for ids in ids_by_key.values())  # a replay answers the same record
    assert sum(1 for _, _, replayed, _ in outcomes if replayed == "true") == sum(
        1 for c in range(COUNTERS) for s in range(per_counter) if s % 5 == 0
    )
    with db.uow(readonly=True) as uow:
        s = uow.session
        assert s.scalar(select(func.count()).select_from(DispensationRow)) == expected
        assert s.scalar(select(func.count()).select_from(DispensationLineRow)) == expected
        assert s.scalar(select(func.count()).select_from(IdempotencyKey)) == expected
        numbers = list(
            s.scalars(select(OrdonnancierEntry.number).order_by(OrdonnancierEntry.number))
        )
        stored_ids = set(s.scalars(select(DispensationRow.id)))
    assert numbers == list(range(1, expected + 1))  # one entry per line, no gap, no duplicate
    assert stored_ids == {i for ids in ids_by_key.values() for i in ids}
    report = ordonnancier.verify(db)
    assert report.ok and report.checked == expected


def per_counter(default: int) -> int:
    return int(os.environ.get("LGO_LOAD_PER_COUNTER", default))


@pytest.mark.timeout(TIME_LIMIT_S)
def test_busy_day_sqlite(tmp_path: Path) -> None:
    settings = load_settings(
        state_dir=tmp_path / "state", hardware={"pcsc_enabled": False}, api={"port": free_port()}
    )
    n = per_counter(12)
    with live_daemon(settings, COUNTERS) as daemon:
        outcomes = run_day(daemon, n)
        check_day(daemon.container.db, outcomes, n)


@pytest.mark.postgres
@pytest.mark.timeout(TIME_LIMIT_S)
def test_busy_day_postgresql(tmp_path: Path, pg_url: str) -> None:
    settings = load_settings(
        state_dir=tmp_path / "state",
        hardware={"pcsc_enabled": False},
        api={"port": free_port()},
        database={"url": pg_url},
    )
    n = per_counter(6)
    with live_daemon(settings, COUNTERS) as daemon:
        outcomes = run_day(daemon, n)
        check_day(daemon.container.db, outcomes, n)
