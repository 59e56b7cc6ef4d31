"""PostgreSQL in the pharmacy's real shape: N counters, each its own daemon process, one database.

Each counter is a separate Python process that builds the daemon's real composition root
(``Container``) and serves the real app with ``lgo.api.server.build_server`` on 127.0.0.1 (the same
uvicorn server ``lgo serve`` runs, so the same threadpool and connection pool). The only difference
from ``lgo serve``: a pharmacist CPS session is opened in the process, since there is no card
reader here. Every daemon has its own counter token and its own pool; all share one PostgreSQL 15
cluster with fsync on.

The load: dispensations of a list I line and a stupéfiant line (ordonnancier entries and a narcotics
register withdrawal in the same transaction), one fresh patient each; every counter waits on a
barrier, then sends its next request as soon as the previous one returns.

Evidence for what bounds each figure, measured during the timed rush only:
- CPU: utime+stime of the daemon processes (/proc/<pid>/stat, the figures getrusage reports) and
  of every PostgreSQL process, the postmaster and all it forked, ended ones included (each live
  one's /proc/<pid>/schedstat, exact where stat's clock ticks are not, and the postmaster's reaped
  children's total), minus the sampler's own backend, per dispensation and as a share of the
  machine's cores;
- lock waits: ``pg_stat_activity`` sampled every 10 ms from a separate connection (wait_event_type:
  wait_event of the active backends of the database, the statement a lock waiter is blocked in,
  and what the transaction holding the lock is doing meanwhile, found with ``pg_blocking_pids``);
  a backend ``idle in transaction``, or ``active`` on ClientRead (between two messages of one
  exchange, e.g. a pipeline), is waiting for its daemon;
- the ordonnancier head, daemon side: each daemon logs, per dispensation, the time from the
  answer of the head's ``SELECT … FOR UPDATE`` (the row lock is granted) to its COMMIT returning
  (the lock is released within it), and the sum over the rush gives the head's occupancy: near
  100 %, the head is the bound;
- WAL sync: ``pg_stat_wal`` (wal_sync, wal_sync_time with track_wal_io_timing on);
- connections: ``pg_stat_database.sessions`` (connections opened) and the backend count sampled.

After each level: no error, no loss (every acknowledged dispensation is in the database), no
duplicate, ordonnancier numbers gapless and the chain verified with ``ordonnancier.verify``.

``--only pg-day``: 16 counters × 1 000 dispensations, same checks, progress printed, bounded in time.
The child entry point: ``python -m tests.bench.measure_postgres serve URL PORT STATE_DIR``.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter as Tally
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.bench.measures import ROOT, Figure, pct

LEVELS = (1, 8, 16)
QUICK_LEVELS = (1, 2)
PER_COUNTER = {1: 100, 8: 40, 16: 30}
QUICK_PER_COUNTER = 5
DAY_COUNTERS, DAY_PER_COUNTER, DAY_LIMIT_S = 16, 1000, 1800.0
SAMPLE_EVERY_S = 0.01
READY_LIMIT_S = 120.0
# Enough for 16 daemons × the pool's size plus the bench's own connections.
MAX_CONNECTIONS = 200
CLOCK_TICK = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- the counter daemon (child)


def _narcotic() -> Any:
    from lgo.domain.products import Pack, Product, RegulatoryList
    from tests.fixtures.dispensing import cip13

    code = cip13("4000099")
    return Product(
        code,
        "MORPHINE TEST LP 10 mg",
        RegulatoryList.STUPEFIANT,
        molecule="morphine-test",
        packs=(Pack(code, 14, 900),),
    )


def serve_counter(url: str, port: int, state_dir: Path) -> None:
    """One counter's daemon: the real container and app, served by the daemon's own server."""
    from lgo.api.server import build_server
    from lgo.bootstrap.container import Container
    from lgo.bootstrap.dispensing import part_of
    from lgo.core.logs import configure_logging
    from lgo.core.settings import load_settings
    from tests.fixtures.dispensing import LIST_I_PRODUCT, open_pharmacist_session

    settings = load_settings(
        mode="bench",
        state_dir=state_dir,
        database={"url": url},
        api={"port": port},
        hardware={"pcsc_enabled": False},
        logging={"level": os.environ.get("LGO_BENCH_LOG_LEVEL", "INFO")},
    )
    # As `lgo serve` does: the production default (INFO, one JSON line per event) to stderr.
    configure_logging(settings.logging.level, settings.logging.json_output)
    container = Container(settings)
    if container.db.dialect == "postgresql":  # SQLite has no row lock to time
        _record_head_holds(container.db, state_dir / HEAD_HOLDS)
    catalog = part_of(container).catalog
    catalog.add(LIST_I_PRODUCT)
    catalog.add(_narcotic())
    open_pharmacist_session(container)
    build_server(settings, container).run()


# One line per dispensation that took the head: "<wall time at COMMIT returned> <held ms>".
HEAD_HOLDS = "head-holds.txt"
_HEAD_LOCKED = "bench_head_locked"
_HEAD_MESSAGE = "bench_head_message"


def _record_head_holds(db: Any, path: Path) -> None:
    """Time each dispensation's hold of the ordonnancier head, from the daemon's side: from the
    ``FOR UPDATE``'s answer (the lock granted; waiting for it is not holding it) to the COMMIT
    returning (the row lock is released within that). PostgreSQL's server-side append
    (``ordonnancier_append``, in the COMMIT's message after the writes that need no number) locks
    the head inside that message: the daemon cannot see the lock granted, so the message's round
    trip is recorded instead, marked ``m`` (an upper bound of the hold: it includes the wait for
    the lock and the writes before it)."""
    from sqlalchemy import event

    from lgo.store.db import Transaction

    path.parent.mkdir(parents=True, exist_ok=True)
    out = path.open("a", buffering=1)

    def locked(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "ordonnancier_head" in statement and "FOR UPDATE" in statement:
            conn.info[_HEAD_LOCKED] = time.perf_counter()

    event.listen(db.engine, "after_cursor_execute", locked)
    commit, leave = Transaction.commit, Transaction.__exit__

    def timed_commit(self: Any) -> None:
        # The COMMIT's message (lgo.store.db.write_with_commit), sent on the driver's cursor:
        # the append is there under its prepared name (lgo_select_ordonnancier_append_…).
        message = self.connection.info.get("lgo_with_commit") or []
        if any("ordonnancier_append" in statement for statement in message):
            self.connection.info[_HEAD_MESSAGE] = time.perf_counter()
        commit(self)
        since = self.connection.info.pop(_HEAD_LOCKED, None)
        if since is not None:
            out.write(f"{time.time():.6f} {(time.perf_counter() - since) * 1000:.3f}\n")
        sent = self.connection.info.pop(_HEAD_MESSAGE, None)
        if sent is not None:
            out.write(f"{time.time():.6f} {(time.perf_counter() - sent) * 1000:.3f} m\n")

    def timed_exit(self: Any, *exc: Any) -> None:
        self.connection.info.pop(_HEAD_LOCKED, None)  # a rolled-back transaction: not a hold
        self.connection.info.pop(_HEAD_MESSAGE, None)
        leave(self, *exc)

    Transaction.commit = timed_commit  # type: ignore[method-assign]
    Transaction.__exit__ = timed_exit  # type: ignore[method-assign]


# ---------------------------------------------------------------- the parent side


@dataclass
class CounterDaemon:
    name: str
    token: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path  # the daemon's stderr (its WARNING and ERROR events)
    state: Path

    def head_holds(
        self, since: float, until: float, message: bool = False
    ) -> list[tuple[float, float]]:
        """(COMMIT returned at, held ms) of the dispensations committed between two wall-clock
        times; ``message``: the server-side append's COMMIT message round trips instead."""
        path = self.state / HEAD_HOLDS
        if not path.exists():
            return []
        holds = []
        for line in path.read_text().splitlines():
            at, held, *kind = line.split()
            if since <= float(at) <= until and bool(kind) == message:
                holds.append((float(at), float(held)))
        return holds

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)

    def cpu_s(self) -> float:
        return _proc_cpu_s(self.process.pid)


def _proc_cpu_s(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds; 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICK


# /proc/<pid>/schedstat's first field: the time the task ran, in ns (CONFIG_SCHED_INFO).
SCHEDSTAT = Path("/proc/self/schedstat").exists()


def _task_cpu_s(pid: int) -> float:
    """CPU of a single-threaded process (PostgreSQL's are), exact: utime+stime are whole clock
    ticks (10 ms), and over a rush of 300-480 dispensations the truncations of the busy processes
    put the sum 0.16 ms per dispensation low to 0.08 high against this; 0 once gone."""
    if not SCHEDSTAT:
        return _proc_cpu_s(pid)
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e9
    except (FileNotFoundError, ProcessLookupError):
        return 0.0


def _reaped_cpu_s(postmaster: int) -> float:
    """CPU of the postmaster's children that ended and were reaped (cutime + cstime): a backend
    closed or an autovacuum worker that ran during the rush is gone from /proc by its end."""
    fields = Path(f"/proc/{postmaster}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[13]) + int(fields[14])) / CLOCK_TICK


def _postgres_cpu_s(data_dir: Path) -> float:
    """CPU of the postmaster and every process it forked so far (backends, WAL writer,
    checkpointer, autovacuum workers), the ended ones included: the live ones read one by one,
    the reaped ones from the postmaster's children's total. A difference of two readings counts a
    process that started, ended, or both during the rush for what it ran in between."""
    postmaster = int((data_dir / "postmaster.pid").read_text().split()[0])
    while True:  # a child reaped during the scan would count twice or not at all: scan again
        reaped = _reaped_cpu_s(postmaster)
        total = _task_cpu_s(postmaster) + sum(_task_cpu_s(pid) for pid in _children(postmaster))
        if _reaped_cpu_s(postmaster) == reaped:
            return total + reaped


def _children(parent: int) -> list[int]:
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue
        if ppid == parent:
            pids.append(int(stat.parent.name))
    return pids


def _free_port() -> int:
    from tests.integration.deploy.daemon import free_port

    return free_port()


def start_daemons(url: str, count: int, tmp: Path) -> list[CounterDaemon]:
    from lgo.services.counters import add_counter
    from lgo.store.db import Database

    db = Database(url)
    try:
        tokens = [add_counter(db, f"comptoir-{i + 1:02d}")[1] for i in range(count)]
    finally:
        db.dispose()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LGO_", "NOTIFY_", "LISTEN_"))}
    env |= {"LGO_LOGGING__LEVEL": "WARNING", "LGO_NATIONAL__BASE_URL": "http://127.0.0.1:9"}
    daemons = []
    for i, token in enumerate(tokens):
        port = _free_port()
        state = tmp / f"counter-{i + 1:02d}"
        log = tmp / f"counter-{i + 1:02d}.log"
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.bench.measure_postgres",
                "serve",
                url,
                str(port),
                str(state),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log.open("wb"),
        )
        daemons.append(CounterDaemon(f"comptoir-{i + 1:02d}", token, port, process, log, state))
    for daemon in daemons:
        _wait_ready(daemon)
    return daemons


def _wait_ready(daemon: CounterDaemon) -> None:
    deadline = time.monotonic() + READY_LIMIT_S
    while time.monotonic() < deadline:
        if daemon.process.poll() is not None:
            raise RuntimeError(f"{daemon.name} died: {daemon.log_tail()}")
        try:
            con = daemon.connection()
            con.request("GET", "/v1/health", headers={"Authorization": f"Bearer {daemon.token}"})
            con.getresponse().read()
            con.close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{daemon.name} not listening after {READY_LIMIT_S:.0f} s")


def stop_daemons(daemons: list[CounterDaemon]) -> None:
    for daemon in daemons:
        if daemon.process.poll() is None:
            daemon.process.terminate()
    for daemon in daemons:
        try:
            daemon.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            daemon.process.kill()
            daemon.process.wait(timeout=30)


def make_patients(url: str, count: int) -> list[str]:
    """``count`` fictitious patients: one per dispensation, so every paper prescription is new
    (its local id derives from the body) and no rule links two of them."""
    from lgo.store.db import Database
    from tests.fixtures.dispensing import make_patient

    db = Database(url)
    try:
        return [make_patient(db) for _ in range(count)]
    finally:
        db.dispose()


def dispensation_body(patient_id: str, today: str) -> bytes:
    """A paper prescription with a list I line and a stupéfiant line, both handed over."""
    from tests.fixtures.dispensing import LIST_I_PRODUCT, PRESCRIBER_RPPS

    listed, narcotic = LIST_I_PRODUCT.packs[0].cip13, _narcotic().packs[0].cip13

    def paper_line(designation: str, cip: str, regulatory: str, days: int) -> dict[str, Any]:
        return {
            "designation": designation,
            "cip13": cip,
            "regulatory_list": regulatory,
            "units_per_day": "1",
            "duration_days": days,
        }

    body = {
        "patient_id": patient_id,
        "patient_address": "1 rue Fictive, 75000 Paris",
        "prescriber_acknowledged": True,
        "bearer": {"is_patient": True},
        "paper": {
            "prescribed_on": today,
            "prescriber_rpps": PRESCRIBER_RPPS,
            "prescriber_name": "DOCTEUR FICTIF",
            "prescriber_address": "2 avenue du Test, 75011 Paris",
            "lines": [
                paper_line("FICTIVOL 10 mg cp", listed, "list_i", 30),
                paper_line("MORPHINE TEST LP 10 mg", narcotic, "stupefiant", 14),
            ],
        },
        "lines": [
            {"line_no": 1, "intervention": "unchanged", "days": 30, "cip13": listed},
            {"line_no": 2, "intervention": "unchanged", "days": 14, "cip13": narcotic},
        ],
    }
    return json.dumps(body).encode()


@dataclass
class Outcome:
    latencies_ms: list[float] = field(default_factory=list)
    acknowledged: list[str] = field(default_factory=list)  # dispensation ids answered 201
    errors: list[str] = field(default_factory=list)


def _post(con: http.client.HTTPConnection, token: str, key: str, body: bytes) -> tuple[int, bytes]:
    headers = {
        "Authorization": f"Bearer {token}",
        "Idempotency-Key": key,
        "Content-Type": "application/json",
    }
    con.request("POST", "/v1/dispensations", body=body, headers=headers)
    response = con.getresponse()
    return response.status, response.read()


def fire(
    daemons: list[CounterDaemon],
    patients: list[list[str]],
    run: str,
    progress: Callable[[int], None] | None = None,
) -> Outcome:
    """Every counter at once: a barrier, then each sends its next as soon as its previous returns."""
    from lgo.services.local_time import pharmacy_today

    today = pharmacy_today().isoformat()
    barrier = threading.Barrier(len(daemons))
    outcomes = [Outcome() for _ in daemons]
    done = [0]
    lock = threading.Lock()

    def counter(index: int) -> None:
        daemon, outcome = daemons[index], outcomes[index]
        bodies = [dispensation_body(pid, today) for pid in patients[index]]
        con = daemon.connection()
        try:
            barrier.wait()
            for i, body in enumerate(bodies):
                key = f"bench-{run}-{index:02d}-{i:06d}"
                start = time.perf_counter()
                try:
                    status, answer = _post(con, daemon.token, key, body)
                except (OSError, http.client.HTTPException) as exc:
                    outcome.errors.append(f"{daemon.name} {key}: {exc!r}")
                    con.close()
                    con = daemon.connection()
                    continue
                outcome.latencies_ms.append((time.perf_counter() - start) * 1000)
                if status == 201:
                    outcome.acknowledged.append(json.loads(answer)["id"])
                else:
                    outcome.errors.append(f"{daemon.name} {key}: {status} {answer[:300]!r}")
                if progress is not None:
                    with lock:
                        done[0] += 1
                        progress(done[0])
        except threading.BrokenBarrierError:
            outcome.errors.append(f"{daemon.name}: barrier broken")
        finally:
            con.close()

    workers = [threading.Thread(target=counter, args=(i,)) for i in range(len(daemons))]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    merged = Outcome()
    for o in outcomes:
        merged.latencies_ms += o.latencies_ms
        merged.acknowledged += o.acknowledged
        merged.errors += o.errors
    return merged


# ---------------------------------------------------------------- evidence from PostgreSQL


def _psycopg_params(url: str) -> dict[str, str]:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    return {
        "dbname": str(parsed.database),
        "user": str(parsed.username),
        "host": str(parsed.query["host"]),
    }


STATS_SQL = """
SELECT d.xact_commit, d.tup_inserted, d.tup_updated, d.tup_deleted, d.sessions,
       w.wal_records, w.wal_bytes, w.wal_write, w.wal_sync, w.wal_sync_time
FROM pg_stat_database d, pg_stat_wal w WHERE d.datname = current_database()
"""
STATS_KEYS = (
    "xact_commit",
    "tup_inserted",
    "tup_updated",
    "tup_deleted",
    "sessions",
    "wal_records",
    "wal_bytes",
    "wal_write",
    "wal_sync",
    "wal_sync_time_ms",
)


def _stats(con: Any) -> dict[str, float]:
    con.execute("SELECT pg_stat_clear_snapshot()")
    row = con.execute(STATS_SQL).fetchone()
    return {k: float(v) for k, v in zip(STATS_KEYS, row, strict=True)}


SAMPLE_SQL = """
SELECT pid, state, coalesce(wait_event_type, 'CPU') || ':' || coalesce(wait_event, 'running'),
       left(query, 300),
       CASE WHEN wait_event_type = 'Lock' AND %(blockers)s THEN pg_blocking_pids(pid) END
FROM pg_stat_activity
WHERE datname = current_database() AND backend_type = 'client backend' AND pid <> pg_backend_pid()
"""
# pg_blocking_pids takes the lock manager's partition locks: asked on one sample in five only.
BLOCKERS_EVERY = 5
# Backends flush their statistics to shared memory at most once a second while busy, and an idle
# one 10 s after its last transaction at worst (PGSTAT_IDLE_INTERVAL): read pg_stat_* after that.
STATS_SETTLE_S = 10.5
QUICK_STATS_SETTLE_S = 1.1


DAEMON_WAIT = "in transaction, waiting for the daemon"
PIPELINE_WAIT = "active, waiting for the daemon's next message"


def _doing(state: str, wait: str) -> str:
    if state == "idle in transaction":
        return DAEMON_WAIT
    # A backend between two messages of one exchange (a pipeline: statements without a Sync
    # between them) stays "active" while it reads the next from its daemon.
    return PIPELINE_WAIT if state == "active" and wait == "Client:ClientRead" else wait


def _lock_roots(blocked_by: dict[int, list[int]]) -> set[int]:
    """The backends that block others without waiting on a lock themselves (a tuple-lock queue
    is a chain: each waiter waits on the one before, the first on the holder)."""
    roots: set[int] = set()
    for blockers in blocked_by.values():
        for pid in blockers:
            seen = {pid}
            while pid in blocked_by and blocked_by[pid][0] not in seen:
                pid = blocked_by[pid][0]
                seen.add(pid)
            roots.add(pid)
    return roots


def _statement_target(query: str) -> str:
    """``SELECT ... FROM ordonnancier_head FOR UPDATE`` → ``SELECT ordonnancier_head``."""
    if query.lstrip().upper().startswith("EXECUTE"):  # the COMMIT's message, prepared statements
        return "the COMMIT's message" + (" (head)" if "ordonnancier_append" in query else "")
    match = re.search(r"\b(FROM|UPDATE|INTO)\s+\"?(\w+)", query, re.IGNORECASE)
    verb = query.split(None, 1)[0].upper() if query.strip() else "?"
    return f"{verb} {match.group(2)}" if match else verb


def _commit_message(query: str) -> bool:
    """The COMMIT's message with the server-side append: its statements are prepared
    (``EXECUTE lgo_…``, pg_stat_activity cuts the text before the append's name) or, before
    them, the append's own call."""
    return query.lstrip().startswith("EXECUTE lgo_") or "ordonnancier_append(" in query


class Sampler:
    """pg_stat_activity every 10 ms from its own connection, in a thread: what each backend of
    the database is doing (``active`` with its wait event, or ``idle in transaction`` = a
    transaction open while PostgreSQL waits for the daemon's next statement)."""

    def __init__(self, url: str) -> None:
        import psycopg

        self.con = psycopg.connect(**_psycopg_params(url), autocommit=True)
        row = self.con.execute("SELECT pg_backend_pid()").fetchone()
        assert row is not None
        self.pid = int(row[0])  # its own CPU is left out of PostgreSQL's
        self.waits: Tally[str] = Tally()
        self.lock_targets: Tally[str] = Tally()  # the statement a lock waiter is blocked in
        # What the transaction at the head of each lock queue is doing (the lock holder).
        self.holders: Tally[str] = Tally()
        self.backends: list[int] = []
        # Samples where a backend runs the server-side append's message past the head's lock
        # (active, not waiting on a lock): the head is held, seen from PostgreSQL.
        self.head_samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(SAMPLE_EVERY_S):
            blockers = len(self.backends) % BLOCKERS_EVERY == 0
            rows = self.con.execute(SAMPLE_SQL, {"blockers": blockers}).fetchall()
            self.backends.append(len(rows))
            doing = {pid: _doing(state, wait) for pid, state, wait, _, _ in rows}
            blocked_by = {pid: blockers for pid, _, _, _, blockers in rows if blockers}
            for pid, state, wait, query, _ in rows:
                if state in ("active", "idle in transaction"):
                    self.waits[doing[pid]] += 1
                if state == "active" and wait.startswith("Lock:"):
                    self.lock_targets[_statement_target(query)] += 1
            self.head_samples += any(
                state == "active" and not wait.startswith("Lock:") and _commit_message(q)
                for _, state, wait, q, _ in rows
            )
            for root in _lock_roots(blocked_by):
                self.holders[doing.get(root, "another database's backend")] += 1

    @contextmanager
    def running(self) -> Iterator[None]:
        self._thread.start()
        try:
            yield
        finally:
            self._stop.set()
            self._thread.join()

    def close(self) -> None:
        self.con.close()


@dataclass
class Evidence:
    elapsed_s: float
    daemon_cpu_s: float
    postgres_cpu_s: float
    bench_cpu_s: float
    idle_daemons_cpu_s: float  # the counters that are up but not in this rush
    machine_busy: float  # share of all cores busy, every process of the machine
    stats: dict[str, float]
    waits: Tally[str]
    lock_targets: Tally[str]
    holders: Tally[str]
    backends: list[int]
    loadavg: str
    head_holds: list[tuple[float, float]]  # (COMMIT returned at, held ms), every daemon
    # Server-side append: (COMMIT returned at, message round trip ms), every daemon, and the
    # share of samples where a backend ran that message past the head's lock.
    head_messages: list[tuple[float, float]]
    head_sampled_share: float

    @property
    def head_holds_ms(self) -> list[float]:
        return [held for _, held in self.head_holds]

    def head_busy_s(self) -> float:
        """The time at least one daemon counted the head as held: the union of the holds. The
        real lock has one holder at a time, but a daemon's count also covers its wait to be
        scheduled after the lock's answer and after the COMMIT's, which can overlap the next
        holder's: the summed holds may pass 100 %, the union cannot."""
        busy, reach = 0.0, float("-inf")
        for start, end in sorted((at - held / 1000, at) for at, held in self.head_holds):
            if end > reach:
                busy += end - max(start, reach)
                reach = end
        return busy

    def numbers(self, count: int) -> dict[str, float]:
        cores = os.cpu_count() or 1
        busy = self.daemon_cpu_s + self.postgres_cpu_s + self.bench_cpu_s
        trips = [ms for _, ms in self.head_messages]
        samples = sum(self.waits.values()) or 1
        share = {kind: n / samples for kind, n in self.waits.items()}
        syncs = self.stats["wal_sync"]
        rows = self.stats["tup_inserted"] + self.stats["tup_updated"] + self.stats["tup_deleted"]
        return {
            "daemon_cpu_ms_per_dispensation": 1000 * self.daemon_cpu_s / count,
            "postgres_cpu_ms_per_dispensation": 1000 * self.postgres_cpu_s / count,
            "bench_client_cpu_ms_per_dispensation": 1000 * self.bench_cpu_s / count,
            "our_cpu_busy": busy / (self.elapsed_s * cores),
            "machine_cpu_busy": self.machine_busy,
            "idle_daemons_cpu_busy": self.idle_daemons_cpu_s / (self.elapsed_s * cores),
            "dispensations_per_s": count / self.elapsed_s,
            "lock_wait_share": sum(v for k, v in share.items() if k.startswith("Lock:")),
            "wal_wait_share": sum(
                v for k, v in share.items() if k in ("IO:WALSync", "IO:WALWrite", "LWLock:WALWrite")
            ),
            "daemon_wait_share": share.get(DAEMON_WAIT, 0.0) + share.get(PIPELINE_WAIT, 0.0),
            "postgres_running_share": share.get("CPU:running", 0.0),
            "wal_syncs_per_dispensation": syncs / count,
            "wal_sync_ms_avg": self.stats["wal_sync_time_ms"] / syncs if syncs else 0.0,
            # The sampler's own queries are transactions too: one per sample.
            "commits_per_dispensation": (self.stats["xact_commit"] - len(self.backends)) / count,
            "rows_written_per_dispensation": rows / count,
            "connections_opened_in_rush": self.stats["sessions"],
            "backends_min": float(min(self.backends, default=0)),
            "backends_max": float(max(self.backends, default=0)),
            "head_hold_p50_ms": pct(self.head_holds_ms, 0.5) if self.head_holds_ms else 0.0,
            "head_hold_p99_ms": pct(self.head_holds_ms, 0.99) if self.head_holds_ms else 0.0,
            "head_occupancy": self.head_busy_s() / self.elapsed_s,
            "head_holds_summed_share": sum(self.head_holds_ms) / 1000 / self.elapsed_s,
            "head_message_p50_ms": pct(trips, 0.5) if trips else 0.0,
            "head_message_p99_ms": pct(trips, 0.99) if trips else 0.0,
            "head_sampled_share": self.head_sampled_share,
        }

    def bound(self, count: int) -> str:
        """What the figure is bound by, in words, from the numbers above."""
        n = self.numbers(count)
        total = sum(self.waits.values()) or 1
        top = ", ".join(f"{k} {v / total:.0%}" for k, v in self.waits.most_common(4))
        cpu = (
            f"{n['machine_cpu_busy']:.0%} of {os.cpu_count()} cores busy, "
            f"{n['our_cpu_busy']:.0%} by these daemons, PostgreSQL and the bench, "
            f"{n['idle_daemons_cpu_busy']:.0%} by the idle counters' daemons"
        )
        bounds = []
        if n["machine_cpu_busy"] >= 0.8:
            bounds.append(f"CPU ({cpu})")
        if n["head_occupancy"] >= 0.8:
            bounds.append(f"the ordonnancier head (held {n['head_occupancy']:.0%} of the time)")
        if n["head_sampled_share"] >= 0.8:
            bounds.append(
                f"the ordonnancier head (held in {n['head_sampled_share']:.0%} of the samples)"
            )
        if n["lock_wait_share"] >= 0.3:
            bounds.append(f"row-lock waits ({n['lock_wait_share']:.0%} of backend samples)")
        if n["wal_wait_share"] >= 0.3:
            bounds.append(f"WAL sync ({n['wal_wait_share']:.0%} of backend samples)")
        if n["daemon_wait_share"] >= 0.5:
            bounds.append(
                "the daemon's work between statements, transaction open "
                f"({n['daemon_wait_share']:.0%} of backend samples)"
            )
        verdict = " and ".join(bounds) or f"one request's own path ({cpu})"
        if bounds and not bounds[0].startswith("CPU"):
            verdict += f" ({cpu})"
        locked = sum(self.lock_targets.values()) or 1
        where = ", ".join(f"{k} {v / locked:.0%}" for k, v in self.lock_targets.most_common(3))
        held = sum(self.holders.values()) or 1
        holder = ", ".join(f"{k} {v / held:.0%}" for k, v in self.holders.most_common(3))
        waiting_in = (
            f"; lock waiters blocked in: {where}; the lock holder meanwhile: "
            f"{holder or 'not caught by a sample'}"
            if self.lock_targets
            else ""
        )
        head = (
            f"; ordonnancier head held p50 {n['head_hold_p50_ms']:.2f} ms, p99 "
            f"{n['head_hold_p99_ms']:.2f} ms (lock granted → COMMIT returned, daemon side), "
            f"held {n['head_occupancy']:.0%} of the time (summed holds "
            f"{n['head_holds_summed_share']:.0%}: over 100 %, daemons wait to run while holding it)"
            if self.head_holds
            else ""
        )
        if self.head_messages:
            head += (
                "; ordonnancier head taken on the server (ordonnancier_append in the COMMIT's"
                f" message): held in at most {n['head_sampled_share']:.0%} of the samples (a "
                "backend running that message, not waiting on a lock), message round trip p50 "
                f"{n['head_message_p50_ms']:.2f} ms, p99 {n['head_message_p99_ms']:.2f} ms "
                "(daemon side, the wait for the lock included)"
            )
        return f"{verdict}; backend samples: {top or 'none'}{waiting_in}{head}"


def _cluster_data_dir(url: str) -> Path:
    import psycopg

    with psycopg.connect(**_psycopg_params(url), autocommit=True) as con:
        row = con.execute("SHOW data_directory").fetchone()
    assert row is not None
    return Path(row[0])


def observed(
    url: str,
    daemons: list[CounterDaemon],
    rush: Callable[[], Outcome],
    settle_s: float,
    idle: list[CounterDaemon] | None = None,
) -> tuple[Outcome, Evidence]:
    """Run ``rush`` with the sampler on and every counter of CPU and WAL read around it."""
    import psycopg

    data_dir = _cluster_data_dir(url)
    sampler = Sampler(url)
    stats_con = psycopg.connect(**_psycopg_params(url), autocommit=True)
    try:
        time.sleep(settle_s)  # the warm-up's statistics, flushed
        before = _stats(stats_con)
        mine = {sampler.pid}

        def cpu() -> tuple[float, float, float, float]:
            return (
                sum(d.cpu_s() for d in daemons),
                _postgres_cpu_s(data_dir) - sum(_task_cpu_s(pid) for pid in mine),
                _self_cpu_s(),
                sum(d.cpu_s() for d in idle or []),
            )

        machine0 = _machine_busy_s()
        cpu0 = cpu()
        start, wall_start = time.perf_counter(), time.time()
        with sampler.running():
            outcome = rush()
        elapsed, wall_end = time.perf_counter() - start, time.time()
        cpu1 = cpu()
        machine1 = _machine_busy_s()
        loadavg = " ".join(Path("/proc/loadavg").read_text().split(" ", 3)[:3])
        time.sleep(settle_s)
        after = _stats(stats_con)
    finally:
        stats_con.close()
        sampler.close()
    return outcome, Evidence(
        elapsed_s=elapsed,
        daemon_cpu_s=cpu1[0] - cpu0[0],
        postgres_cpu_s=cpu1[1] - cpu0[1],
        bench_cpu_s=cpu1[2] - cpu0[2],
        idle_daemons_cpu_s=cpu1[3] - cpu0[3],
        machine_busy=(machine1[0] - machine0[0]) / max(1e-9, machine1[1] - machine0[1]),
        stats={k: after[k] - before[k] for k in STATS_KEYS},
        waits=sampler.waits,
        lock_targets=sampler.lock_targets,
        holders=sampler.holders,
        backends=sampler.backends,
        loadavg=loadavg,
        head_holds=[h for d in daemons for h in d.head_holds(wall_start, wall_end)],
        head_messages=[h for d in daemons for h in d.head_holds(wall_start, wall_end, True)],
        head_sampled_share=sampler.head_samples / max(1, len(sampler.backends)),
    )


def _machine_busy_s() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, every process (/proc/stat)."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = ticks[3] + ticks[4]  # idle + iowait
    return (sum(ticks) - idle) / CLOCK_TICK, sum(ticks) / CLOCK_TICK


def _self_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# ---------------------------------------------------------------- correctness after a run


def check_records(url: str, acknowledged: list[str]) -> dict[str, int]:
    """No loss, no duplicate, gapless ordonnancier, verified chain; raises on any failure."""
    from sqlalchemy import func, select

    from lgo.services import ordonnancier
    from lgo.store.db import Database
    from lgo.store.models.dispensing import (
        DispensationRow,
        NarcoticsRegisterLine,
        OrdonnancierEntry,
    )

    db = Database(url)
    try:
        with db.uow(readonly=True) as uow:
            s = uow.session
            stored = set(s.execute(select(DispensationRow.id)).scalars())
            numbers = list(
                s.execute(select(OrdonnancierEntry.number).order_by(OrdonnancierEntry.number))
                .scalars()
                .all()
            )
            per_line = s.execute(
                select(OrdonnancierEntry.dispensation_id, OrdonnancierEntry.line_no)
                .group_by(OrdonnancierEntry.dispensation_id, OrdonnancierEntry.line_no)
                .having(func.count() > 1)
            ).all()
            narcotics = s.execute(
                select(func.count()).select_from(NarcoticsRegisterLine)
            ).scalar_one()
        report = ordonnancier.verify(db)
    finally:
        db.dispose()
    lost = [d for d in acknowledged if d not in stored]
    problems = []
    if lost:
        problems.append(f"{len(lost)} acknowledged dispensation(s) missing")
    if len(set(acknowledged)) != len(acknowledged):
        problems.append("the same dispensation acknowledged twice")
    if per_line:
        problems.append(f"{len(per_line)} line(s) with two ordonnancier entries")
    if numbers != list(range(1, len(numbers) + 1)):
        problems.append("ordonnancier numbers not gapless from 1")
    if not report.ok:
        problems.append(f"ordonnancier chain does not verify: {report}")
    # Every bench dispensation has a list I line and a stupéfiant line: 2 entries, 1 withdrawal.
    if len(numbers) != 2 * len(stored) or narcotics != len(stored):
        problems.append(
            f"{len(stored)} dispensations but {len(numbers)} ordonnancier entries and "
            f"{narcotics} narcotics register lines"
        )
    if problems:
        raise AssertionError("; ".join(problems))
    return {
        "dispensations": len(stored),
        "ordonnancier_entries": len(numbers),
        "narcotics_lines": int(narcotics),
        "chain_checked": int(report.checked),
    }


# ---------------------------------------------------------------- the floor


def _raw_serialised_writes(
    url: str, rows: int
) -> Callable[[], tuple[Callable[[], None], Callable[[], None]]]:
    """The same transaction shape without lgo's code: ``rows`` row inserts, then the gapless
    counter row locked and bumped as the last write, then COMMIT (fsync on)."""
    import psycopg

    params = _psycopg_params(url)
    with psycopg.connect(**params, autocommit=True) as con:
        con.execute("CREATE TABLE IF NOT EXISTS bench_raw (id bigserial PRIMARY KEY, payload text)")
        con.execute("CREATE TABLE IF NOT EXISTS bench_head (id int PRIMARY KEY, n bigint)")
        con.execute("INSERT INTO bench_head VALUES (1, 0) ON CONFLICT DO NOTHING")

    def factory() -> tuple[Callable[[], None], Callable[[], None]]:
        con = psycopg.connect(**params)

        def one() -> None:
            with con.cursor() as cur:
                cur.executemany(
                    "INSERT INTO bench_raw (payload) VALUES (%s)", [("row",)] * max(1, rows - 1)
                )
                cur.execute("SELECT n FROM bench_head WHERE id = 1 FOR UPDATE")
                cur.execute("UPDATE bench_head SET n = n + 1 WHERE id = 1")
            con.commit()

        return one, con.close

    return factory


def concurrent_latencies(
    threads: int, per_thread: int, make_op: Callable[[int], Callable[[int], None]]
) -> list[float]:
    """``threads`` counters at once, each running ``per_thread`` operations; durations in ms."""
    barrier = threading.Barrier(threads)
    results: list[list[float]] = [[] for _ in range(threads)]
    errors: list[BaseException] = []

    def counter(index: int) -> None:
        try:
            op = make_op(index)
            barrier.wait()
            for i in range(per_thread):
                start = time.perf_counter()
                op(i)
                results[index].append((time.perf_counter() - start) * 1000)
        except BaseException as exc:  # reported after join
            errors.append(exc)
            barrier.abort()

    workers = [threading.Thread(target=counter, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if errors:
        raise errors[0]
    return [d for r in results for d in r]


def raw_floor(url: str, level: int, per_counter: int, rows: int) -> list[float]:
    factory = _raw_serialised_writes(url, rows)
    closers: list[Callable[[], None]] = []

    def make_raw(_index: int) -> Callable[[int], None]:
        one, close = factory()
        closers.append(close)
        return lambda _i: one()

    try:
        return concurrent_latencies(level, per_counter, make_raw)
    finally:
        for close in closers:
            close()


# ---------------------------------------------------------------- the steps


def _prepare_cluster(url: str) -> None:
    import psycopg

    from lgo.store import migrate
    from lgo.store.db import Database

    with psycopg.connect(**_psycopg_params(url), autocommit=True) as con:
        con.execute("ALTER SYSTEM SET track_wal_io_timing = on")
        con.execute("SELECT pg_reload_conf()")
    db = Database(url)
    try:
        migrate.upgrade(db)
    finally:
        db.dispose()


@contextmanager
def counters_on_cluster(count: int, tmp: Path) -> Iterator[tuple[str, list[CounterDaemon]]]:
    from tests.fixtures.db import start_pg_cluster, stop_pg_cluster

    cluster, root = start_pg_cluster(fsync=True, max_connections=MAX_CONNECTIONS)
    daemons: list[CounterDaemon] = []
    try:
        url = cluster.new_database()
        _prepare_cluster(url)
        daemons = start_daemons(url, count, tmp)
        yield url, daemons
    finally:
        stop_daemons(daemons)
        stop_pg_cluster(cluster, root)


def _warm(url: str, daemons: list[CounterDaemon], run: str) -> None:
    """Two dispensations per counter before the timed rush: imports, caches, the pool's first
    connection."""
    patients = make_patients(url, 2 * len(daemons))
    outcome = fire(daemons, [patients[2 * i : 2 * i + 2] for i in range(len(daemons))], run)
    if outcome.errors:
        raise AssertionError(f"warm-up errors: {outcome.errors[:3]}\n{daemons[0].log_tail()}")


def level_figures(
    url: str,
    daemons: list[CounterDaemon],
    per_counter: int,
    settle_s: float,
    idle: list[CounterDaemon],
) -> list[Figure]:
    """One level: ``daemons`` fire at once while the ``idle`` counters' daemons stay up (as in a
    pharmacy where the other counters are open but not dispensing)."""
    count = len(daemons)
    run = uuid.uuid4().hex[:6]
    _warm(url, daemons, f"warm{run}")
    patients = make_patients(url, count * per_counter)
    split = [patients[i * per_counter : (i + 1) * per_counter] for i in range(count)]
    outcome, evidence = observed(url, daemons, lambda: fire(daemons, split, run), settle_s, idle)
    if outcome.errors:
        raise AssertionError(f"{len(outcome.errors)} error(s): {outcome.errors[:3]}")
    checked = check_records(url, outcome.acknowledged)
    ours = outcome.latencies_ms
    numbers = evidence.numbers(len(ours))
    rows = max(1, round(numbers["rows_written_per_dispensation"]))
    raw = raw_floor(url, count, per_counter, rows)
    plural = "s" if count > 1 else ""
    note = (
        f"p99 {pct(ours, 0.99):.1f} ms (floor p99 {pct(raw, 0.99):.1f} ms), n={len(ours)}, "
        f"{numbers['dispensations_per_s']:.0f}/s; bound by {evidence.bound(len(ours))}; daemon CPU "
        f"{numbers['daemon_cpu_ms_per_dispensation']:.1f} ms + PostgreSQL CPU "
        f"{numbers['postgres_cpu_ms_per_dispensation']:.1f} ms per dispensation; "
        f"{numbers['wal_syncs_per_dispensation']:.2f} WAL syncs per dispensation at "
        f"{numbers['wal_sync_ms_avg']:.2f} ms; {rows} rows written; backends "
        f"{numbers['backends_min']:.0f}-{numbers['backends_max']:.0f}, "
        f"{numbers['connections_opened_in_rush']:.0f} connection(s) opened in the rush; checks ok "
        f"({checked['ordonnancier_entries']} ordonnancier entries gapless, chain verified); "
        f"loadavg {evidence.loadavg}"
    )
    return [
        Figure(
            f"PostgreSQL dispensation p50, {count} counter daemon{plural} at once "
            "(list I + stupéfiant, fsync=on)",
            statistics.median(ours),
            "ms",
            f"raw psycopg transaction p50, {count} connection(s): {rows} rows written, the "
            "counter row locked and bumped last, COMMIT",
            statistics.median(raw),
            note,
            {
                "p50_ms": statistics.median(ours),
                "p99_ms": pct(ours, 0.99),
                "raw_p50_ms": statistics.median(raw),
                "raw_p99_ms": pct(raw, 0.99),
                "elapsed_s": evidence.elapsed_s,
                **numbers,
                **{f"samples {k}": float(v) for k, v in evidence.waits.most_common(8)},
                **{f"lock holder {k}": float(v) for k, v in evidence.holders.most_common(4)},
            },
        )
    ]


def pool_burst(url: str, daemon: CounterDaemon, per_request: int, settle_s: float) -> Figure:
    """One daemon sent twice its pool's size of requests at once (a page firing requests in
    parallel while the workers run), twice: the second burst must open no connection."""
    from lgo.core.settings import DatabaseSettings

    pool = DatabaseSettings().pool_size
    parallel = 2 * pool
    _warm(url, [daemon] * parallel, "burstw")
    patients = make_patients(url, parallel * per_request)
    split = [patients[i * per_request : (i + 1) * per_request] for i in range(parallel)]
    burst = [daemon] * parallel
    outcome, evidence = observed(url, [daemon], lambda: fire(burst, split, "burst"), settle_s)
    if outcome.errors:
        raise AssertionError(f"{len(outcome.errors)} error(s): {outcome.errors[:3]}")
    check_records(url, outcome.acknowledged)
    n = evidence.numbers(len(outcome.latencies_ms))
    return Figure(
        f"PostgreSQL connections opened by one daemon during a burst of {parallel} parallel "
        f"requests (pool_size {pool}, warm)",
        n["connections_opened_in_rush"],
        "connections",
        note=(
            f"backends of the database sampled every 10 ms: {n['backends_min']:.0f}-"
            f"{n['backends_max']:.0f} (pool_size {pool} + the other daemons' idle pools); "
            f"p50 {statistics.median(outcome.latencies_ms):.1f} ms, "
            f"p99 {pct(outcome.latencies_ms, 0.99):.1f} ms, n={len(outcome.latencies_ms)}; "
            f"loadavg {evidence.loadavg}"
        ),
        extra=n,
    )


def pg_counters(tmp: Path, quick: bool) -> list[Figure]:
    """p50/p99 with 1, 8 and 16 counter daemons (quick: 1 and 2), one cluster, fsync on."""
    levels = QUICK_LEVELS if quick else LEVELS
    settle = QUICK_STATS_SETTLE_S if quick else STATS_SETTLE_S
    figures: list[Figure] = []
    with counters_on_cluster(max(levels), tmp) as (url, daemons):
        for level in levels:
            per_counter = QUICK_PER_COUNTER if quick else PER_COUNTER[level]
            print(f"[bench] postgres: {level} counter(s) × {per_counter}", file=sys.stderr)
            figures += level_figures(url, daemons[:level], per_counter, settle, daemons[level:])
        figures.append(pool_burst(url, daemons[0], 2 if quick else 5, settle))
    return figures


def pg_day(tmp: Path) -> list[Figure]:
    """A full day: 16 counter daemons × 1 000 dispensations, progress printed, bounded in time
    (past DAY_LIMIT_S the daemons are stopped: the remaining requests fail and the step fails)."""
    total = DAY_COUNTERS * DAY_PER_COUNTER
    with counters_on_cluster(DAY_COUNTERS, tmp) as (url, daemons):
        _warm(url, daemons, "dayw")
        patients = make_patients(url, total)
        split = [
            patients[i * DAY_PER_COUNTER : (i + 1) * DAY_PER_COUNTER] for i in range(DAY_COUNTERS)
        ]
        started = time.monotonic()
        watchdog = threading.Timer(DAY_LIMIT_S, lambda: stop_daemons(daemons))
        watchdog.start()

        def progress(done: int) -> None:
            if done % 1000 == 0:
                rate = done / (time.monotonic() - started)
                print(f"[bench] pg-day {done}/{total} ({rate:.0f}/s)", file=sys.stderr, flush=True)

        try:
            outcome, evidence = observed(
                url, daemons, lambda: fire(daemons, split, "day", progress), STATS_SETTLE_S
            )
        finally:
            watchdog.cancel()
        if outcome.errors:
            raise AssertionError(f"{len(outcome.errors)} error(s): {outcome.errors[:3]}")
        checked = check_records(url, outcome.acknowledged)
    ours = outcome.latencies_ms
    numbers = evidence.numbers(len(ours))
    return [
        Figure(
            f"PostgreSQL full day: {DAY_COUNTERS} counter daemons × {DAY_PER_COUNTER} "
            "dispensations, p50",
            statistics.median(ours),
            "ms",
            note=(
                f"p99 {pct(ours, 0.99):.1f} ms, {len(ours)} acknowledged in "
                f"{evidence.elapsed_s:.0f} s ({numbers['dispensations_per_s']:.0f}/s); no error, "
                f"loss or duplicate; {checked['ordonnancier_entries']} ordonnancier entries "
                f"gapless, chain verified; {checked['narcotics_lines']} narcotics register lines; "
                f"bound by {evidence.bound(len(ours))}; loadavg {evidence.loadavg}"
            ),
            extra={
                "p99_ms": pct(ours, 0.99),
                **numbers,
                **{k: float(v) for k, v in checked.items()},
            },
        )
    ]


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "serve":
        serve_counter(sys.argv[2], int(sys.argv[3]), Path(sys.argv[4]))
    else:
        raise SystemExit("usage: python -m tests.bench.measure_postgres serve URL PORT STATE_DIR")
