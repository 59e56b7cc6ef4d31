"""Shared state of the simulator: clock, recorder, faults and one store per service.

A service router reaches it with ``sim: SimDep`` (a FastAPI dependency) and keeps its own data in
``sim.stores[<service name>]``, filled by the service's ``setup`` function (called at start and on
``POST /_sim/reset``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from hwsim.national.faults import FaultBoard
from hwsim.national.recorder import Recorder

DEFAULT_FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "national"


class SimClock:
    """Wall-clock time unless frozen; every date rule of the simulator reads it."""

    def __init__(self, frozen: datetime | None = None) -> None:
        self._lock = threading.Lock()
        self._frozen = frozen

    def now(self) -> datetime:
        with self._lock:
            return self._frozen if self._frozen is not None else datetime.now(UTC)

    def today(self) -> date:
        return self.now().date()

    def freeze(self, at: datetime | None) -> None:
        """Freeze at ``at`` (aware), or go back to wall-clock time with ``None``."""
        if at is not None and at.tzinfo is None:
            raise ValueError("frozen time must be timezone-aware")
        with self._lock:
            self._frozen = at

    @property
    def frozen(self) -> bool:
        with self._lock:
            return self._frozen is not None

    def advance(self, seconds: float) -> None:
        with self._lock:
            base = self._frozen if self._frozen is not None else datetime.now(UTC)
            self._frozen = base + timedelta(seconds=seconds)


@dataclass
class SimState:
    fixtures_dir: Path
    clock: SimClock = field(default_factory=SimClock)
    recorder: Recorder = field(default_factory=Recorder)
    faults: FaultBoard = field(default_factory=FaultBoard)
    stores: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ServiceMount:
    """One simulated service: where it lives and how its state is built.

    ``name`` keys the recorder and fault injection; ``prefix`` is where ``router`` is mounted;
    ``setup(sim)`` (re)builds ``sim.stores[name]`` from fixtures; ``control`` (optional) is mounted
    under ``/_sim/<name>`` for test and technician controls (never recorded, never faulted).
    """

    name: str
    prefix: str
    router: APIRouter
    setup: Callable[[SimState], None] | None = None
    control: APIRouter | None = None


def get_sim(request: Request) -> SimState:
    state: SimState = request.app.state.sim
    return state


SimDep = Annotated[SimState, Depends(get_sim)]
