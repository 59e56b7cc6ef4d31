"""The documents part, built by the composition root (``lgo.bootstrap.container``).

``container.documents`` is a :class:`DocumentsPart`: the document service, the DMP client and
consultation, the MSSanté client (only when its certificate, key and CA are configured) and the
delivery worker (a background thread started and stopped with the daemon). The patient directory is
the identity part's service, the signing card the hardware part's open CPS session.

Auto-feed (``national.dmp.auto_feed``, Ségur "alimentation systématique"): a task listens to
``dispensation.committed`` events and produces the dispensing summary for the DMP, authored by the
pharmacist whose session made the dispensation. A patient without a qualified INS is skipped
(``document.skipped`` event, reason ``ins-not-qualified``): never an error for the counter.

Events live in memory: a crash between a dispensation's commit and its handler would lose the
summary. :meth:`DocumentsPart.sweep` recovers it: at start and every :data:`SWEEP_INTERVAL_S`, the
dispensations of the last ``national.dmp.auto_feed_lookback_days`` without a document get one (same
INS guard). ``UNIQUE(documents.dispensation_id)`` makes event path and sweep race safely: the loser
gets ``DocumentAlreadyProduced``, counted as skipped. The pharmacist's names are not stored with
the dispensation: when their session is no longer open, the author is identified by national id
only (names left empty).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from lgo.core.errors import LgoError
from lgo.core.events import Event, EventBus
from lgo.core.lifecycle import ComponentHealth
from lgo.core.logs import get_logger
from lgo.core.settings import Settings
from lgo.documents.conformance import DocumentChecker
from lgo.documents.errors import CdaNonConformantError, CisisKitUnusable, InsNotQualifiedError
from lgo.documents.models import Author, Organisation
from lgo.national.dmp import STRUCT_FINESS_PREFIX, DmpClient, DmpGateway
from lgo.national.dmp_auth import DmpAuthenticator, IdentifiedCard, card_authenticator
from lgo.national.mss import MssClient, MssConfig, MssGateway
from lgo.services.documents import (
    KIND_DMP,
    KIND_MSS,
    DeliveryQueue,
    DeliveryWorker,
    DmpConsultation,
    DocumentAlreadyProduced,
    DocumentService,
    PatientDirectory,
    author_from_session,
    dmp_handler,
    mss_handler,
    utcnow,
)
from lgo.services.sessions import SessionRegistry
from lgo.store.db import Database

if TYPE_CHECKING:
    from lgo.bootstrap.container import Container

log = get_logger(__name__)
DMP_PATH = "/dmp"
SWEEP_INTERVAL_S = 600.0
COMMITTED = frozenset({"dispensation.committed"})  # the only events the auto-feed reads


def checker_from(settings: Settings) -> DocumentChecker:
    """Validation before sending: lgo's schema, plus the CI-SIS kit when configured."""
    documents = settings.documents
    cache = documents.cisis_cache_dir or settings.state_dir / "cisis-cache"
    return DocumentChecker.configured(documents.cisis_kit_dir, cache)


def dmp_client_from(
    settings: Settings,
    checker: DocumentChecker | None = None,
    authenticator: DmpAuthenticator | None = None,
) -> DmpClient:
    national = settings.national
    return DmpClient.over_http(
        national.dmp.url or national.base_url.rstrip("/") + DMP_PATH,
        finess=settings.pharmacy.finess,
        timeout_s=national.timeout_s,
        connect_timeout_s=national.connect_timeout_s,
        checker=checker,
        authenticator=authenticator,
    )


def mss_client_from(settings: Settings) -> MssClient | None:
    mss = settings.national.mss
    if not (mss.cert_file and mss.key_file and mss.ca_file):
        return None
    return MssClient(
        MssConfig(
            host=mss.host,
            port=mss.port,
            sender=mss.sender,
            cert_file=mss.cert_file,
            key_file=mss.key_file,
            ca_file=mss.ca_file,
            timeout_s=mss.timeout_s,
        )
    )


class DocumentsPart:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        events: EventBus,
        sessions: SessionRegistry,
        patients: PatientDirectory,
        card: Callable[[], IdentifiedCard | None],
        *,
        dmp: DmpGateway | None = None,
        mss: MssGateway | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        """``dmp``, ``mss``: the national clients to use (fakes in a unit test); built from the
        settings when None (MSSanté only when its certificate, key and CA are configured)."""
        self._settings = settings
        self._events = events
        self._sessions = sessions
        self._clock = clock
        self.checker = checker_from(settings)
        structure = STRUCT_FINESS_PREFIX + settings.pharmacy.finess
        authenticator = card_authenticator(card, structure)
        self._own_dmp: DmpClient | None = None  # closed at stop; a handed-in client is not ours
        if dmp is None:
            dmp = self._own_dmp = dmp_client_from(settings, self.checker, authenticator)
        self.dmp = dmp
        self.mss: MssGateway | None = mss or mss_client_from(settings)
        handlers = {KIND_DMP: dmp_handler(self.dmp)}
        if self.mss is not None:
            handlers[KIND_MSS] = mss_handler(self.mss)
        self.worker = DeliveryWorker(db, handlers, events=events, clock=clock)
        pharmacy = settings.pharmacy
        self.service = DocumentService(
            db,
            patients,
            Organisation(pharmacy.finess, pharmacy.name, pharmacy.address),
            events=events,
            clock=clock,
            on_queued=self.worker.notify,
            checker=self.checker,
            mss_configured=self.mss is not None,
        )
        self.consultation = DmpConsultation(patients, self.dmp)
        self.deliveries = DeliveryQueue(db, self.worker)
        self.stopping = threading.Event()  # ends a sweep between two dispensations
        self._tasks: list[asyncio.Task[None]] = []

    def auto_summary(self, dispensation_id: str) -> str | None:
        """Produce and queue the dispensing summary; the skip reason when it was not produced."""
        session = self._sessions.current()
        national_id = self.service.dispensation_author(dispensation_id)
        if session is None or session.identity.national_id != national_id:
            return self._skipped(dispensation_id, "author-session-closed")
        try:
            self.service.dispensing_summary(dispensation_id, author_from_session(session.identity))
        except (InsNotQualifiedError, DocumentAlreadyProduced) as exc:
            return self._skipped(dispensation_id, exc.slug)
        except (CdaNonConformantError, CisisKitUnusable) as exc:
            # not sent: the counter sees document.rejected (the rules) and this skip
            return self._skipped(dispensation_id, exc.slug)
        return None

    def sweep(self) -> dict[str, int]:
        """Produce the missing summaries of the look-back window; counts only are logged."""
        days = self._settings.national.dmp.auto_feed_lookback_days
        since = self._clock() - timedelta(days=days)
        counts = {"produced": 0, "skipped": 0, "failed": 0}
        for dispensation_id, national_id in self.service.unfed_dispensations(since):
            if self.stopping.is_set():
                break
            try:
                self.service.dispensing_summary(dispensation_id, self._author(national_id))
                counts["produced"] += 1
            except (InsNotQualifiedError, DocumentAlreadyProduced):
                counts["skipped"] += 1  # unqualified stays skipped; a lost race is a no-op
            except LgoError:  # one bad dispensation must not stop the sweep
                counts["failed"] += 1
        log.info("document_auto_feed_sweep", **counts)
        return counts

    def _author(self, national_id: str) -> Author:
        session = self._sessions.current()
        if session is not None and session.identity.national_id == national_id:
            return author_from_session(session.identity)
        return Author(national_id=national_id, family_name="", given_name="")

    async def sweep_forever(self, interval_s: float = SWEEP_INTERVAL_S) -> None:
        """The sweep now (daemon start) then periodically, off the event loop (cancelled at stop)."""
        while True:
            try:
                await asyncio.to_thread(self.sweep)
            except Exception:  # a database hiccup must not end the periodic sweep
                log.exception("document_auto_feed_sweep_failed")
            await asyncio.sleep(interval_s)

    def _skipped(self, dispensation_id: str, reason: str, *, routine: bool = False) -> str:
        """The ``document.skipped`` event (the counter's and the history's record of why), and a
        log line: at INFO for a skip worth a look, at DEBUG for the routine one (a patient without
        a qualified INS: a fact of the patient, repeated for each of their dispensations)."""
        (log.debug if routine else log.info)(
            "document_skipped", dispensation_id=dispensation_id, reason=reason
        )
        self._events.publish(
            "document.skipped", {"dispensation_id": dispensation_id, "reason": reason}
        )
        return reason

    def _needs_document(self, event: Event) -> bool:
        """The feed's screen (lgo/core/events.py), run in the committing thread: no document can
        carry the INS of a patient without a qualified one, so say why once (``document.skipped``)
        and do not wake the feed, which would read nothing."""
        if event.data.get("ins_qualified") is False:
            self._skipped(str(event.data["id"]), InsNotQualifiedError.slug, routine=True)
            return False
        return True

    async def feed(self) -> None:
        """Listen to committed dispensations for ever (cancelled at stop)."""
        events = self._events.subscribe(types=COMMITTED, screen=self._needs_document)
        async for event in events:
            if event.type != "dispensation.committed":  # stream.overflow: the sweep catches up
                continue
            try:
                await asyncio.to_thread(self.auto_summary, str(event.data["id"]))
            except Exception:  # one bad dispensation must not stop the feed
                log.exception("document_auto_feed_failed", dispensation_id=event.data.get("id"))

    async def warm_kit(self) -> None:
        kit = self.checker.kit
        if kit is None:
            return
        try:
            await asyncio.to_thread(kit.warm)
            log.info("cisis_kit_ready")
        except Exception:  # a broken kit shows at the first document (nothing is sent unchecked)
            log.exception("cisis_kit_warm_failed")

    async def start(self) -> None:
        self.stopping.clear()
        self.worker.start()
        if self.checker.kit is not None:  # compile the volets off the loop, before the first use
            self._tasks.append(asyncio.create_task(self.warm_kit(), name="documents-cisis-warm"))
        if self._settings.national.dmp.auto_feed:
            self._tasks.append(asyncio.create_task(self.feed(), name="documents-auto-feed"))
            self._tasks.append(asyncio.create_task(self.sweep_forever(), name="documents-sweep"))

    async def stop(self) -> None:
        self.stopping.set()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await asyncio.to_thread(self.worker.stop)
        if self._own_dmp is not None:
            self._own_dmp.close()

    def health(self) -> ComponentHealth:
        degraded = self.worker.degraded
        detail = "DMP/MSSanté unreachable: documents queued" if degraded else "ok"
        return ComponentHealth(
            not degraded,
            detail,
            {
                "degraded": degraded,
                "mss_configured": self.mss is not None,
            },
        )


def part_of(container: Container) -> DocumentsPart:
    return container.documents
