"""The cost of one dispensation on SQLite (issue #20), each figure next to its floor from the same run.

- ``sqlite``: the service's commit (no HTTP) against a raw ``BEGIN IMMEDIATE; INSERT; COMMIT`` with
  the daemon's pragmas (WAL, synchronous=FULL).
- ``dispensing``: ``POST /v1/dispensations`` to a real counter daemon on SQLite (the real container
  and app served by the daemon's own server in its own process, as in the PostgreSQL bench), one
  request after the other. The floor is the same work without lgo's code: the same request body
  POSTed to a bare FastAPI app served by uvicorn in its own process, plus a raw ``BEGIN IMMEDIATE``
  transaction writing as many rows as a dispensation does (counted in the daemon's database after
  the run), with the daemon's pragmas. The daemon's CPU per dispensation is utime+stime of its
  process (every thread: the request, the outbox worker, the documents feed) over the timed
  requests; its floor is the bare server's CPU per request plus the raw transaction's CPU.

The child entry point of the bare server: ``python -m tests.bench.measure_dispensing bare PORT``.
"""

from __future__ import annotations

import http.client
import itertools
import os
import sqlite3
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.bench.measures import ROOT, Figure, pct

# Rows a dispensation updates besides those it inserts: the key's stored answer and the
# ordonnancier head (tests/integration/dispensing/test_dispensing_statements.py pins them).
UPDATED_ROWS = 2
INSERTED_TABLES = (
    "idempotency_keys",
    "prescriptions",
    "dispensations",
    "dispensation_lines",
    "ordonnancier_entries",
    "narcotics_register",
    "outbox_messages",
)
WARM = 10
PRAGMAS = ("busy_timeout=30000", "journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON")


# ---------------------------------------------------------------- the service's commit


def raw_sqlite_commit_rate(path: Path, commits: int) -> float:
    """BEGIN IMMEDIATE; INSERT; COMMIT with the daemon's pragmas (WAL, synchronous=FULL)."""
    con = sqlite3.connect(path, isolation_level=None)
    for pragma in PRAGMAS:
        con.execute(f"PRAGMA {pragma}")
    con.execute("CREATE TABLE IF NOT EXISTS raw (id INTEGER PRIMARY KEY, payload TEXT)")
    start = time.perf_counter()
    for i in range(commits):
        con.execute("BEGIN IMMEDIATE")
        con.execute("INSERT INTO raw (payload) VALUES (?)", (f"row {i}",))
        con.execute("COMMIT")
    elapsed = time.perf_counter() - start
    con.close()
    return commits / elapsed


def dispense_many(db: Any, count: int, tag: str, service: Any = None) -> list[float]:
    """``count`` sequential dispensations (one commit each) on ``db``; durations in ms."""
    from lgo.services.prescriptions import InMemoryCatalog
    from tests.fixtures.dispensing import (
        LIST_I_PRODUCT,
        dispensation_input,
        dispensing_service,
        make_patient,
        paper,
        pharmacist,
    )

    service = service or dispensing_service(db, InMemoryCatalog([LIST_I_PRODUCT]))
    patient = make_patient(db)
    who = pharmacist(f"comptoir-{tag}")
    inputs = [
        dispensation_input(
            patient, paper(f"B{tag}X{i:08d}".upper().ljust(12, "0"), eprescription=True)
        )
        for i in range(count)
    ]
    durations = []
    for i, data in enumerate(inputs):
        start = time.perf_counter()
        service.dispense(f"bench-{tag}-{i:06d}", data, who, degraded=False)
        durations.append((time.perf_counter() - start) * 1000)
    return durations


def sqlite_commit_rate(tmp: Path, commits: int) -> list[Figure]:
    from lgo.store import migrate
    from lgo.store.db import Database

    db = Database(f"sqlite:///{tmp / 'commit.sqlite3'}")
    migrate.upgrade(db)
    try:
        durations = dispense_many(db, commits, "sq")
    finally:
        db.dispose()
    rate = 1000 * len(durations) / sum(durations)
    raw = raw_sqlite_commit_rate(tmp / "raw.sqlite3", commits)
    # A rate: the floor is the ceiling here, so the ratio is floor / ours (≥ 1 means slower).
    return [
        Figure(
            "Dispensation commit time (SQLite WAL, synchronous=FULL)",
            1000 / rate,
            "ms/commit",
            "raw BEGIN IMMEDIATE + INSERT + COMMIT, same pragmas",
            1000 / raw,
            f"{rate:.0f} dispensations/s vs {raw:.0f} raw commits/s, n={commits}",
            {"dispensations_per_s": rate, "raw_commits_per_s": raw},
        )
    ]


# ---------------------------------------------------------------- over HTTP, one daemon


def serve_bare(port: int) -> None:
    """The floor's server: a bare FastAPI route that parses the same JSON body, under uvicorn."""
    import uvicorn
    from fastapi import FastAPI

    app = FastAPI()

    @app.post("/v1/dispensations", status_code=201)
    def dispense(body: dict[str, Any]) -> dict[str, bool]:
        return {"ok": bool(body)}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _start_bare(tmp: Path) -> tuple[subprocess.Popen[bytes], int]:
    from tests.bench.measure_postgres import _free_port

    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.bench.measure_dispensing", "bare", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=(tmp / "bare.log").open("wb"),
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            con = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            con.request("POST", "/v1/dispensations", body=b"{}")
            con.getresponse().read()
            con.close()
            return process, port
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("bare FastAPI server not listening after 60 s")


def _post(con: http.client.HTTPConnection, body: bytes, headers: dict[str, str]) -> int:
    con.request("POST", "/v1/dispensations", body=body, headers=headers)
    response = con.getresponse()
    response.read()
    return response.status


def _timed_posts(
    port: int, bodies: list[bytes], headers: list[dict[str, str]], expect: int
) -> list[float]:
    con = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    durations = []
    try:
        for body, header in zip(bodies, headers, strict=True):
            start = time.perf_counter()
            status = _post(con, body, header)
            durations.append((time.perf_counter() - start) * 1000)
            if status != expect:
                raise RuntimeError(f"POST answered {status}, expected {expect}")
    finally:
        con.close()
    return durations


def _rows_per_dispensation(path: Path, dispensations: int) -> float:
    con = sqlite3.connect(path)
    try:
        inserted = sum(
            con.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in INSERTED_TABLES
        )
    finally:
        con.close()
    return inserted / dispensations + UPDATED_ROWS


def raw_transactions(path: Path, rows: int, count: int) -> tuple[list[float], float]:
    """``count`` raw transactions of ``rows`` row writes (inserts, then a head row updated last),
    BEGIN IMMEDIATE, the daemon's pragmas; (durations in ms, CPU seconds)."""
    con = sqlite3.connect(path, isolation_level=None)
    for pragma in PRAGMAS:
        con.execute(f"PRAGMA {pragma}")
    con.execute("CREATE TABLE IF NOT EXISTS raw (id INTEGER PRIMARY KEY, payload TEXT)")
    con.execute("CREATE TABLE IF NOT EXISTS head (id INTEGER PRIMARY KEY, n INTEGER)")
    con.execute("INSERT OR IGNORE INTO head VALUES (1, 0)")
    payload = "x" * 300  # about a dispensation line's width
    durations = []
    cpu = time.process_time()
    for _ in range(count):
        start = time.perf_counter()
        con.execute("BEGIN IMMEDIATE")
        con.executemany("INSERT INTO raw (payload) VALUES (?)", [(payload,)] * (rows - 1))
        con.execute("UPDATE head SET n = n + 1 WHERE id = 1")
        con.execute("COMMIT")
        durations.append((time.perf_counter() - start) * 1000)
    cpu = time.process_time() - cpu
    con.close()
    return durations, cpu


def http_dispensation_sqlite(tmp: Path, count: int) -> list[Figure]:
    """One counter daemon on SQLite: request latency and daemon CPU per dispensation.

    Ours, the bare server and the raw transactions run in alternated blocks, so that the machine's
    drift (this one's CPU time for the same work moves by ±15 % from one minute to the next) falls
    on both sides: the CPU figures are the medians of the blocks, their spread in the note."""
    from lgo.store import migrate
    from lgo.store.db import Database
    from tests.bench.measure_postgres import (
        dispensation_body,
        make_patients,
        start_daemons,
        stop_daemons,
    )

    path = tmp / "http-dispensing.sqlite3"
    url = f"sqlite:///{path}"
    db = Database(url)
    migrate.upgrade(db)
    db.dispose()
    today = datetime.now(UTC).date().isoformat()
    bodies = [dispensation_body(p, today) for p in make_patients(url, WARM + count)]
    (daemon,) = start_daemons(url, 1, tmp)
    bare, bare_port = _start_bare(tmp)
    blocks = _blocks(count)
    ours: list[float] = []
    bare_ms: list[float] = []
    raw_ms: list[float] = []
    ours_cpu: list[float] = []
    floor_cpu: list[float] = []
    try:
        headers = [
            {
                "Authorization": f"Bearer {daemon.token}",
                "Idempotency-Key": f"bench-http-{i:08d}",
                "Content-Type": "application/json",
            }
            for i in range(WARM + count)
        ]
        plain = [{"Content-Type": "application/json"}] * len(bodies)
        _timed_posts(daemon.port, bodies[:WARM], headers[:WARM], 201)
        _timed_posts(bare_port, bodies[:WARM], plain[:WARM], 201)
        rows = _rows_per_dispensation(path, WARM)
        for start, end in blocks:
            time.sleep(0.5)  # the previous block's after-commit work ends before the CPU is read
            cpu = daemon.cpu_s()
            ours += _timed_posts(daemon.port, bodies[start:end], headers[start:end], 201)
            time.sleep(0.5)  # and this block's after-commit work is counted
            ours_cpu.append((daemon.cpu_s() - cpu) / (end - start))
            cpu = _proc_cpu_s(bare.pid)
            bare_ms += _timed_posts(bare_port, bodies[start:end], plain[start:end], 201)
            bare_cpu = (_proc_cpu_s(bare.pid) - cpu) / (end - start)
            durations, raw_cpu = raw_transactions(tmp / "raw-tx.sqlite3", round(rows), end - start)
            raw_ms += durations
            floor_cpu.append(bare_cpu + raw_cpu / (end - start))
    finally:
        stop_daemons([daemon])
        bare.terminate()
        bare.wait(timeout=30)
    load = Path("/proc/loadavg").read_text().split()[0]
    floor = statistics.median(bare_ms) + statistics.median(raw_ms)
    spread = ", ".join(
        f"{1000 * o:.2f}/{1000 * f:.2f}" for o, f in zip(ours_cpu, floor_cpu, strict=True)
    )
    return [
        Figure(
            "Dispensation over HTTP, SQLite (one daemon, list I + stupéfiant lines)",
            statistics.median(ours),
            "ms",
            f"bare FastAPI POST of the same body ({statistics.median(bare_ms):.2f} ms) + raw "
            f"BEGIN IMMEDIATE of {round(rows)} row writes ({statistics.median(raw_ms):.2f} ms)",
            floor,
            f"p99 {pct(ours, 0.99):.1f} ms, n={count}, {rows:.1f} rows/dispensation, load {load}",
            {"p99_ms": pct(ours, 0.99), "rows": rows, "load": float(load)},
        ),
        Figure(
            "Daemon CPU per dispensation (SQLite, over HTTP, after-commit work included)",
            statistics.median(ours_cpu) * 1000,
            "ms",
            "bare FastAPI server CPU per request + raw transaction CPU",
            statistics.median(floor_cpu) * 1000,
            f"median of {len(blocks)} alternated blocks (ours/floor ms per block: {spread}), "
            f"n={count}, load {load}",
            {"blocks": len(blocks), "min_ms": 1000 * min(ours_cpu), "max_ms": 1000 * max(ours_cpu)},
        ),
    ]


def _blocks(count: int, size: int = 100) -> list[tuple[int, int]]:
    """[start, end) indexes of the timed bodies (after the warm-up), in blocks of about ``size``
    (at least 3 blocks when there are that many bodies)."""
    n = max(1, min(count, max(3, round(count / size))))
    edges = [WARM + round(i * count / n) for i in range(n + 1)]
    return list(itertools.pairwise(edges))


def _proc_cpu_s(pid: int) -> float:
    from tests.bench.measure_postgres import _proc_cpu_s as proc_cpu_s

    return proc_cpu_s(pid)


if __name__ == "__main__" and sys.argv[1:2] == ["bare"]:
    os.environ.setdefault("LGO_LOGGING__LEVEL", "WARNING")
    serve_bare(int(sys.argv[2]))
