"""Figures (never pass/fail on time): e-prescription and apCV round trips over real HTTP.

Run: .venv/bin/pytest tests/bench/test_national_bench.py -q -s
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest

from lgo.national.apcv import ApcvClient
from lgo.national.eprescription import (
    EPrescriptionClient,
    ExecutionReport,
    Intervention,
    LineExecution,
)
from tests.fixtures.national import NationalSim

pytestmark = pytest.mark.integration

RPPS = "10999999997"
ROUNDS = 40


def figures(name: str, call: Callable[[], object]) -> None:
    durations = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        call()
        durations.append((time.perf_counter() - started) * 1000)
    durations.sort()
    p95 = durations[int(len(durations) * 0.95) - 1]
    print(f"\n{name}: median {statistics.median(durations):.1f} ms, p95 {p95:.1f} ms, n={ROUNDS}")


def test_bench_national_round_trips(national_sim: NationalSim) -> None:
    with (
        EPrescriptionClient(national_sim.url("/eprescription/fhir")) as ep,
        ApcvClient(national_sim.url("/apcv")) as apcv,
    ):
        figures(
            "fetch 3-line prescription",
            lambda: ep.fetch("EPTEST0000000000000043", author_rpps=RPPS),
        )

        def execute() -> object:
            line = LineExecution(
                line_id="EPTEST0000000000000043-3",
                intervention=Intervention.NOT_DISPENSED,
                quantity=0,
                complete=False,
                reason="bench",
            )
            return ep.record_execution(
                ExecutionReport(
                    prescription_id="EPTEST0000000000000043",
                    idempotency_key=str(uuid.uuid4()),
                    dispensed_at=datetime.now(UTC),
                    pharmacist_rpps=RPPS,
                    lines=(line,),
                )
            )

        figures("record execution (new key)", execute)

        def exchange() -> object:
            token = httpx.post(national_sim.url("/_sim/apcv/tokens"), json={}).json()["token"]
            return apcv.exchange(token, author_rpps=RPPS)

        figures("apCV issue + exchange", exchange)
