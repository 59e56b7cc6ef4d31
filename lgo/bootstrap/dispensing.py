"""The dispensing part, built by the composition root (``lgo.bootstrap.container``).

``container.dispensing`` is a :class:`DispensingPart`: the dispensing service, the outbox worker (a
background thread started and stopped with the daemon) and the product catalogue. The
e-prescription client is the national part's (one client for the daemon, built with the deadline
and attempts settings), the INS provider the identity part's service.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from lgo.core.events import EventBus
from lgo.core.lifecycle import ComponentHealth
from lgo.core.logs import get_logger
from lgo.core.settings import Settings
from lgo.services.dispensing import DispensingService, PrescriptionFetcher
from lgo.services.fhir_export import QualifiedInsProvider
from lgo.services.outbox import ExecutionSender, OutboxWorker
from lgo.services.prescriptions import CATALOG_FILE, CatalogError, InMemoryCatalog, load_catalog
from lgo.store.columns import utcnow
from lgo.store.db import Database

if TYPE_CHECKING:
    from lgo.bootstrap.container import Container

log = get_logger(__name__)


class EPrescriptionPort(PrescriptionFetcher, ExecutionSender, Protocol):
    """What dispensing needs of the e-prescription service: fetch and report executions."""


class DispensingPart:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        events: EventBus,
        eprescription: EPrescriptionPort,
        identity: QualifiedInsProvider,
        clock: Callable[[], datetime] = utcnow,  # the "now" of the acts and their rules
    ) -> None:
        self.catalog, self.catalog_problem = _catalog(settings.state_dir / CATALOG_FILE)
        self.worker = OutboxWorker(db, events, eprescription, identity=identity)
        self.service = DispensingService(
            db,
            events,
            self.catalog,
            eprescription=eprescription,
            pharmacy_finess=settings.pharmacy.finess,
            on_commit=self.worker.notify,
            clock=clock,
        )

    async def start(self) -> None:
        self.worker.start()

    async def stop(self) -> None:
        await asyncio.to_thread(self.worker.stop)

    def health(self) -> ComponentHealth:
        degraded = self.worker.degraded
        detail = "e-prescription unreachable: executions queued" if degraded else "ok"
        return ComponentHealth(not degraded, detail, {"degraded": degraded})

    def catalog_health(self) -> ComponentHealth:
        problem = self.catalog_problem
        return ComponentHealth(problem is None, problem or f"{self.catalog.size} product(s)")


def _catalog(path: Path) -> tuple[InMemoryCatalog, str | None]:
    """The product catalogue from the state folder, if there is one. A broken file must not stop
    the counter: it is reported on /v1/health and the catalogue stays empty."""
    if not path.is_file():
        return InMemoryCatalog(), None
    try:
        return load_catalog(path), None
    except (CatalogError, OSError) as exc:
        log.error("catalog_unreadable", error=str(exc))
        return InMemoryCatalog(), str(exc)


def part_of(container: Container) -> DispensingPart:
    return container.dispensing
