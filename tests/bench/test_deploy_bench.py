"""Figures (never pass/fail on time): how fast a socket-activated `lgo serve` becomes ready.

Run: .venv/bin/pytest tests/bench/test_deploy_bench.py -q -s

Time from exec to READY=1 (migrations checked, application started, passed socket served), next to
its floor on the same machine: a bare Python interpreter start, and the import of the API app.
Also the spacing of WATCHDOG=1 pings against the expected half period.
"""

from __future__ import annotations

import itertools
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.deploy.test_serve_under_systemd import ACTIVATE, LGO, _base_env

pytestmark = pytest.mark.integration

STARTS = 3
WATCHDOG_USEC = 1_000_000  # pings every 0.5 s


def _time(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    return time.perf_counter() - start


def _start_to_ready(tmp: Path, index: int) -> tuple[float, list[float]]:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp / f"notify-{index}"))
    notify.settimeout(120)
    env = {
        **_base_env(tmp / f"state-{index}", port),
        "NOTIFY_SOCKET": str(tmp / f"notify-{index}"),
        "LISTEN_FDS": "1",
        "LISTEN_FDNAMES": "api",
        "WATCHDOG_USEC": str(WATCHDOG_USEC),
    }
    subprocess.run([LGO, "migrate"], env=env, check=True, capture_output=True, timeout=120)
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-c", ACTIVATE, str(listener.fileno()), LGO, "serve"],
        env=env,
        pass_fds=(listener.fileno(),),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while b"READY=1" not in notify.recv(4096).split(b"\n"):
            pass
        ready = time.perf_counter() - start
        pings: list[float] = []
        while len(pings) < 6:
            if b"WATCHDOG=1" in notify.recv(4096).split(b"\n"):
                pings.append(time.perf_counter())
        gaps = [b - a for a, b in itertools.pairwise(pings)]
        return ready, gaps
    finally:
        process.terminate()
        process.wait(timeout=60)
        notify.close()
        listener.close()


@pytest.mark.timeout(900)
def test_time_to_ready_and_watchdog_spacing(tmp_path: Path) -> None:
    python_floor = statistics.median(_time([sys.executable, "-c", "pass"]) for _ in range(3))
    import_floor = statistics.median(
        _time([sys.executable, "-c", "import lgo.api.app"]) for _ in range(3)
    )
    runs = [_start_to_ready(tmp_path, i) for i in range(STARTS)]
    ready = statistics.median(r for r, _ in runs)
    gaps = [g for _, run_gaps in runs for g in run_gaps]
    print()
    print(f"exec → READY=1 (median of {STARTS}): {ready:.2f} s")
    print(f"  floor: python start {python_floor:.3f} s, import lgo.api.app {import_floor:.2f} s")
    print(f"  ratio READY / import floor: {ready / import_floor:.2f}")
    print(
        f"WATCHDOG=1 spacing: median {statistics.median(gaps):.3f} s, max {max(gaps):.3f} s "
        f"(expected {WATCHDOG_USEC / 2e6:.3f} s, timeout {WATCHDOG_USEC / 1e6:.1f} s)"
    )
    assert ready > 0 and gaps
