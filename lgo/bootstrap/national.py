"""The e-prescription and apCV clients, built once by the composition root (``lgo.bootstrap.container``).

``container.national.eprescription`` is the one :class:`EPrescriptionClient` (the dispensing part
and its outbox worker use it), ``container.national.apcv`` the :class:`ApcvClient`. URLs default to
``national.base_url`` + the simulator's prefixes; timeouts, deadline and attempts come from
``national``.
"""

from __future__ import annotations

from dataclasses import dataclass

from lgo.core.settings import Settings
from lgo.national.apcv import ApcvClient
from lgo.national.eprescription import EPrescriptionClient
from lgo.national.transport import RetryPolicy


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


@dataclass
class NationalPart:
    eprescription: EPrescriptionClient
    apcv: ApcvClient

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        self.eprescription.close()
        self.apcv.close()


def build(
    settings: Settings,
    eprescription: EPrescriptionClient | None = None,
    apcv: ApcvClient | None = None,
) -> NationalPart:
    return NationalPart(
        eprescription or eprescription_client(settings), apcv or apcv_client(settings)
    )
