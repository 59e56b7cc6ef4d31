"""Benchmark: what the pharmacist waits for on the counter page (Chromium, real daemon, hw-sim,
national simulator), from the action to the DOM change, noted in the page by a MutationObserver.

- page load → live stream connected (reload with the stored token);
- carte Vitale inserted in hw-sim → patient on screen (pcscd, Vitale read, SSE, two API calls);
- prescription number typed + Enter → its lines on screen (POST /v1/scans, GET /v1/prescriptions
  with the national simulator on 127.0.0.1).

Prints figures only; nothing here passes or fails on time.
Run: .venv/bin/pytest tests/bench/test_counter_page_bench.py -s
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import httpx
import pytest

from tests.e2e.test_counter_page import PHARMACIST, SIMPLE_RX, Daemon, daemon, page

pytestmark = [pytest.mark.browser, pytest.mark.e2e]
ROUNDS = 3
__all__ = ["daemon", "page"]  # fixtures shared with the e2e module

WATCH = """(condition) => {
  const test = new Function(`return (${condition});`);
  window.__benchSeen = new Promise((resolve) => {
    const check = () => { if (test()) { observer.disconnect(); resolve(Date.now()); } };
    const observer = new MutationObserver(check);
    observer.observe(document.body, { subtree: true, childList: true, attributes: true,
                                      characterData: true });
  });
}"""


def _timed(page: Any, condition: str, action: Any) -> float:
    """Milliseconds from ``action()`` to the first DOM state where ``condition`` holds."""
    page.evaluate(WATCH, condition)
    start_ms = time.time() * 1000  # same machine clock as the page's Date.now()
    action()
    seen_ms = float(page.evaluate("window.__benchSeen"))
    return seen_ms - start_ms


def _figure(label: str, values: list[float]) -> str:
    return (
        f"{label:<36} n={len(values)} median {statistics.median(values):7.1f} ms"
        f"  min {min(values):7.1f}  max {max(values):7.1f}"
    )


def test_counter_page_latencies(page: Any, daemon: Daemon, hwsim_bench: Any) -> None:
    page.goto(f"{daemon.url}/#token={daemon.token}")
    page.wait_for_selector("#conn[data-state='online']")
    loads = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        page.reload()
        page.wait_for_selector("#conn[data-state='online']")
        loads.append((time.perf_counter() - start) * 1000)

    vitale = []
    for _ in range(ROUNDS):
        vitale.append(
            _timed(
                page,
                "!!document.querySelector('#patient-card')",
                lambda: hwsim_bench.client.insert("vitale", "seul", reader=0),
            )
        )
        hwsim_bench.client.remove(0)
        page.evaluate("document.getElementById('patient-current').replaceChildren()")

    hwsim_bench.client.insert("cps", "pharmacien", reader=1)
    page.wait_for_selector("#pin-input", state="visible")
    opened = httpx.post(
        f"{daemon.url}/v1/cps/session",
        json={"kind": "cps", "pin": PHARMACIST.pin},
        headers={"Authorization": f"Bearer {daemon.token}"},
        timeout=10,
    )
    assert opened.status_code == 201, opened.text

    def type_scan() -> None:
        page.locator("#scan-input").fill(SIMPLE_RX)
        page.locator("#scan-input").press("Enter")

    scans = []
    for _ in range(ROUNDS):
        page.evaluate("document.getElementById('rx').replaceChildren()")
        scans.append(_timed(page, "!!document.querySelector('#rx-lines tbody tr')", type_scan))
    hwsim_bench.client.remove(1)

    print()
    print(_figure("[bench page] load → stream online", loads))
    print(_figure("[bench page] Vitale in → patient shown", vitale))
    print(_figure("[bench page] typed Rx → lines shown", scans))
    assert len(vitale) == len(scans) == ROUNDS
