"""Child process of the memory benchmark: prints one JSON line (bare_mib, rest_mib, after_mib, rate,
beyond: the third-party packages loaded beyond the floor).

Usage: python -m tests.bench.memory_child WORKDIR DISPENSATIONS
RSS is read from /proc/self/status (VmRSS), so it counts what the kernel really holds.
"""

from __future__ import annotations

import gc
import importlib
import json
import sys
import time
from pathlib import Path

from tests.bench.measure_api import FRAMEWORK


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def top_level() -> set[str]:
    return {name.split(".")[0] for name in sys.modules}


def main() -> None:
    workdir, count = Path(sys.argv[1]), int(sys.argv[2])
    for name in FRAMEWORK:  # the floor: the same libraries as the start floor
        importlib.import_module(name)
    gc.collect()
    bare = rss_mib()
    floor_modules = top_level()
    from lgo.api.app import create_app
    from lgo.bootstrap.container import Container
    from lgo.bootstrap.dispensing import part_of
    from lgo.core.logs import configure_logging
    from lgo.core.settings import load_settings
    from lgo.store import migrate

    configure_logging("WARNING")
    settings = load_settings(state_dir=workdir, hardware={"pcsc_enabled": False})
    container = Container(settings)
    migrate.upgrade(container.db)
    create_app(settings, container)
    gc.collect()
    rest = rss_mib()
    std = set(sys.stdlib_module_names) | {"lgo", "drivers", "tests", "hwsim"}
    beyond = sorted(m for m in top_level() - floor_modules - std if not m.startswith("_"))
    # The test helpers (they import pytest) only now, after the figure at rest.
    from tests.bench.measure_dispensing import dispense_many
    from tests.fixtures.dispensing import LIST_I_PRODUCT

    part_of(container).catalog.add(LIST_I_PRODUCT)
    start = time.perf_counter()
    dispense_many(container.db, count, "mem", part_of(container).service)
    rate = count / (time.perf_counter() - start)
    gc.collect()
    after = rss_mib()
    figures = {"bare_mib": bare, "rest_mib": rest, "after_mib": after, "rate": rate}
    print(json.dumps({**{k: round(v, 1) for k, v in figures.items()}, "beyond": " ".join(beyond)}))
    container.db.dispose()


if __name__ == "__main__":
    main()
