"""Wiring of the documents part into the daemon's container (listed in ``bootstrap.PARTS``).

``container.extras["documents"]`` holds a :class:`DocumentsPart`: the document service, the DMP
client and consultation, the MSSanté client (only when its certificate, key and CA are configured)
and the delivery worker (a background thread started and stopped with the daemon). The patient
directory is the identity part's service, looked up on first use so that the order of PARTS does
not matter.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, cast

from lgo.documents.models import Organisation
from lgo.domain.identity import Ins
from lgo.errors import Unavailable
from lgo.national.dmp import DmpClient
from lgo.national.mss import MssClient, MssConfig
from lgo.services.documents import (
    KIND_DMP,
    KIND_MSS,
    DeliveryWorker,
    DmpConsultation,
    DocumentService,
    dmp_handler,
    mss_handler,
)

if TYPE_CHECKING:
    from lgo.bootstrap import ComponentHealth, Container
    from lgo.settings import Settings

KEY = "documents"
DMP_PATH = "/dmp"


class MssNotConfigured(Unavailable):
    slug = "mss-not-configured"
    title = "MSSanté non configurée : certificat de la pharmacie absent"


class _LazyPatients:
    """The identity part's service, resolved on first call."""

    def __init__(self, container: Container) -> None:
        self._container = container

    def _service(self) -> Any:
        return self._container.extras["identity"]

    def get(self, patient_id: str) -> Any:
        return self._service().get(patient_id)

    def require_qualified_ins(self, patient_id: str) -> Ins:
        ins: Ins = self._service().require_qualified_ins(patient_id)
        return ins


def dmp_client_from(settings: Settings) -> DmpClient:
    national = settings.national
    return DmpClient.over_http(
        national.dmp.url or national.base_url.rstrip("/") + DMP_PATH,
        finess=settings.pharmacy.finess,
        timeout_s=national.timeout_s,
        connect_timeout_s=national.connect_timeout_s,
    )


def mss_client_from(settings: Settings) -> MssClient | None:
    mss = settings.national.mss
    if not (mss.cert_file and mss.key_file and mss.ca_file):
        return None
    return MssClient(MssConfig(
        host=mss.host, port=mss.port, sender=mss.sender, cert_file=mss.cert_file,
        key_file=mss.key_file, ca_file=mss.ca_file, timeout_s=mss.timeout_s,
    ))  # fmt: skip


class DocumentsPart:
    def __init__(self, container: Container) -> None:
        settings = container.settings
        patients = _LazyPatients(container)
        self.dmp = dmp_client_from(settings)
        self.mss = mss_client_from(settings)
        handlers = {KIND_DMP: dmp_handler(self.dmp)}
        if self.mss is not None:
            handlers[KIND_MSS] = mss_handler(self.mss)
        self.worker = DeliveryWorker(container.db, handlers, events=container.events)
        pharmacy = settings.pharmacy
        self.service = DocumentService(
            container.db, patients, Organisation(pharmacy.finess, pharmacy.name, pharmacy.address),
            events=container.events, on_queued=self.worker.notify,
        )  # fmt: skip
        self.consultation = DmpConsultation(patients, self.dmp)

    def require_mss(self) -> None:
        if self.mss is None:
            raise MssNotConfigured()


def part_of(container: Container) -> DocumentsPart:
    return cast(DocumentsPart, container.extras[KEY])


def install(container: Container) -> None:
    from lgo.bootstrap import ComponentHealth

    part = DocumentsPart(container)
    container.extras[KEY] = part

    async def start() -> None:
        part.worker.start()

    async def stop() -> None:
        await asyncio.to_thread(part.worker.stop)
        part.dmp.close()

    def health() -> ComponentHealth:
        degraded = part.worker.degraded
        detail = "DMP/MSSanté unreachable: documents queued" if degraded else "ok"
        return ComponentHealth(not degraded, detail, {
            "degraded": degraded, "mss_configured": part.mss is not None,
        })  # fmt: skip

    container.add_lifecycle("documents", start, stop)
    container.add_health_check("documents", health)
