"""The hardware part, built by the composition root (``lgo.bootstrap``).

``container.hardware`` holds the :class:`HardwareService`, the :class:`ScanService` and the
:class:`CpsService`. The monitor and scanners start in ``Container.start``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from drivers.scanners import ClassifierConfig
from lgo.events import EventBus
from lgo.services.cps import CpsService
from lgo.services.cps_revocation import revocation_check_from
from lgo.services.hardware import HardwareService
from lgo.services.scans import ScanService
from lgo.sessions import SessionRegistry
from lgo.settings import Settings

if TYPE_CHECKING:
    from lgo.bootstrap import ComponentHealth, Container


@dataclass
class HardwarePart:
    hardware: HardwareService
    scans: ScanService
    cps: CpsService

    async def start(self) -> None:
        await self.hardware.start()

    async def stop(self) -> None:
        await self.hardware.stop()

    def health(self) -> ComponentHealth:
        from lgo.bootstrap import ComponentHealth

        reason = self.hardware.degraded
        if reason == "disabled":
            return ComponentHealth(True, "pcsc disabled")
        data = {"readers": len(self.hardware.readers()), "scanners": self.hardware.scanners()}
        return ComponentHealth(reason is None, reason or "ok", data)


def build(settings: Settings, events: EventBus, sessions: SessionRegistry) -> HardwarePart:
    config = settings.hardware
    scans = ScanService(
        events,
        ClassifierConfig(
            eprescription_pattern=config.eprescription_pattern,
            apcv_pattern=config.apcv_pattern,
        ),
    )
    revocation = revocation_check_from(settings, events)
    cps = CpsService(config, sessions, events, revocation)
    return HardwarePart(HardwareService(config, events, scans, cps), scans, cps)


def hardware_of(container: Container) -> HardwareService:
    return container.hardware.hardware


def scans_of(container: Container) -> ScanService:
    return container.hardware.scans


def cps_of(container: Container) -> CpsService:
    return container.hardware.cps
