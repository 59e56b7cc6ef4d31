"""The lgo benchmark: every figure next to its physical floor, measured in the same run.

    .venv/bin/python -m tests.bench            # full run (< 5 minutes), table + bench-results/*.json
    .venv/bin/python -m tests.bench --quick    # tiny sizes: proves the runner works (CI smoke test)

It starts its own real stack: hw-sim (private pcscd + vpcd virtual readers/cards, the CPS driven by
OpenSC's PKCS#11 module), the national simulator on 127.0.0.1, and a PostgreSQL cluster with fsync
ON. The machine is shared and noisy, so read the ratios (ours / floor), not the absolute figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
HWSIM_DIR = Path(f"/tmp/lgo-bench-hwsim-{os.getpid()}")


@dataclass(frozen=True)
class Sizes:
    quick: bool
    vitale_reads: int
    cps_rounds: int
    commits: int
    api_requests: int
    outbox_messages: int
    daemon_starts: int
    memory_dispensations: int


FULL = Sizes(False, 50, 20, 200, 1000, 200, 3, 10_000)
QUICK = Sizes(True, 3, 2, 20, 50, 5, 1, 50)


def _prepare_environment() -> None:
    """Point libpcsclite at the private pcscd before pyscard loads (it reads this once)."""
    sys.path.insert(0, str(ROOT))
    from hwsim.pcscd import PcscdLayout

    os.environ["PCSCLITE_CSOCK_NAME"] = str(PcscdLayout(HWSIM_DIR).socket)
    os.environ.setdefault("LGO_NATIONAL__BASE_URL", "http://127.0.0.1:9")
    os.environ.setdefault("LGO_LOGGING__LEVEL", "WARNING")
    import warnings

    from lgo.core.logs import configure_logging

    configure_logging("WARNING")  # the figures are the output; per-commit info lines cost time
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")


@contextmanager
def hardware() -> Iterator[tuple[Any, list[str], str]]:
    """hw-sim with 2 readers and OpenSC's PKCS#11 module, which drives its virtual CPS cards:
    (control client, reader names, module)."""
    from hwsim.control import Client
    from hwsim.pkcs11 import opensc_module
    from hwsim.runtime import launch

    module = opensc_module()
    if module is None:
        raise SystemExit("OpenSC's PKCS#11 module is missing (apt install opensc)")
    shutil.rmtree(HWSIM_DIR, ignore_errors=True)
    launched = launch(HWSIM_DIR, readers=2)
    client = Client(launched.control_socket)
    try:
        names = [str(r["name"]) for r in client.status()["readers"]]
        yield client, names, str(module)
    finally:
        client.close()
        launched.stop()
        shutil.rmtree(HWSIM_DIR, ignore_errors=True)


@contextmanager
def national() -> Iterator[Any]:
    from tests.fixtures.national import running_national_sim

    with running_national_sim() as sim:
        yield sim


def run_all(sizes: Sizes, tmp: Path, only: set[str] | None) -> list[Any]:
    from tests.bench import measures as m

    figures: list[Any] = []

    def step(name: str, call: Callable[[], list[Any]]) -> None:
        if only and name not in only:
            return
        started = time.perf_counter()
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        figures.extend(call())
        print(f"[bench] {name} done in {time.perf_counter() - started:.1f} s", file=sys.stderr)

    if not only or only & {"vitale", "cps"}:
        from tests.bench import measure_hardware as hw

        with hardware() as (client, readers, module):
            step("vitale", lambda: hw.vitale_read(client, readers[0], sizes.vitale_reads))
            step("cps", lambda: hw.cps_login_sign(client, readers[1], module, sizes.cps_rounds))
    from tests.bench import measure_dispensing as disp

    step("sqlite", lambda: disp.sqlite_commit_rate(tmp, sizes.commits))
    # Three times the commits: six alternated blocks of 100 against the machine's drift.
    step("dispensing", lambda: disp.http_dispensation_sqlite(tmp, 3 * sizes.commits))
    from tests.bench import measure_api as api

    step("api", lambda: api.api_overhead(tmp, sizes.api_requests))
    if not only or "api-pg" in only:
        step("api-pg", lambda: api.pg_token_check(sizes.api_requests))
    if not only or "postgres" in only:
        from tests.bench import measure_postgres as pg

        step("postgres", lambda: pg.pg_counters(tmp, sizes.quick))
    if only and "pg-day" in only:  # 16 counters × 1 000: only when asked by name
        from tests.bench import measure_postgres as pg

        step("pg-day", lambda: pg.pg_day(tmp))
    if not only or "outbox" in only:
        with national() as sim:
            step("outbox", lambda: m.outbox_drain(sim, tmp, sizes.outbox_messages))
    step("daemon", lambda: api.daemon_start(tmp, sizes.daemon_starts))
    # Last and alone: its 10 000 commits would otherwise steal CPU from the timed steps.
    step(
        "memory",
        lambda: api.memory(
            api.start_memory(tmp, sizes.memory_dispensations), sizes.memory_dispensations
        ),
    )
    return figures


def render(figures: list[Any], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_lines=False)
    for column in ("figure", "ours", "floor (same run)", "ratio", "note"):
        table.add_column(column, overflow="fold")
    for f in figures:
        ratio = f"{f.ratio:.2f}×" if f.ratio is not None else "–"
        floor = f"{f.floor:.3f} {f.unit}" if f.floor is not None else "–"
        table.add_row(f.name, f"{f.value:.3f} {f.unit}", f"{floor}\n{f.floor_name}", ratio, f.note)
    Console(width=200).print(table)


def write_json(figures: list[Any], out_dir: Path, mode: str, elapsed: float) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = out_dir / f"bench-{stamp}-{mode}.json"
    doc = {
        "when": stamp,
        "mode": mode,
        "elapsed_s": round(elapsed, 1),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "postgresql": "fsync=on, synchronous_commit=on (defaults), Unix socket",
        "sqlite": "WAL, synchronous=FULL, BEGIN IMMEDIATE",
        "figures": [f.as_json() for f in figures],
    }
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (out_dir / "latest.json").write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results")
    parser.add_argument(
        "--memory-dispensations",
        type=int,
        default=None,
        help="dispensations before the second memory figure (default 10 000)",
    )
    parser.add_argument(
        "--only",
        action="append",
        help="vitale, cps, sqlite, dispensing, api, api-pg, postgres, outbox, daemon, memory; "
        "pg-day (16 counter daemons × 1 000 dispensations on PostgreSQL, long) runs only when named",
    )
    args = parser.parse_args(argv)
    _prepare_environment()
    sizes = QUICK if args.quick else FULL
    if args.memory_dispensations:
        sizes = replace(sizes, memory_dispensations=args.memory_dispensations)
    mode = "quick" if args.quick else "full"
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="lgo-bench-") as tmp:
        figures = run_all(sizes, Path(tmp), set(args.only) if args.only else None)
    elapsed = time.perf_counter() - started
    render(figures, f"lgo benchmark ({mode}, {elapsed:.0f} s, {os.cpu_count()} CPUs)")
    path = write_json(figures, args.out, mode, elapsed)
    print(f"written: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
