"""The stats part, built by the composition root (``lgo.bootstrap.container``).

``container.stats`` is a :class:`StatsPart`: the recorder (session listener and national call trace
sink), the read service behind ``/v1/stats`` and ``lgo stats``, and a Prometheus collector that the
API registers in its registry (``Container.metrics_collectors``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError

from lgo.core.logs import get_logger
from lgo.national import transport as national_http
from lgo.services.sessions import SessionRegistry
from lgo.services.stats import FIGURES, StatsRecorder, StatsService
from lgo.store.columns import utcnow
from lgo.store.db import Database

if TYPE_CHECKING:
    from lgo.bootstrap.container import Container

log = get_logger(__name__)
FLUSH_INTERVAL_S = 2.0
# Messages that failed for good can be retried by hand and leave that state: as counters they would
# go down, which Prometheus reads as a reset. They are the gauge lgo_queue_messages{state="failed"}.
NOT_COUNTERS = frozenset(
    {
        "eprescription.reports_failed",
        "dmp.failed",
        "mss.failed",
        "vaccination_notes.failed",
        "trod_results.failed",
    }
)


class StatsCollector(Collector):
    """Figures computed from the database on each scrape: the same numbers as ``/v1/stats``.

    Counters are all-time counts of records (they only grow while the records are kept); gauges are
    the queues now and the session open now.
    """

    def __init__(self, service: StatsService, sessions: SessionRegistry) -> None:
        self._service = service
        self._sessions = sessions

    def collect(self) -> Iterator[Metric]:
        try:
            metrics = self._metrics()
        except SQLAlchemyError as exc:  # an unreachable database must not break /metrics
            log.warning("stats_metrics_unavailable", error=type(exc).__name__)
            return
        yield from metrics

    def _metrics(self) -> list[Metric]:
        totals = CounterMetricFamily(
            "lgo_services_socles",
            "Uses of the national services (see /v1/stats figures)",
            labels=["figure"],
        )
        for name, value in self._service.totals().items():
            if name not in NOT_COUNTERS:
                totals.add_metric([name], value)
        calls = CounterMetricFamily(
            "lgo_national_calls",
            "National service calls by outcome (HTTP status or error slug)",
            labels=["service", "status"],
        )
        for (service, status), count in sorted(self._service.national_calls().items()):
            calls.add_metric([service, status], count)
        return [totals, calls, *self._queue_gauges(), self._session_gauge()]

    def _queue_gauges(self) -> list[Metric]:
        backlog = GaugeMetricFamily(
            "lgo_queue_messages",
            "Messages waiting or failed, per national queue",
            labels=["queue", "state"],
        )
        oldest = GaugeMetricFamily(
            "lgo_queue_oldest_pending_age_seconds",
            "Age of the oldest message still waiting (0 when none)",
            labels=["queue"],
        )
        now = utcnow()
        for queue in self._service.backlog():
            backlog.add_metric([queue.queue, "pending"], queue.pending)
            backlog.add_metric([queue.queue, "failed"], queue.failed)
            age = (now - queue.oldest_pending_at).total_seconds() if queue.oldest_pending_at else 0
            oldest.add_metric([queue.queue], max(0.0, age))
        return [backlog, oldest]

    def _session_gauge(self) -> Metric:
        gauge = GaugeMetricFamily(
            "lgo_professional_session_open", "Professional session open now", labels=["kind"]
        )
        current = self._sessions.current()
        for kind in ("cps", "ecps"):
            gauge.add_metric([kind], 1 if current is not None and current.kind == kind else 0)
        return gauge


@dataclass
class StatsPart:
    recorder: StatsRecorder
    service: StatsService
    collector: StatsCollector
    sessions: SessionRegistry
    _flusher: asyncio.Task[None] | None = field(default=None, init=False)

    async def start(self) -> None:
        national_http.TRACE_SINKS.append(self.recorder.national_call)
        self._flusher = asyncio.create_task(_flush_forever(self.recorder), name="stats-flush")

    async def stop(self) -> None:
        with contextlib.suppress(ValueError):
            national_http.TRACE_SINKS.remove(self.recorder.national_call)
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        current = self.sessions.current()
        if current is not None:  # still open: count it now, it will not close in this process
            await asyncio.to_thread(self.recorder.session_closed, current, "daemon_stopped")
        await asyncio.to_thread(self.recorder.flush)


def build(db: Database, sessions: SessionRegistry) -> StatsPart:
    recorder = StatsRecorder(db)
    service = StatsService(db, recorder=recorder, sessions=sessions)
    sessions.on_close(recorder.session_closed)
    return StatsPart(recorder, service, StatsCollector(service, sessions), sessions)


def part_of(container: Container) -> StatsPart:
    return container.stats


async def _flush_forever(recorder: StatsRecorder) -> None:
    while True:
        await asyncio.sleep(FLUSH_INTERVAL_S)
        await asyncio.to_thread(recorder.flush)


__all__ = ["FIGURES", "StatsCollector", "StatsPart", "build", "part_of"]
