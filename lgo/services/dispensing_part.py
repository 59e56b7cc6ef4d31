"""Wiring of the dispensing part into the daemon's container (listed in ``bootstrap.PARTS``).

``container.extras["dispensing"]`` holds a :class:`DispensingPart`: the dispensing service, the
outbox worker (a background thread started and stopped with the daemon) and the product catalogue.
The e-prescription client is the national part's (``extras["eprescription"]``) when it installs
one, else our own on ``{national.base_url}/eprescription/fhir``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from lgo.logging import get_logger
from lgo.national.eprescription import EPrescriptionClient
from lgo.services.dispensing import DispensingService
from lgo.services.outbox import OutboxWorker
from lgo.services.prescriptions import CATALOG_FILE, CatalogError, InMemoryCatalog, load_catalog

if TYPE_CHECKING:
    from lgo.bootstrap import ComponentHealth, Container

log = get_logger(__name__)
KEY = "dispensing"
EPRESCRIPTION_PATH = "/eprescription/fhir"


class _LazyEPrescription:
    """Resolves the client on first use, so the order of PARTS does not matter."""

    def __init__(self, container: Container) -> None:
        self._container = container
        self._client: Any = None

    def _get(self) -> Any:
        if self._client is None:
            shared = self._container.extras.get("eprescription")
            if shared is None:
                national = self._container.settings.national
                shared = EPrescriptionClient(
                    national.base_url.rstrip("/") + EPRESCRIPTION_PATH,
                    timeout_s=national.timeout_s,
                    connect_timeout_s=national.connect_timeout_s,
                )
                self._container.extras["eprescription"] = shared
            self._client = shared
        return self._client

    def fetch(self, prescription_id: str, *, author_rpps: str) -> Any:
        return self._get().fetch(prescription_id, author_rpps=author_rpps)

    def record_execution(self, report: Any) -> Any:
        return self._get().record_execution(report)


class _LazyIdentity:
    """The identity part's service (``extras["identity"]``) when installed; else no INS goes out."""

    def __init__(self, container: Container) -> None:
        self._container = container

    def qualified_ins(self, patient_id: str) -> tuple[str, str] | None:
        identity = self._container.extras.get("identity")
        if identity is None or not hasattr(identity, "qualified_ins"):
            return None
        found: tuple[str, str] | None = identity.qualified_ins(patient_id)
        return found


class DispensingPart:
    def __init__(self, container: Container) -> None:
        self.catalog, self.catalog_problem = _catalog(container.settings.state_dir / CATALOG_FILE)
        eprescription = _LazyEPrescription(container)
        self.worker = OutboxWorker(
            container.db, container.events, eprescription, identity=_LazyIdentity(container)
        )
        self.service = DispensingService(
            container.db,
            container.events,
            self.catalog,
            eprescription=eprescription,
            pharmacy_finess=container.settings.pharmacy.finess,
            on_commit=self.worker.notify,
        )


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
    return cast(DispensingPart, container.extras[KEY])


def install(container: Container) -> None:
    from lgo.bootstrap import ComponentHealth

    part = DispensingPart(container)
    container.extras[KEY] = part

    async def start() -> None:
        part.worker.start()

    async def stop() -> None:
        await asyncio.to_thread(part.worker.stop)

    def health() -> ComponentHealth:
        degraded = part.worker.degraded
        detail = "e-prescription unreachable: executions queued" if degraded else "ok"
        return ComponentHealth(not degraded, detail, {"degraded": degraded})

    def catalog_health() -> ComponentHealth:
        problem = part.catalog_problem
        return ComponentHealth(problem is None, problem or f"{part.catalog.size} product(s)")

    container.add_lifecycle("outbox", start, stop)
    container.add_health_check("outbox", health)
    container.add_health_check("catalog", catalog_health)
