"""Benchmark: Vitale read time against the same PC/SC session with pyscard alone, as a ratio;
monitor insert/remove latency.

Run standalone (starts its own hw-sim):   .venv/bin/python tests/bench/bench_drivers.py
or under pytest with the session bench:   .venv/bin/pytest tests/bench/bench_drivers.py -s
Prints figures only; nothing here passes or fails on time.
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

READS = 50


def measure(client: Any, reader: str, reader_index: int = 0) -> dict[str, float]:
    """Our Vitale read against the same PC/SC session with pyscard alone (tests/bench's row)."""
    from tests.bench.measure_hardware import vitale_read

    (figure,) = vitale_read(client, reader, READS, reader_index)
    assert figure.floor is not None and figure.ratio is not None
    return {
        "read_median_ms": figure.value,
        "raw_median_ms": figure.floor,
        "apdus_per_read": figure.extra["apdus"],
        "raw_apdus": figure.extra["raw_apdus"],
        "ratio": figure.ratio,
    }


def measure_monitor(
    client: Any, reader: str, reader_index: int = 0, n: int = 20
) -> dict[str, float]:
    """Insert/remove → monitor event latency, and pcscd restart → card seen again."""
    import queue

    from drivers.pcsc import CardInserted, CardRemoved, MonitorEvent, ReaderMonitor

    events: queue.Queue[tuple[float, MonitorEvent]] = queue.Queue()
    monitor = ReaderMonitor(lambda e: events.put((time.perf_counter(), e)))
    monitor.start()
    monitor.wait_ready(5)

    def wait(kind: type, since: float) -> float:
        while True:
            at, event = events.get(timeout=10)
            if isinstance(event, kind) and getattr(event, "reader", None) == reader:
                return at - since

    from tests.fixtures.pcsc import wait_card

    inserts, removes, raw = [], [], []
    try:
        for _ in range(n):
            start = time.perf_counter()
            client.insert("vitale", "seul", reader=reader_index)
            wait_card(reader, present=True)  # baseline: a bare SCardGetStatusChange waiter
            raw.append(time.perf_counter() - start)
            inserts.append(wait(CardInserted, start))
            start = time.perf_counter()
            client.remove(reader_index)
            removes.append(wait(CardRemoved, start))
        client.insert("vitale", "seul", reader=reader_index)
        wait(CardInserted, time.perf_counter())
        start = time.perf_counter()
        client.restart_pcscd()
        recovery = wait(CardInserted, start)
        client.remove(reader_index)
    finally:
        monitor.stop()
    return {
        "insert_median_ms": statistics.median(inserts) * 1000,
        "insert_max_ms": max(inserts) * 1000,
        "raw_insert_median_ms": statistics.median(raw) * 1000,
        "raw_insert_max_ms": max(raw) * 1000,
        "remove_median_ms": statistics.median(removes) * 1000,
        "remove_max_ms": max(removes) * 1000,
        "restart_recovery_s": recovery,
        "n": float(n),
    }


def report_monitor(figures: dict[str, float]) -> None:
    print(
        f"monitor insert → CardInserted: median {figures['insert_median_ms']:.0f} ms, "
        f"max {figures['insert_max_ms']:.0f} ms (bare SCardGetStatusChange waiter: median "
        f"{figures['raw_insert_median_ms']:.0f} ms, max {figures['raw_insert_max_ms']:.0f} ms); remove → CardRemoved: median "
        f"{figures['remove_median_ms']:.0f} ms, max {figures['remove_max_ms']:.0f} ms "
        f"(n={figures['n']:.0f})\n"
        f"pcscd restart → card seen again: {figures['restart_recovery_s']:.2f} s"
    )


def report(figures: dict[str, float]) -> None:
    print(
        f"Vitale read (context, connect, transaction, {figures['apdus_per_read']:.0f} APDUs, "
        f"disconnect LEAVE_CARD): median {figures['read_median_ms']:.3f} ms; the same session "
        f"with pyscard alone ({figures['raw_apdus']:.0f} APDUs): {figures['raw_median_ms']:.3f} ms "
        f"(n={READS}); ratio {figures['ratio']:.2f}"
    )


def test_bench_vitale_read(hwsim) -> None:  # type: ignore[no-untyped-def]
    report(measure(hwsim.client, hwsim.reader_names[0]))
    report_monitor(measure_monitor(hwsim.client, hwsim.reader_names[0]))


def main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from hwsim.pcscd import PcscdLayout

    workdir = Path(f"/tmp/hwsim-bench-drivers-{os.getpid()}")
    os.environ["PCSCLITE_CSOCK_NAME"] = str(PcscdLayout(workdir).socket)  # before any pyscard use
    from hwsim.control import Client
    from hwsim.runtime import launch

    launched = launch(workdir, readers=2)
    client = Client(launched.control_socket)
    try:
        reader = str(client.status()["readers"][0]["name"])
        report(measure(client, reader))
        report_monitor(measure_monitor(client, reader))
    finally:
        client.close()
        launched.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
