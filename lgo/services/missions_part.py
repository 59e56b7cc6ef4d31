"""Wiring of the missions part (vaccination, rapid tests) into the daemon's container (listed in
``bootstrap.PARTS``).

``container.extras["missions"]`` holds a :class:`MissionsPart`: the vaccination and TROD services.
They use the dispensing part's catalogue and service (protocol dispensations) and the documents
part's service (VAC-NOTE, BIO-TROD), looked up on first use so that the order of PARTS does not
matter.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from lgo.domain.products import Pack, Product
from lgo.services.missions_common import DocumentProducer
from lgo.services.trod import Dispenser, TrodService
from lgo.services.vaccinations import VaccinationService

if TYPE_CHECKING:
    from lgo.bootstrap import Container

KEY = "missions"


class _LazyCatalog:
    """The dispensing part's product catalogue, resolved on each call (it may be replaced)."""

    def __init__(self, container: Container) -> None:
        self._container = container

    def _catalog(self) -> Any:
        return self._container.extras["dispensing"].catalog

    def product(self, cip13: str) -> Product | None:
        found: Product | None = self._catalog().product(cip13)
        return found

    def pack(self, cip13: str) -> Pack | None:
        found: Pack | None = self._catalog().pack(cip13)
        return found


class MissionsPart:
    def __init__(self, container: Container) -> None:
        catalog = _LazyCatalog(container)

        def documents() -> DocumentProducer:
            return cast(DocumentProducer, container.extras["documents"].service)

        def dispenser() -> Dispenser:
            return cast(Dispenser, container.extras["dispensing"].service)

        pharmacy = container.settings.pharmacy
        self.vaccinations = VaccinationService(container.db, catalog, documents,
                                               events=container.events)  # fmt: skip
        self.trod = TrodService(container.db, catalog, documents, dispenser,
                                events=container.events,
                                pharmacy=(pharmacy.name, pharmacy.address))  # fmt: skip


def part_of(container: Container) -> MissionsPart:
    return cast(MissionsPart, container.extras[KEY])


def install(container: Container) -> None:
    container.extras[KEY] = MissionsPart(container)
