"""The missions part (vaccination, rapid tests), built by the composition root (``lgo.bootstrap.container``).

``container.missions`` is a :class:`MissionsPart`: the vaccination and TROD services. They use the
dispensing part's catalogue and service (protocol dispensations) and the documents part's service
(VAC-NOTE, BIO-TROD).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lgo.core.events import EventBus
from lgo.core.settings import Settings
from lgo.services.missions_common import DocumentProducer
from lgo.services.prescriptions import ProductCatalog
from lgo.services.trod import Dispenser, TrodService
from lgo.services.vaccinations import VaccinationService
from lgo.store.db import Database

if TYPE_CHECKING:
    from lgo.bootstrap.container import Container


class MissionsPart:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        events: EventBus,
        catalog: ProductCatalog,
        documents: DocumentProducer,
        dispenser: Dispenser,
    ) -> None:
        pharmacy = settings.pharmacy
        self.vaccinations = VaccinationService(db, catalog, lambda: documents, events=events)
        self.trod = TrodService(
            db,
            catalog,
            lambda: documents,
            lambda: dispenser,
            events=events,
            pharmacy=(pharmacy.name, pharmacy.address),
        )


def part_of(container: Container) -> MissionsPart:
    return container.missions
