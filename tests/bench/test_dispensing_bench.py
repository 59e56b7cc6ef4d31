"""Benchmark: dispensation commit latency (one transaction: key, dispensation, line, ordonnancier
entry, outbox message) on SQLite (WAL, synchronous=FULL) and PostgreSQL (fsync on), and the
ordonnancier verification rate. Prints figures only; nothing here passes or fails on time.

Run: .venv/bin/pytest tests/bench/test_dispensing_bench.py -s
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lgo.services import ordonnancier
from lgo.services.prescriptions import InMemoryCatalog
from lgo.store import migrate
from lgo.store.db import Database
from tests.fixtures.db import start_pg_cluster, stop_pg_cluster
from tests.fixtures.dispensing import (
    LIST_I_PRODUCT,
    dispensation_input,
    dispensing_service,
    make_patient,
    paper,
    pharmacist,
)

COMMITS = 40


def measure(db: Database, label: str) -> None:
    service = dispensing_service(db, InMemoryCatalog([LIST_I_PRODUCT]))
    patient = make_patient(db)
    timings = []
    for i in range(COMMITS):
        data = dispensation_input(patient, paper(f"BENCH{i:010d}", eprescription=True))
        start = time.perf_counter()
        service.dispense(f"bench-key-{i:05d}", data, pharmacist(), degraded=False)
        timings.append((time.perf_counter() - start) * 1000)
    start = time.perf_counter()
    report = ordonnancier.verify(db)
    verify_ms = (time.perf_counter() - start) * 1000
    ordered = sorted(timings)
    print(
        f"\n[bench dispensing {label}] {COMMITS} commits: median {statistics.median(timings):.1f} ms,"
        f" p90 {ordered[int(0.9 * len(ordered))]:.1f} ms, max {ordered[-1]:.1f} ms;"
        f" verify {report.checked} entries in {verify_ms:.1f} ms (ok={report.ok})"
    )


@pytest.fixture
def pg_fsync_url() -> Iterator[str]:
    cluster, root = start_pg_cluster(fsync=True)
    try:
        yield cluster.new_database()
    finally:
        stop_pg_cluster(cluster, root)


def test_bench_commit_sqlite(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'bench.sqlite3'}")
    migrate.upgrade(db)
    try:
        measure(db, "sqlite synchronous=FULL")
    finally:
        db.dispose()


@pytest.mark.postgres
def test_bench_commit_postgres(pg_fsync_url: str) -> None:
    db = Database(pg_fsync_url)
    migrate.upgrade(db)
    try:
        measure(db, "postgresql fsync=on")
    finally:
        db.dispose()
