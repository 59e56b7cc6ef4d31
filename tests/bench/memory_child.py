"""Child process of the memory benchmark: prints bare_mib, rest_mib, after_mib and rate.

Usage: python -m tests.bench.memory_child WORKDIR DISPENSATIONS
RSS is read from /proc/self/status (VmRSS), so it counts what the kernel really holds.
"""

from __future__ import annotations

import gc
import sys
import time
from pathlib import Path


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def main() -> None:
    workdir, count = Path(sys.argv[1]), int(sys.argv[2])
    import fastapi  # noqa: F401
    import httpx  # noqa: F401
    import lxml.etree  # noqa: F401
    import pydantic  # noqa: F401
    import sqlalchemy  # noqa: F401
    import uvicorn  # noqa: F401

    bare = rss_mib()
    from lgo.api.app import create_app
    from lgo.bootstrap.container import Container
    from lgo.bootstrap.dispensing import part_of
    from lgo.core.logs import configure_logging
    from lgo.core.settings import load_settings
    from lgo.store import migrate
    from tests.bench.measures import dispense_many
    from tests.fixtures.dispensing import LIST_I_PRODUCT

    configure_logging("WARNING")
    settings = load_settings(state_dir=workdir, hardware={"pcsc_enabled": False})
    container = Container(settings)
    migrate.upgrade(container.db)
    create_app(settings, container)
    part_of(container).catalog.add(LIST_I_PRODUCT)
    gc.collect()
    rest = rss_mib()
    start = time.perf_counter()
    dispense_many(container.db, count, "mem", part_of(container).service)
    rate = count / (time.perf_counter() - start)
    gc.collect()
    after = rss_mib()
    print(f"bare_mib={bare:.1f} rest_mib={rest:.1f} after_mib={after:.1f} rate={rate:.1f}")
    container.db.dispose()


if __name__ == "__main__":
    main()
