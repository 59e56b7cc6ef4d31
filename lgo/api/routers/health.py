"""``GET /v1/health``: ok or degraded, with one entry per component.

The components' states are read live on every request: those known to read memory only
(:data:`IN_MEMORY_PROBES`) on the event loop, any other off it. The exception is the probes that cost
a database round trip (:data:`DATABASE_PROBES`): their *healthy* answer is reused for at most
:data:`REUSE_OK_S`, so that a counter polling health does not cost a query each time. A failed answer
is never reused: once a probe has seen the failure, every request probes again and shows it until it
is cured.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from lgo import __version__
from lgo.api.deps import CounterDep, require_counter
from lgo.api.direct import CounterRoute
from lgo.bootstrap.container import Container
from lgo.core.lifecycle import ComponentHealth, HealthCheck

# The token checked by the route's handler (CounterRoute), before FastAPI solves the rest: the
# route every counter polls spares FastAPI's solving of the check (issue 20). The endpoint's
# ``counter`` parameter then reads the counter already checked; the schema is unchanged.
router = APIRouter(
    tags=["health"], dependencies=[Depends(require_counter)], route_class=CounterRoute
)

IN_MEMORY_PROBES = frozenset({"outbox", "catalog", "pcsc", "documents"})  # attributes only
DATABASE_PROBES = frozenset({"database"})
REUSE_OK_S = 1.0


class ComponentState(BaseModel):
    ok: bool
    detail: str = ""


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    version: str
    counter: str
    components: dict[str, ComponentState]


class ProbeCache:
    """The last healthy answer of each database probe, with the time it was taken."""

    def __init__(self) -> None:
        self._ok: dict[str, tuple[float, ComponentHealth]] = {}

    def fresh(self, name: str) -> ComponentHealth | None:
        kept = self._ok.get(name)
        if kept is None or time.monotonic() - kept[0] > REUSE_OK_S:
            return None
        return kept[1]

    def keep(self, name: str, state: ComponentHealth, taken: float) -> None:
        if state.ok:
            self._ok[name] = (taken, state)
        else:
            self._ok.pop(name, None)


def probe(check: HealthCheck) -> ComponentHealth:
    try:
        return check()
    except Exception as exc:  # a broken probe must not break /v1/health
        return ComponentHealth(False, type(exc).__name__)


def _probe_all(checks: dict[str, HealthCheck]) -> dict[str, ComponentHealth]:
    return {name: probe(check) for name, check in checks.items()}


@router.get("/v1/health", response_model=Health, summary="État du service et de ses composants")
async def health(request: Request, counter: CounterDep) -> dict[str, Any]:
    # The container from the app, not through a dependency: one fewer for FastAPI to solve on a
    # route polled by every counter (issue 20).
    container: Container = request.app.state.container
    cache: ProbeCache = request.app.state.probes
    states: dict[str, ComponentHealth] = {}
    blocking: dict[str, HealthCheck] = {}
    for name, check in container.health_checks.items():
        if name in IN_MEMORY_PROBES:
            states[name] = probe(check)
        elif name in DATABASE_PROBES and (kept := cache.fresh(name)) is not None:
            states[name] = kept
        else:
            blocking[name] = check
    if blocking:
        taken = time.monotonic()
        for name, state in (await run_in_threadpool(_probe_all, blocking)).items():
            if name in DATABASE_PROBES:
                cache.keep(name, state, taken)
            states[name] = state
    components = {
        name: {"ok": states[name].ok, "detail": states[name].detail}
        for name in container.health_checks
    }
    status: Literal["ok", "degraded"] = (
        "ok" if all(states[name].ok for name in components) else "degraded"
    )
    # Plain values: FastAPI validates them once against Health (response_model) and writes the
    # same answer; a Health built here would be built, dumped and validated again.
    return {
        "status": status,
        "version": __version__,
        "counter": counter.name,
        "components": components,
    }
