"""The benchmark runner works: ``python -m tests.bench --quick`` (tiny sizes) prints its table and
writes a JSON file holding every figure with its floor and ratio. No timing is asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.bench.measures import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

EXPECTED = (
    "Vitale read",
    "CPS login + sign",
    "CPS sign on an open session",
    "Dispensation commit time",
    "Dispensation over HTTP, SQLite",
    "Daemon CPU per dispensation",
    "API request over a socket: authenticated no-op GET, plain def route",
    "API request over a socket: authenticated no-op GET, async def route",
    "API GET /v1/health over a socket",
    "API request through TestClient, no-op route",
    "API GET /v1/health through TestClient",
    "PostgreSQL dispensation p50, 1 counter daemon at once",
    "PostgreSQL dispensation p50, 2 counter daemons at once",
    "Outbox drain",
    "Daemon start to ready",
    "Memory at rest",
    "Memory after 50 dispensations",
)


@pytest.mark.timeout(420)
def test_quick_run_prints_and_writes_every_ratio(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tests.bench", "--quick", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "lgo benchmark (quick" in done.stdout and "ratio" in done.stdout
    doc = json.loads((tmp_path / "latest.json").read_text(encoding="utf-8"))
    assert doc["mode"] == "quick" and "fsync=on" in doc["postgresql"]
    figures = {f["name"]: f for f in doc["figures"]}
    for prefix in EXPECTED:
        found = [f for name, f in figures.items() if name.startswith(prefix)]
        assert len(found) == 1, (prefix, sorted(figures))
        figure = found[0]
        assert figure["value"] > 0 and figure["floor"] > 0
        assert figure["ratio"] == pytest.approx(figure["value"] / figure["floor"])
    delivered = figures["Outbox drain (claim, report, POST, receipt, mark delivered)"]["extra"]
    assert delivered["delivered"] == 5  # every queued execution reached the simulator
