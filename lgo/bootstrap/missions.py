"""The missions part (vaccination, rapid tests), built by the composition root (``lgo.bootstrap.container``).

``container.missions`` is a :class:`MissionsPart`: the vaccination and TROD services. They use the
dispensing part's catalogue and service (protocol dispensations), the documents part's service
(VAC-NOTE, BIO-TROD, the MSSanté recipient check), the hardware part's scans (a dose given by the
id of its scan) and the clock of the composition root (today's date of the eligibility rules).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from lgo.core.events import EventBus
from lgo.core.settings import Settings
from lgo.services.missions_common import DocumentProducer
from lgo.services.prescriptions import ProductCatalog
from lgo.services.trod import Dispenser, TrodService
from lgo.services.vaccinations import ScanLookup, VaccinationService
from lgo.store.db import Database


class MissionsPart:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        events: EventBus,
        catalog: ProductCatalog,
        documents: DocumentProducer,
        dispenser: Dispenser,
        scans: ScanLookup,
        clock: Callable[[], datetime],
    ) -> None:
        pharmacy = settings.pharmacy
        self.vaccinations = VaccinationService(
            db, catalog, lambda: documents, scans=scans, events=events, clock=clock
        )
        self.trod = TrodService(
            db,
            catalog,
            lambda: documents,
            lambda: dispenser,
            events=events,
            clock=clock,
            pharmacy=(pharmacy.name, pharmacy.address),
        )
