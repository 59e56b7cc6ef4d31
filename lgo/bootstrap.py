"""The container: every long-lived object of the daemon, built once from the settings.

Parts wire themselves in through ``PARTS`` (bottom of this file): each named module has an
``install(container)`` that stores its services in ``container.extras`` (or typed attributes) and, when
they run in the background, adds a start/stop hook with ``add_lifecycle``. Health providers registered with
``add_health_check`` feed ``GET /v1/health``.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from lgo.errors import LgoError
from lgo.events import EventBus
from lgo.logging import get_logger
from lgo.sessions import SessionRegistry
from lgo.settings import Settings
from lgo.store.db import Database

log = get_logger(__name__)
SESSION_REAP_INTERVAL_S = 5.0


@dataclass
class ComponentHealth:
    ok: bool
    detail: str = ""
    data: dict[str, Any] = field(default_factory=dict)


HealthCheck = Callable[[], ComponentHealth]
StartHook = Callable[[], Awaitable[None]]
StopHook = Callable[[], Awaitable[None]]


class Container:
    def __init__(self, settings: Settings, db: Database | None = None) -> None:
        self.settings = settings
        self.db = db or Database(
            settings.database_url, busy_timeout_ms=settings.database.busy_timeout_ms
        )
        self.events = EventBus()
        self.sessions = SessionRegistry(self.events)
        self.health_checks: dict[str, HealthCheck] = {}
        self._lifecycle: list[tuple[str, StartHook, StopHook]] = []
        self._started: list[tuple[str, StopHook]] = []
        self.extras: dict[str, Any] = {}
        self.add_health_check("database", self._database_health)
        self._reaper: asyncio.Task[None] | None = None
        self.add_lifecycle("sessions", self._start_reaper, self._stop_reaper)
        for module_name in PARTS:
            importlib.import_module(module_name).install(self)

    def add_health_check(self, name: str, check: HealthCheck) -> None:
        self.health_checks[name] = check

    def add_lifecycle(self, name: str, start: StartHook, stop: StopHook) -> None:
        self._lifecycle.append((name, start, stop))

    async def start(self) -> None:
        self.events.bind_loop(asyncio.get_running_loop())
        for name, start, stop in self._lifecycle:
            await start()
            self._started.append((name, stop))
            log.info("component_started", component=name)

    async def stop(self) -> None:
        while self._started:
            name, stop = self._started.pop()
            try:
                await stop()
            except Exception:
                log.exception("component_stop_failed", component=name)
        self.events.bind_loop(None)
        self.db.dispose()

    def health(self) -> dict[str, ComponentHealth]:
        results: dict[str, ComponentHealth] = {}
        for name, check in self.health_checks.items():
            try:
                results[name] = check()
            except Exception as exc:  # a broken probe must not break /v1/health
                results[name] = ComponentHealth(False, f"{type(exc).__name__}")
        return results

    async def _start_reaper(self) -> None:
        async def reap() -> None:
            # An e-CPS session must end at its expiry even when no request comes in.
            while True:
                await asyncio.sleep(SESSION_REAP_INTERVAL_S)
                await asyncio.to_thread(self.sessions.reap)

        self._reaper = asyncio.create_task(reap(), name="session-reaper")

    async def _stop_reaper(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper

    def _database_health(self) -> ComponentHealth:
        from lgo.store import migrate

        try:
            migrate.check(self.db)
        except LgoError as exc:  # e.g. not migrated: its French detail tells what to do
            return ComponentHealth(False, exc.detail or exc.title)
        except Exception as exc:  # a driver's text may quote SQL and parameters: type only
            return ComponentHealth(False, type(exc).__name__)
        return ComponentHealth(True, self.db.dialect)


# Each part that runs inside the daemon names its wiring module here. That module defines
# ``install(container: Container) -> None``, which sets attributes, health checks and lifecycle hooks.
PARTS: list[str] = [
    "lgo.services.national_part",
    "lgo.services.dispensing_part",
    "lgo.services.psc_part",
    "lgo.services.identity_part",
    "lgo.services.hardware_part",
    "lgo.services.documents_part",
    "lgo.services.stats_part",
    "lgo.services.missions_part",
]
