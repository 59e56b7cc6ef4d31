"""Root of the test suite. Every module in tests/fixtures/ is a pytest plugin (one per part)."""

from __future__ import annotations

import os
from pathlib import Path

# Tests never reach a real national endpoint or the system pcscd by accident.
os.environ.setdefault("LGO_NATIONAL__BASE_URL", "http://127.0.0.1:9")
# Tests run against hw-sim: bench mode (production refuses simulator settings at `lgo serve`).
os.environ.setdefault("LGO_MODE", "bench")
os.environ.setdefault("HOME", str(Path.cwd()))

_FIXTURES = Path(__file__).parent / "fixtures"
pytest_plugins = sorted(
    f"tests.fixtures.{p.stem}" for p in _FIXTURES.glob("*.py") if p.stem != "__init__"
)
