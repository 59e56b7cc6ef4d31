"""The composition root: every long-lived object of lgo, built once from the settings.

:class:`Container` builds the parts in plain code, in dependency order (national clients, hardware,
identity, Pro Santé Connect, dispensing, documents, stats, missions), each into one typed attribute.
A part that needs another receives it as a constructor argument typed by a Protocol. The daemon
(``lgo.api.app``) and the CLI use this same root; the CLI never calls :meth:`Container.start`, so no
background worker runs in a command. Tests hand their own adapters through :class:`Adapters`.

Background components share one :class:`Lifecycle` protocol and are listed once, in
:attr:`Container.components` (started in that order, stopped in reverse). Health providers in
:attr:`Container.health_checks` feed ``GET /v1/health``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

from prometheus_client.registry import Collector

from lgo.bootstrap import dispensing as dispensing_part
from lgo.bootstrap import documents as documents_part
from lgo.bootstrap import hardware as hardware_part
from lgo.bootstrap import identity as identity_part
from lgo.bootstrap import missions as missions_part
from lgo.bootstrap import national as national_part
from lgo.bootstrap import psc as psc_part
from lgo.bootstrap import stats as stats_part
from lgo.core.errors import LgoError
from lgo.core.events import EventBus
from lgo.core.lifecycle import ComponentHealth, HealthCheck, Lifecycle
from lgo.core.logs import get_logger
from lgo.core.settings import Settings
from lgo.national.annuaire import PractitionerDirectory
from lgo.national.apcv import ApcvClient
from lgo.national.dmp import DmpGateway
from lgo.national.eprescription import EPrescriptionClient
from lgo.national.mss import MssGateway
from lgo.services.cps import CpsCard
from lgo.services.dispensation_intake import DispensationIntake
from lgo.services.identity import InsiPort
from lgo.services.local_time import local_date
from lgo.services.prescription_reading import PrescriptionReader
from lgo.services.psc_login import PscProvider
from lgo.services.sessions import SessionRegistry
from lgo.store.columns import utcnow
from lgo.store.db import Database

log = get_logger(__name__)
SESSION_REAP_INTERVAL_S = 5.0


@dataclass
class Adapters:
    """The outside world, as a test replaces it (a fake, or a client aimed at the simulator).

    Each one left None is built from the settings: the clock is the system's (UTC), national clients
    use ``national.*``, the CPS goes through PC/SC and ``hardware.pkcs11_module``.
    """

    clock: Callable[[], datetime] | None = None  # aware UTC "now" of the acts and their rules
    eprescription: EPrescriptionClient | None = None
    apcv: ApcvClient | None = None
    insi: InsiPort | None = None  # INSi (identity qualification)
    dmp: DmpGateway | None = None  # DMP (provide, consult)
    mss: MssGateway | None = None  # MSSanté (configured as soon as one is handed in)
    cps_card: CpsCard | None = None  # the CPS card and its PKCS#11 token
    psc: PscProvider | None = None  # Pro Santé Connect (e-CPS sign-in)
    annuaire: PractitionerDirectory | None = None  # Annuaire Santé (behind lgo's cache)


class SessionReaper:
    """Ends an e-CPS session at its expiry even when no request comes in."""

    def __init__(self, sessions: SessionRegistry) -> None:
        self._sessions = sessions
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._reap(), name="session-reaper")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _reap(self) -> None:
        while True:
            await asyncio.sleep(SESSION_REAP_INTERVAL_S)
            await asyncio.to_thread(self._sessions.reap)


class Container:
    def __init__(
        self, settings: Settings, db: Database | None = None, adapters: Adapters | None = None
    ) -> None:
        adapters = adapters or Adapters()
        clock = adapters.clock or utcnow
        self.clock = clock
        self.settings = settings
        self.db = db or Database(
            settings.database_url,
            busy_timeout_ms=settings.database.busy_timeout_ms,
            pool_size=settings.database.pool_size,
        )
        self.events = EventBus()
        self.sessions = SessionRegistry(self.events)
        self.national = national_part.build(settings, adapters.eprescription, adapters.apcv)
        self.hardware = hardware_part.build(
            settings, self.events, self.sessions, adapters.cps_card, clock
        )
        cps = self.hardware.cps
        self.identity = identity_part.build(
            settings, self.db, self.events, cps.signer, insi=adapters.insi, clock=clock
        )
        self.psc = psc_part.PscPart(
            settings,
            self.sessions,
            psc=adapters.psc,
            annuaire=adapters.annuaire,
            today=(lambda: local_date(clock())) if adapters.clock else date.today,
        )
        self.dispensing = dispensing_part.DispensingPart(
            settings,
            self.db,
            self.events,
            self.national.eprescription,
            self.identity.service,
            clock,
        )
        self.prescriptions = PrescriptionReader(self.dispensing.service, self.psc.prescribers)
        self.dispensation_intake = DispensationIntake(
            self.dispensing.service, self.dispensing.catalog, self.psc.prescribers
        )
        self.documents = documents_part.DocumentsPart(
            settings,
            self.db,
            self.events,
            self.sessions,
            self.identity.service,
            cps.signer,
            dmp=adapters.dmp,
            mss=adapters.mss,
            clock=clock,
        )
        self.stats = stats_part.build(self.db, self.sessions)
        self.missions = missions_part.MissionsPart(
            settings,
            self.db,
            self.events,
            self.dispensing.catalog,
            self.documents.service,
            self.dispensing.service,
            self.hardware.scans,
            clock,
        )
        self.metrics_collectors: list[Collector] = [self.stats.collector]
        self.components: list[tuple[str, Lifecycle]] = [
            ("sessions", SessionReaper(self.sessions)),
            ("national", self.national),
            ("outbox", self.dispensing),
            ("psc", self.psc),
            ("identity", self.identity),
            ("hardware", self.hardware),
            ("documents", self.documents),
            ("stats", self.stats),
        ]
        self.health_checks: dict[str, HealthCheck] = {
            "database": self._database_health,
            "outbox": self.dispensing.health,
            "catalog": self.dispensing.catalog_health,
            "pcsc": self.hardware.health,
            "documents": self.documents.health,
        }
        self._started: list[tuple[str, Lifecycle]] = []

    async def start(self) -> None:
        self.events.bind_loop(asyncio.get_running_loop())
        for name, component in self.components:
            await component.start()
            self._started.append((name, component))
            log.info("component_started", component=name)

    async def stop(self) -> None:
        while self._started:
            name, component = self._started.pop()
            try:
                await component.stop()
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

    def _database_health(self) -> ComponentHealth:
        from lgo.store import migrate

        try:
            migrate.check(self.db)
        except LgoError as exc:  # e.g. not migrated: its French detail tells what to do
            return ComponentHealth(False, exc.detail or exc.title)
        except Exception as exc:  # a driver's text may quote SQL and parameters: type only
            return ComponentHealth(False, type(exc).__name__)
        return ComponentHealth(True, self.db.dialect)
