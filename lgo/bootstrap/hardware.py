"""The hardware part, built by the composition root (``lgo.bootstrap.container``).

``container.hardware`` holds the :class:`HardwareService`, the :class:`ScanService` and the
:class:`CpsService`. The monitor and scanners start in ``Container.start``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from drivers.scanners import ClassifierConfig
from lgo.core.events import EventBus
from lgo.core.lifecycle import ComponentHealth
from lgo.core.settings import Settings
from lgo.services.cps import CpsCard, CpsService
from lgo.services.cps_revocation import revocation_check_from
from lgo.services.hardware import HardwareService
from lgo.services.scans import ScanService
from lgo.services.sessions import SessionRegistry
from lgo.store.columns import utcnow


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
        reason = self.hardware.degraded
        if reason == "disabled":
            return ComponentHealth(True, "pcsc disabled")
        data = {"readers": len(self.hardware.readers()), "scanners": self.hardware.scanners()}
        return ComponentHealth(reason is None, reason or "ok", data)


def build(
    settings: Settings,
    events: EventBus,
    sessions: SessionRegistry,
    cps_card: CpsCard | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> HardwarePart:
    """``cps_card``: the CPS access to use (a fake in a unit test); the PKCS#11 module of
    ``hardware.pkcs11_module`` over PC/SC when None."""
    config = settings.hardware
    scans = ScanService(
        events,
        ClassifierConfig(
            eprescription_pattern=config.eprescription_pattern,
            apcv_pattern=config.apcv_pattern,
        ),
    )
    revocation = revocation_check_from(settings, events, clock)
    cps = CpsService(config, sessions, events, revocation, card=cps_card)
    return HardwarePart(HardwareService(config, events, scans, cps), scans, cps)
