"""The national-services simulator: one FastAPI app for every simulated national service.

Add a service with one line in :data:`SERVICES` (see README.md): it is mounted under its prefix,
every request to it is recorded and subject to the faults armed for its name, and its ``setup`` runs
at start and on ``POST /_sim/reset``.

Run it alone with ``python -m hwsim.national.app [--port 8765]``; ``hwsim up`` starts it too.
"""

from __future__ import annotations

import argparse
import ipaddress
from datetime import datetime
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import APIRouter, FastAPI, HTTPException, Query
from pydantic import BaseModel

from hwsim.national import annuaire as annuaire_sim
from hwsim.national import apcv, eprescription
from hwsim.national import crl as crl_sim
from hwsim.national import dmp as dmp_sim
from hwsim.national import insi as insi_sim
from hwsim.national import psc as psc_sim
from hwsim.national.context import DEFAULT_FIXTURES, ServiceMount, SimClock, SimDep, SimState
from hwsim.national.faults import Fault, FaultSpec
from hwsim.national.middleware import RecorderFaultMiddleware
from hwsim.national.recorder import RecordedRequest

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765

# The registry: (name, prefix, router, setup, control). One line per service.
SERVICES: list[ServiceMount] = [
    ServiceMount(
        "eprescription",
        "/eprescription/fhir",
        eprescription.router,
        eprescription.setup,
        eprescription.control,
    ),
    ServiceMount("apcv", "/apcv", apcv.router, apcv.setup, apcv.control),
    insi_sim.mount,
    psc_sim.mount,
    annuaire_sim.mount,
    dmp_sim.mount,
    crl_sim.mount,
]

control = APIRouter(prefix="/_sim", tags=["simulator control"])


class ClockRequest(BaseModel):
    now: datetime | None = None  # None: back to wall-clock time
    advance_s: float | None = None


@control.get("/recorder")
async def recorder_list(
    sim: SimDep, service: str | None = None, method: str | None = None
) -> list[RecordedRequest]:
    return sim.recorder.entries(service, method)


@control.delete("/recorder")
async def recorder_clear(sim: SimDep) -> dict[str, bool]:
    sim.recorder.clear()
    return {"cleared": True}


@control.post("/faults")
async def faults_arm(sim: SimDep, spec: FaultSpec) -> Fault:
    return sim.faults.arm(spec)


@control.get("/faults")
async def faults_list(sim: SimDep) -> list[Fault]:
    return sim.faults.list()


@control.delete("/faults")
async def faults_clear(sim: SimDep, service: str | None = Query(None)) -> dict[str, int]:
    return {"cleared": sim.faults.clear(service)}


class ClockState(BaseModel):
    now: datetime
    frozen: bool


@control.get("/clock")
async def clock_show(sim: SimDep) -> ClockState:
    return ClockState(now=sim.clock.now(), frozen=sim.clock.frozen)


@control.post("/clock")
async def clock_set(sim: SimDep, request: ClockRequest) -> dict[str, str]:
    if request.advance_s is not None:
        sim.clock.advance(request.advance_s)
    elif request.now is not None and request.now.tzinfo is None:
        raise HTTPException(422, "now: heure sans fuseau (ajoutez +01:00 ou Z)")
    else:
        sim.clock.freeze(request.now)
    return {"now": sim.clock.now().isoformat()}


@control.post("/reset")
async def reset(sim: SimDep) -> dict[str, bool]:
    reset_state(sim)
    return {"reset": True}


@control.get("/services")
async def services() -> list[dict[str, str]]:
    return [{"name": s.name, "prefix": s.prefix} for s in SERVICES]


def reset_state(sim: SimState) -> None:
    """Fixtures reloaded, recorder emptied, faults cleared (the clock is left as it is)."""
    sim.recorder.clear()
    sim.faults.clear()
    for service in SERVICES:
        if service.setup is not None:
            service.setup(sim)


def create_app(
    fixtures_dir: Path | None = None,
    *,
    clock: SimClock | None = None,
    apcv_ttl_s: float = apcv.DEFAULT_TTL_S,
    **settings: Any,
) -> FastAPI:
    """A fresh simulator; its state is ``app.state.sim`` (a :class:`SimState`)."""
    sim = SimState(
        fixtures_dir=fixtures_dir or DEFAULT_FIXTURES,
        clock=clock or SimClock(),
        settings={"apcv_ttl_s": apcv_ttl_s, **settings},
    )
    app = FastAPI(title="hwsim — services nationaux simulés", version="1")
    app.state.sim = sim
    for service in SERVICES:
        app.include_router(service.router, prefix=service.prefix)
        if service.control is not None:
            app.include_router(service.control, prefix=f"/_sim/{service.name}")
    app.include_router(control)
    app.add_middleware(
        RecorderFaultMiddleware,
        state=lambda: sim,
        prefixes={service.prefix: service.name for service in SERVICES},
    )
    reset_state(sim)
    return app


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def run(
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    fixtures_dir: Path | None = None,
    *,
    allow_non_loopback: bool = False,
) -> None:
    """Serve the simulator (blocking). Loopback only unless told otherwise: it holds test data
    and answers anyone, so it must never face a network by accident."""
    if not is_loopback(host) and not allow_non_loopback:
        raise ValueError(f"refusing to serve the national simulator on non-loopback {host!r}")
    uvicorn.run(create_app(fixtures_dir), host=host, port=port, log_level="info")


def main() -> None:
    parser = argparse.ArgumentParser(description="Simulateur des services nationaux (lgo).")
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--fixtures", type=Path, default=None)
    args = parser.parse_args()
    run(args.host, args.port, args.fixtures)


if __name__ == "__main__":
    main()
