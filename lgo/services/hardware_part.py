"""Wiring of the hardware part into the container (``bootstrap.PARTS``).

``container.extras["hardware"]`` (:class:`HardwareService`), ``["scans"]`` (:class:`ScanService`),
``["cps"]`` (:class:`CpsService`). The monitor and scanners start in ``Container.start``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from drivers.scanners import ClassifierConfig
from lgo.services.cps import CpsService
from lgo.services.cps_revocation import revocation_check_from
from lgo.services.hardware import HardwareService
from lgo.services.scans import ScanService

if TYPE_CHECKING:
    from lgo.bootstrap import ComponentHealth, Container

HARDWARE_KEY = "hardware"
SCANS_KEY = "scans"
CPS_KEY = "cps"


def hardware_of(container: Container) -> HardwareService:
    return cast(HardwareService, container.extras[HARDWARE_KEY])


def scans_of(container: Container) -> ScanService:
    return cast(ScanService, container.extras[SCANS_KEY])


def cps_of(container: Container) -> CpsService:
    return cast(CpsService, container.extras[CPS_KEY])


def install(container: Container) -> None:
    from lgo.bootstrap import ComponentHealth

    settings = container.settings.hardware
    scans = ScanService(
        container.events,
        ClassifierConfig(
            eprescription_pattern=settings.eprescription_pattern,
            apcv_pattern=settings.apcv_pattern,
        ),
    )
    revocation = revocation_check_from(container.settings, container.events)
    cps = CpsService(settings, container.sessions, container.events, revocation)
    hardware = HardwareService(settings, container.events, scans, cps)
    container.extras[HARDWARE_KEY] = hardware
    container.extras[SCANS_KEY] = scans
    container.extras[CPS_KEY] = cps

    def health() -> ComponentHealth:
        reason = hardware.degraded
        if reason == "disabled":
            return ComponentHealth(True, "pcsc disabled")
        data = {"readers": len(hardware.readers()), "scanners": hardware.scanners()}
        return ComponentHealth(reason is None, reason or "ok", data)

    container.add_health_check("pcsc", health)
    container.add_lifecycle("hardware", hardware.start, hardware.stop)
