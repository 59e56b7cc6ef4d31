"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig

from lgo import __version__
from lgo.api.contract import install_contract
from lgo.api.deps import DatabaseThreads
from lgo.api.direct import lane_paths
from lgo.api.observability import Metrics
from lgo.api.problems import install_problem_handlers
from lgo.api.routers import ROUTERS
from lgo.api.routers.health import ProbeCache
from lgo.api.security import RequestGate
from lgo.bootstrap.container import Container
from lgo.core.settings import Settings
from lgo.services.counter_tokens import CounterTokens

WEB_DIR = Path(__file__).resolve().parent.parent / "web"

DESCRIPTION = """API locale du poste de dispensation lgo.

Chaque requête porte `Authorization: Bearer <jeton du poste>` (créé par `lgo counters add`).
Les erreurs suivent la RFC 9457 (`application/problem+json`), avec un `type` stable
`urn:lgo:problem:<code>`. Les événements en direct sont servis en `text/event-stream` sur `/v1/events`.
"""


# FastAPI's native OpenTelemetry off: nothing about a request leaves the counter PC (paths name
# patients and prescriptions), even if a global provider or the OTEL_* variables are set; and no
# provider lookup per request (issue 20).
NO_TELEMETRY: TelemetryConfig = {
    "tracing": False,
    "metrics": False,
    "logs": False,
    "auto_configure": False,
}


def create_app(settings: Settings, container: Container | None = None) -> FastAPI:
    container = container or Container(settings)
    tokens = CounterTokens(container.db)  # bearer tokens checked in memory (docs/api.md)
    db_threads = DatabaseThreads(settings.database.pool_size)  # lgo/api/deps.py

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await tokens.start()
        try:
            await container.start()
            try:
                yield
            finally:
                try:
                    await db_threads.shutdown()  # the calls under way end before the database
                finally:
                    await container.stop()
        finally:
            await tokens.stop()

    app = FastAPI(
        title="lgo",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        openapi_url="/v1/openapi.json",
        docs_url="/v1/docs",
        redoc_url=None,
        telemetry=NO_TELEMETRY,
    )
    app.state.container = container
    app.state.tokens = tokens
    app.state.db_threads = db_threads
    app.state.probes = ProbeCache()  # /v1/health: healthy database answers reused briefly
    app.state.metrics = Metrics()
    # Parts' Prometheus collectors (e.g. the stats part's figures), read on each scrape.
    for collector in container.metrics_collectors:
        app.state.metrics.registry.register(collector)
    install_problem_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    install_contract(app, ROUTERS)  # docs/api.md: Problem and the problems of each operation
    _mount_web(app)
    # Host/Origin guard, body cap (tests/hostile), then request id, access log and metrics.
    app.add_middleware(
        RequestGate,
        settings=settings.api,
        max_body_bytes=settings.api.max_body_bytes,
        metrics=app.state.metrics,
        lane_paths=lane_paths(ROUTERS),  # the dispensation POSTs, below Starlette's stack
    )
    return app


def _mount_web(app: FastAPI) -> None:
    """Serve the counter page at ``/`` when it is installed (lgo/web)."""
    from fastapi.staticfiles import StaticFiles

    static = WEB_DIR / "static"
    if (static / "index.html").is_file():
        app.mount("/", StaticFiles(directory=static, html=True), name="web")
