"""Figures (never pass/fail on time): the services-socles dashboard over a busy month.

A month of a busy pharmacy (``DAYS`` × ``PER_DAY`` dispensations with their execution reports, one
national call trace per dispensation and per INSi/DMP call, one identity check and one DMP delivery
every fourth dispensation, sessions) on SQLite and PostgreSQL; then ``report(by=day)`` over the month,
``report(by=month)`` and ``totals()`` (what each Prometheus scrape computes).

Run: LGO_STATS_BENCH_PER_DAY=300 .venv/bin/pytest tests/bench/test_stats_bench.py -q -s
"""

from __future__ import annotations

import os
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import pytest

from lgo.services.stats import StatsService
from lgo.store.db import Database
from lgo.store.models import (
    DispensationRow,
    DocumentDelivery,
    DocumentRow,
    OutboxMessage,
    Patient,
    PatientIdentityCheck,
    StatsNationalCall,
    StatsSession,
)

pytestmark = pytest.mark.integration

DAYS = 30
# 100 keeps the whole suite fast; LGO_STATS_BENCH_PER_DAY=300 is a busy pharmacy (docs/stats.md).
PER_DAY = int(os.environ.get("LGO_STATS_BENCH_PER_DAY", "100"))
ROUNDS = 5
FIRST_DAY = date(2026, 4, 1)


def fill_month(db: Database) -> int:
    """Write the month; returns the number of rows."""
    rows: list[object] = []
    patients = [_patient(n) for n in range(PER_DAY)]
    rows += patients  # written first (see below)
    for day in range(DAYS):
        business = FIRST_DAY + timedelta(days=day)
        noon = datetime.combine(business, datetime.min.time(), UTC) + timedelta(hours=10)
        for n in range(PER_DAY):
            at = noon + timedelta(seconds=n * 60)
            rows += _dispensation_rows(patients[n].id, business, at, n)
        rows.append(
            StatsSession(
                id=str(uuid.uuid4()),
                kind="cps",
                opened_at=noon,
                closed_at=noon + timedelta(hours=8),
                close_reason="logout",
            )
        )
    with db.uow() as uow:
        # Parents first: these mappings have foreign keys but no relationships to order them by.
        for kind in (Patient, DispensationRow, DocumentRow):
            uow.session.add_all(r for r in rows if isinstance(r, kind))
            uow.session.flush()
        parents = (Patient, DispensationRow, DocumentRow)
        uow.session.add_all(r for r in rows if not isinstance(r, parents))
        uow.commit()
    return len(rows)


def _patient(n: int) -> Patient:
    now = datetime(2026, 3, 1, tzinfo=UTC)
    return Patient(
        id=str(uuid.uuid4()),
        created_at=now,
        updated_at=now,
        birth_name="FICTIF",
        given_names=f"N{n}",
        birth_date_raw="19800101",
        source=("vitale", "apcv", "manual")[n % 3],
        identity_status="provisional",
    )


def _dispensation_rows(patient_id: str, business: date, at: datetime, n: int) -> list[object]:
    dispensation_id = str(uuid.uuid4())
    rows: list[object] = [
        DispensationRow(
            id=dispensation_id,
            created_at=at,
            business_date=business,
            patient_id=patient_id,
            prescription_id=f"RX{n}",
            prescription_source="eprescription",
            sync_status="synced",
            degraded=False,
            pharmacist_national_id="810000000009",
            pharmacist_rpps="10000000009",
            session_kind="cps",
            session_id="s",
        ),
        OutboxMessage(
            created_at=at,
            kind="eprescription.execution",
            dispensation_id=dispensation_id,
            idempotency_key=f"lgo-exec-{dispensation_id}",
            payload="{}",
            status="delivered",
            attempts=1,
            next_attempt_at=at,
            delivered_at=at,
        ),
        StatsNationalCall(
            at=at,
            service="eprescription",
            action="execute",
            status="200",
            attempts=1,
            duration_ms=30,
        ),
    ]
    if n % 4 == 0:
        document_id = "2.25." + str(uuid.uuid4().int)
        rows += [
            PatientIdentityCheck(
                patient_id=patient_id,
                at=at,
                kind="insi_traits",
                outcome="found",
                status_before="provisional",
                status_after="recovered",
            ),
            StatsNationalCall(
                at=at, service="insi", action="search", status="200", attempts=1, duration_ms=20
            ),
            DocumentRow(
                id=document_id,
                kind="dispensing-summary",
                title="t",
                patient_id=patient_id,
                author_rpps="10000000009",
                created_at=at,
                content=b"<x/>",
            ),
            DocumentDelivery(
                document_id=document_id,
                kind="dmp.provide",
                idempotency_key=f"dmp-{document_id}",
                payload="{}",
                status="delivered",
                attempts=1,
                created_at=at,
                next_attempt_at=at,
                delivered_at=at,
            ),
            StatsNationalCall(
                at=at, service="dmp", action="provide", status="200", attempts=1, duration_ms=80
            ),
        ]
    return rows


def figures(name: str, call: Callable[[], object]) -> None:
    durations = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        call()
        durations.append((time.perf_counter() - started) * 1000)
    print(
        f"\n{name}: median {statistics.median(durations):.0f} ms, "
        f"max {max(durations):.0f} ms, n={ROUNDS}"
    )


def test_dashboard_over_a_busy_month(any_db: Database) -> None:
    started = time.perf_counter()
    written = fill_month(any_db)
    print(
        f"\n[{any_db.dialect}] {written} rows written in {time.perf_counter() - started:.1f} s "
        f"({DAYS} days × {PER_DAY} dispensations)"
    )
    service = StatsService(any_db)
    last = FIRST_DAY + timedelta(days=DAYS - 1)
    report = service.report(FIRST_DAY, last, "day")
    assert (
        report.totals["eprescription.dispensed"] == DAYS * PER_DAY
    )  # the bench measured the truth
    assert report.totals["dmp.delivered"] == DAYS * PER_DAY // 4
    figures(
        f"[{any_db.dialect}] report by day over {DAYS} days",
        lambda: service.report(FIRST_DAY, last, "day"),
    )
    figures(f"[{any_db.dialect}] report by month", lambda: service.report(FIRST_DAY, last, "month"))
    figures(f"[{any_db.dialect}] totals (one Prometheus scrape)", service.totals)
