"""Wires the e-prescription and apCV clients into the container.

``container.extras["eprescription"]`` is an :class:`EPrescriptionClient` (the dispensing part and
its outbox worker use it), ``container.extras["apcv"]`` an :class:`ApcvClient`. URLs default to
``national.base_url`` + the simulator's prefixes; timeouts come from ``national``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from lgo.national.apcv import ApcvClient
from lgo.national.eprescription import EPrescriptionClient
from lgo.national.http import RetryPolicy
from lgo.settings import Settings

if TYPE_CHECKING:
    from lgo.bootstrap import Container

EPRESCRIPTION_KEY = "eprescription"
APCV_KEY = "apcv"


def eprescription_client(settings: Settings) -> EPrescriptionClient:
    national = settings.national
    url = national.eprescription.url or national.base_url.rstrip("/") + "/eprescription/fhir"
    return EPrescriptionClient(
        url,
        timeout_s=national.timeout_s,
        connect_timeout_s=national.connect_timeout_s,
        deadline_s=national.eprescription.deadline_s,
        retry=RetryPolicy(attempts=national.eprescription.attempts),
    )


def apcv_client(settings: Settings) -> ApcvClient:
    national = settings.national
    url = national.apcv.url or national.base_url.rstrip("/") + "/apcv"
    return ApcvClient(
        url, timeout_s=national.timeout_s, connect_timeout_s=national.connect_timeout_s
    )


def apcv_of(container: Container) -> ApcvClient:
    return cast(ApcvClient, container.extras[APCV_KEY])


def install(container: Container) -> None:
    eprescription = container.extras.setdefault(
        EPRESCRIPTION_KEY, eprescription_client(container.settings)
    )
    apcv = apcv_client(container.settings)
    container.extras[APCV_KEY] = apcv

    async def start() -> None:
        return None

    async def stop() -> None:
        eprescription.close()
        apcv.close()

    container.add_lifecycle("national", start, stop)
