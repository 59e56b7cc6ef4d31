"""The identity part, built by the composition root (``lgo.bootstrap.container``).

``container.identity.service`` is the :class:`IdentityService` (also the ``QualifiedInsProvider``
that dispensing and the FHIR export use). Its INSi client is built on first use from
``settings.national.insi`` (endpoint, IDAM, certificate or CPS authentication): reading a
certificate or a key must not happen at start-up, nor in a CLI command that never calls INSi.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from lxml import etree

from drivers.errors import DriverError
from lgo.core.events import EventBus
from lgo.core.settings import Settings
from lgo.domain.identity import Traits
from lgo.national.insi import (
    AssertionSigner,
    InsiClient,
    InsiConfig,
    InsiIdentity,
    VitaleQuery,
    build_insi_client,
)
from lgo.national.xmldsig import CardKey, sign_enveloped
from lgo.services.identity import IdentityService, InsiPort
from lgo.services.signing import card_signature_error
from lgo.store.db import Database

INSI_PATH = "/insi"


def insi_client_from(settings: Settings, signer: AssertionSigner | None = None) -> InsiClient:
    national = settings.national
    insi = national.insi
    config = InsiConfig(
        idam=insi.idam,
        emitter=settings.pharmacy.finess,
        auth=insi.auth,
        max_reply_bytes=insi.max_reply_kb * 1024,
    )
    return build_insi_client(
        insi.url or national.base_url.rstrip("/") + INSI_PATH,
        config,
        timeout_s=national.timeout_s,
        connect_timeout_s=national.connect_timeout_s,
        client_cert=insi.client_cert,
        client_key=insi.client_key,
        ca_file=insi.ca_file,
        signer=signer,
    )


class LazyInsi:
    """Builds the INSi client on first call (no network or certificate work at start-up)."""

    def __init__(self, settings: Settings, signer: AssertionSigner | None = None) -> None:
        self._settings = settings
        self._signer = signer
        self._lock = threading.Lock()
        self._client: InsiClient | None = None

    def _get(self) -> InsiClient:
        with self._lock:
            if self._client is None:
                self._client = insi_client_from(self._settings, self._signer)
            return self._client

    def search_by_traits(self, traits: Traits, *, author_rpps: str | None) -> InsiIdentity:
        return self._get().search_by_traits(traits, author_rpps=author_rpps)

    def search_by_vitale(self, query: VitaleQuery, *, author_rpps: str | None) -> InsiIdentity:
        return self._get().search_by_vitale(query, author_rpps=author_rpps)

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None


def cps_assertion_signer(card: Callable[[], CardKey | None]) -> AssertionSigner:
    """XML-DSig with the card ``card()`` returns at call time (the open CPS session), if any."""

    def sign(assertion: etree._Element) -> etree._Element | None:
        held = card()
        if held is None:
            return None
        try:
            return sign_enveloped(assertion, held)
        except DriverError as exc:
            raise card_signature_error(exc) from exc

    return sign


@dataclass
class IdentityPart:
    service: IdentityService
    insi: LazyInsi | None  # None: the INSi client was handed in (a test's), not ours to close

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        if self.insi is not None:
            self.insi.close()


def build(
    settings: Settings,
    db: Database,
    events: EventBus,
    card: Callable[[], CardKey | None],
    *,
    insi: InsiPort | None = None,
    clock: Callable[[], datetime] | None = None,
) -> IdentityPart:
    """``insi``: the INSi client to use (a fake in a unit test); built from the settings when None."""
    lazy = None
    if insi is None:
        insi = lazy = LazyInsi(settings, cps_assertion_signer(card))
    service = IdentityService(db, insi, events=events, clock=clock or (lambda: datetime.now(UTC)))
    return IdentityPart(service, lazy)
