"""Benchmarks stay out of the default run: they take minutes and assert no timing, so the test
suite keeps only their smoke test (``test_bench_smoke.py``: the runner works and writes every
figure). They run when named on the command line (``pytest tests/bench/test_x.py -s``), with
``LGO_BENCH=1``, or through the runner (``python -m tests.bench``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ALWAYS = {"test_bench_smoke.py"}


def _named_on_command_line(config: pytest.Config) -> bool:
    for arg in config.args:
        path = Path(arg.split("::", 1)[0]).resolve()
        if path == HERE or HERE in path.parents:
            return True
    return False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("LGO_BENCH") == "1" or _named_on_command_line(config):
        return
    kept, benches = [], []
    for item in items:
        path = Path(str(item.path)).resolve()
        in_bench = HERE in path.parents and path.name not in ALWAYS
        (benches if in_bench else kept).append(item)
    if benches:
        config.hook.pytest_deselected(items=benches)
        items[:] = kept
