"""Benchmark: dispensation commit latency (one transaction: key, dispensation, line, ordonnancier
entry, outbox message) on SQLite (WAL, synchronous=FULL) and PostgreSQL (fsync on), the client CPU
and statements per dispensation, and the ordonnancier verification rate. Prints figures only;
nothing here passes or fails on time.

Run: .venv/bin/pytest tests/bench/test_dispensing_bench.py -s
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lgo.services import ordonnancier
from lgo.store import migrate
from lgo.store.db import Database
from tests.bench.measure_dispensing import dispense_many
from tests.fixtures.db import start_pg_cluster, stop_pg_cluster
from tests.fixtures.statements import captured

COMMITS = 40


def measure(db: Database, label: str) -> None:
    # Counted at the driver: the commit's hot statements bypass SQLAlchemy's cursor events.
    with captured(db) as statements:
        cpu = time.process_time()
        timings = dispense_many(db, COMMITS, "pt")
        cpu_ms = (time.process_time() - cpu) * 1000 / COMMITS
    start = time.perf_counter()
    report = ordonnancier.verify(db)
    verify_ms = (time.perf_counter() - start) * 1000
    ordered = sorted(timings)
    print(
        f"\n[bench dispensing {label}] {COMMITS} commits: median {statistics.median(timings):.1f} ms,"
        f" p90 {ordered[int(0.9 * len(ordered))]:.1f} ms, max {ordered[-1]:.1f} ms;"
        f" client CPU {cpu_ms:.2f} ms and {len(statements) / COMMITS:.1f} statements per"
        f" dispensation; verify {report.checked} entries in {verify_ms:.1f} ms (ok={report.ok})"
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
