"""A server process of the API bench (tests/bench/measure_api.py): lgo's app or a bare FastAPI app,
each with the same no-op route, both served the way ``lgo serve`` serves the daemon (the same
uvicorn configuration, :func:`lgo.api.server.server_config`: httptools with
``BoundedHttpToolsProtocol``, lgo's ``SupervisedServer``, logging configured at INFO with JSON lines
to stderr).

    python -m tests.bench.api_server lgo|bare PORT STATE_DIR

``lgo``: the daemon's app and container on the migrated SQLite database of STATE_DIR, with
``GET /v1/bench-noop`` behind the counter token check (the daemon's own routes, ``/v1/health``
included, are unchanged). ``bare``: ``FastAPI()`` with ``GET /noop``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI


def noop() -> dict[str, bool]:
    """The route measured on both sides (a plain ``def``, as most of lgo's routes are)."""
    return {"ok": True}


async def async_noop() -> dict[str, bool]:
    """The same, as an ``async def`` (no threadpool hop: the framework's cost alone)."""
    return {"ok": True}


def lgo_app(settings: Any) -> Any:
    from lgo.api.app import create_app
    from lgo.api.deps import require_counter
    from lgo.api.direct import CounterRoute

    app = create_app(settings)
    for path, route in (("/v1/bench-noop", noop), ("/v1/bench-noop-async", async_noop)):
        # Declared as the daemon's routers declare theirs (e.g. lgo/api/routers/stats.py).
        app.router.add_api_route(
            path, route, dependencies=[Depends(require_counter)], route_class_override=CounterRoute
        )
        app.router.routes.insert(0, app.router.routes.pop())  # before the counter page's "/" mount
    return app


def bare_app() -> FastAPI:
    app = FastAPI()
    app.add_api_route("/noop", noop)
    app.add_api_route("/noop-async", async_noop)
    return app


def main(kind: str, port: int, state_dir: Path) -> None:
    from lgo.api.server import server_config
    from lgo.core.logs import configure_logging
    from lgo.core.settings import load_settings
    from lgo.runtime.supervision import SupervisedServer

    settings = load_settings(
        state_dir=state_dir,
        api={"port": port},
        hardware={"pcsc_enabled": False},
        logging={"level": "INFO"},  # the production default: JSON lines
    )
    # As `lgo serve` does (lgo/cli/common.py), on both sides.
    configure_logging(settings.logging.level, settings.logging.json_output)
    app = lgo_app(settings) if kind == "lgo" else bare_app()
    SupervisedServer(server_config(app, settings)).run()


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] not in ("lgo", "bare"):
        raise SystemExit("usage: python -m tests.bench.api_server lgo|bare PORT STATE_DIR")
    main(sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]))
