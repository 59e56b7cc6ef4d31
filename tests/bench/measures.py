"""The measurements of the benchmark runner (tests/bench/run.py), each next to its physical floor.

Every function returns a list of :class:`Figure`: the measured value, the floor measured in the same
run on the same machine, and their ratio. Nothing here passes or fails on time.
"""

from __future__ import annotations

import os
import sqlite3
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Figure:
    name: str
    value: float
    unit: str
    floor_name: str = ""
    floor: float | None = None
    note: str = ""
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.floor is None or self.floor == 0:
            return None
        return self.value / self.floor

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": self.ratio}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def timed(call: Callable[[], object], n: int) -> list[float]:
    """Durations in ms of ``n`` calls."""
    out = []
    for _ in range(n):
        start = time.perf_counter()
        call()
        out.append((time.perf_counter() - start) * 1000)
    return out


# ---------------------------------------------------------------- database


def raw_sqlite_commit_rate(path: Path, commits: int) -> float:
    """BEGIN IMMEDIATE; INSERT; COMMIT with the daemon's pragmas (WAL, synchronous=FULL)."""
    con = sqlite3.connect(path, isolation_level=None)
    for pragma in ("busy_timeout=30000", "journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON"):
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


# ---------------------------------------------------------------- API


def api_overhead(tmp: Path, requests: int) -> list[Figure]:
    """A no-op route behind the whole lgo stack (Host/Origin guard, request context, metrics,
    bearer-token check in the database) vs the same route on a bare FastAPI app, same process."""
    from fastapi import Depends, FastAPI
    from fastapi.testclient import TestClient

    from lgo.api.app import create_app
    from lgo.api.deps import require_counter
    from lgo.bootstrap.container import Container
    from lgo.core.settings import load_settings
    from lgo.services.counters import add_counter
    from lgo.store import migrate

    settings = load_settings(state_dir=tmp / "api-state", hardware={"pcsc_enabled": False})
    container = Container(settings)
    migrate.upgrade(container.db)
    _, token = add_counter(container.db, "bench")
    app = create_app(settings, container)

    def noop() -> dict[str, bool]:
        return {"ok": True}

    app.add_api_route("/v1/bench-noop", noop, dependencies=[Depends(require_counter)])
    app.router.routes.insert(0, app.router.routes.pop())  # before the counter page's "/" mount
    bare = FastAPI()
    bare.add_api_route("/noop", noop)
    base = f"http://127.0.0.1:{settings.api.port}"
    headers = {"Authorization": f"Bearer {token}"}
    with (
        TestClient(app, base_url=base, headers=headers) as ours,
        TestClient(bare, base_url=base) as plain,
    ):
        for client, path in ((ours, "/v1/bench-noop"), (plain, "/noop")):
            assert client.get(path).status_code == 200
        ours_ms = timed(lambda: ours.get("/v1/bench-noop"), requests)
        bare_ms = timed(lambda: plain.get("/noop"), requests)
        health_ms = timed(lambda: ours.get("/v1/health"), max(20, requests // 10))
    floor = statistics.median(bare_ms)
    return [
        Figure(
            "API request, no-op route behind the lgo stack (guard, auth, metrics)",
            statistics.median(ours_ms),
            "ms",
            "same route on a bare FastAPI app (TestClient)",
            floor,
            f"p99 {pct(ours_ms, 0.99):.2f} ms, n={requests}",
        ),
        Figure(
            "API GET /v1/health (every component probe)",
            statistics.median(health_ms),
            "ms",
            "same bare route",
            floor,
            f"n={len(health_ms)}",
        ),
    ]


# ---------------------------------------------------------------- outbox


def _clone_prescriptions(sim: Any, source: str, count: int, run: str) -> list[str]:
    import copy

    from hwsim.national.eprescription import store_of

    store = store_of(sim.state)
    template = store.prescriptions[source]
    ids = []
    for i in range(count):
        pid = f"01{run}{i:08d}"[:18].ljust(18, "0")
        clone = copy.deepcopy(template)
        clone.prescription_id = pid
        for n, line in enumerate(clone.lines, start=1):
            line.line_id = f"{pid}-{n}"
        store.prescriptions[pid] = clone
        ids.append(pid)
    return ids


class _Recording:
    """The real client, keeping the bundles it sends (to replay them raw)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.sent: list[tuple[str, str, dict[str, Any]]] = []

    def fetch(self, prescription_id: str, *, author_rpps: str) -> Any:
        return self.client.fetch(prescription_id, author_rpps=author_rpps)

    def record_execution(self, report: Any) -> Any:
        from lgo.national.eprescription import execution_bundle

        self.sent.append((report.idempotency_key, report.pharmacist_rpps, execution_bundle(report)))
        return self.client.record_execution(report)


def outbox_drain(sim: Any, tmp: Path, messages: int) -> list[Figure]:
    """Queued execution reports delivered by the outbox worker vs raw POSTs of the same bundles."""
    import httpx

    from hwsim.national.eprescription import store_of
    from lgo.core.events import EventBus
    from lgo.domain.dispensing import InterventionKind, LineRequest
    from lgo.national.eprescription import EPrescriptionClient
    from lgo.services.dispensing import DispensingService, LineInput
    from lgo.services.outbox import OutboxPolicy, OutboxWorker
    from lgo.services.prescriptions import InMemoryCatalog
    from lgo.store import migrate
    from lgo.store.db import Database
    from tests.fixtures.dispensing import dispensation_input, make_patient_for, pharmacist

    sim.reset()
    run = uuid.uuid4().hex[:6].upper().replace("0", "A")
    ids = _clone_prescriptions(sim, "01S2TBPZ2JCNZZYGHZ", messages, run)
    db = Database(f"sqlite:///{tmp / 'outbox.sqlite3'}")
    migrate.upgrade(db)
    client = EPrescriptionClient(sim.url("/eprescription/fhir"), timeout_s=5)
    sender = _Recording(client)
    service = DispensingService(db, EventBus(), InMemoryCatalog(), eprescription=client)
    patient = make_patient_for(db, "01S2TBPZ2JCNZZYGHZ")  # the clones' patient
    who = pharmacist()
    line = LineInput(LineRequest(1, InterventionKind.UNCHANGED, 6), cip13="3400999999014", boxes=2)
    for i, pid in enumerate(ids):
        view = service.load_prescription(pid, author_rpps=who.rpps)
        data = dispensation_input(patient, view.prescription, line)
        service.dispense(f"outbox-{run}-{i}", data, who, degraded=False)
    worker = OutboxWorker(db, EventBus(), sender, policy=OutboxPolicy(batch=50))
    start = time.perf_counter()
    while worker.run_once():
        pass
    drained = time.perf_counter() - start
    delivered = store_of(sim.state).executions()
    # Raw floor: the same bundles, fresh store (same ids), plain httpx on one connection.
    sim.reset()
    _clone_prescriptions(sim, "01S2TBPZ2JCNZZYGHZ", messages, run)
    url = sim.url("/eprescription/fhir/")
    with httpx.Client(timeout=5) as raw:
        start = time.perf_counter()
        for key, _rpps, bundle in sender.sent:
            response = raw.post(
                url,
                json=bundle,
                headers={"Idempotency-Key": key, "Content-Type": "application/fhir+json"},
            )
            response.raise_for_status()
        raw_s = time.perf_counter() - start
    client.close()
    db.dispose()
    ours_rate, raw_rate = delivered / drained, len(sender.sent) / raw_s
    return [
        Figure(
            "Outbox drain (claim, report, POST, receipt, mark delivered)",
            1000 / ours_rate,
            "ms/message",
            "raw httpx POST of the same bundles to the simulator",
            1000 / raw_rate,
            f"{ours_rate:.0f} msg/s vs raw {raw_rate:.0f} msg/s; {delivered}/{messages} delivered",
            {"drain_per_s": ours_rate, "raw_per_s": raw_rate, "delivered": float(delivered)},
        )
    ]


# ---------------------------------------------------------------- daemon process


def daemon_start(tmp: Path, rounds: int) -> list[Figure]:
    """``lgo serve`` start to READY=1 (sd_notify), migrated SQLite, PC/SC off."""
    from tests.integration.deploy.daemon import Daemon, clean_env

    lgo = Path(sys.executable).with_name("lgo")
    env = {
        **clean_env(),
        "LGO_STATE_DIR": str(tmp / "daemon-state"),
        "LGO_LOGGING__LEVEL": "WARNING",
    }
    subprocess.run([str(lgo), "migrate"], env=env, check=True, capture_output=True, timeout=120)
    starts = []
    for _ in range(rounds):
        start = time.perf_counter()
        daemon = Daemon(lgo, tmp, env)
        daemon.wait_ready()
        starts.append((time.perf_counter() - start) * 1000)
        daemon.stop()
    imports = "import fastapi, uvicorn, sqlalchemy, pydantic, lxml.etree, httpx"
    floor = timed(lambda: subprocess.run([sys.executable, "-c", imports], check=True), rounds)
    return [
        Figure(
            "Daemon start to ready (lgo serve → READY=1)",
            statistics.median(starts),
            "ms",
            "python start + import of the framework libraries",
            statistics.median(floor),
            f"n={rounds}",
        )
    ]


def start_memory(tmp: Path, dispensations: int) -> subprocess.Popen[str]:
    """Start the memory child (a daemon container doing ``dispensations`` commits)."""
    return subprocess.Popen(
        [sys.executable, "-m", "tests.bench.memory_child", str(tmp / "mem"), str(dispensations)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "LGO_LOGGING__LEVEL": "WARNING"},
    )


def memory(child: subprocess.Popen[str], dispensations: int) -> list[Figure]:
    """RSS of the child at rest, then after its ``dispensations`` commits."""
    out, err = child.communicate(timeout=900)
    if child.returncode != 0:
        raise RuntimeError(f"memory child failed: {err[-2000:]}")
    values = dict(line.split("=", 1) for line in out.split() if "=" in line)
    bare, rest, after = (float(values[k]) for k in ("bare_mib", "rest_mib", "after_mib"))
    return [
        Figure(
            "Memory at rest (container + API app built, migrated SQLite)",
            rest,
            "MiB",
            "python with the framework libraries imported",
            bare,
        ),
        Figure(
            f"Memory after {dispensations} dispensations",
            after,
            "MiB",
            "memory at rest",
            rest,
            f"{float(values['rate']):.0f} dispensations/s in the child",
        ),
    ]
