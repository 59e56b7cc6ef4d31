"""Services-socles dashboard: how the pharmacy uses each national service, per day or month.

Every figure is counted from the records the other parts already write, so it cannot drift from
them: dispensations and the outbox (e-prescriptions), patients (Vitale/apCV), identity checks (INS),
document deliveries (DMP, MSSanté). Two facts are kept nowhere else and are recorded here, in the
stats branch's own tables: professional sessions (``lgo.services.sessions`` keeps them in memory only) and
national call traces (``lgo.national.transport`` writes them to the log only).

Periods are local days of the pharmacy (Europe/Paris): a dispensation at 00:30 local time on the
2nd counts on the 2nd even though it is the 1st in UTC.
"""

from __future__ import annotations

import csv
import io
import queue
import threading
from collections import Counter as Tally
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import Select, and_, func, null, select
from sqlalchemy.exc import SQLAlchemyError

from lgo.core.errors import InvalidInput
from lgo.core.logs import get_logger
from lgo.services.sessions import ProfessionalSession, SessionRegistry
from lgo.store.columns import utcnow
from lgo.store.db import Database
from lgo.store.models.dispensing import DispensationRow, OutboxMessage
from lgo.store.models.documents import DocumentDelivery, DocumentRow
from lgo.store.models.missions import TrodTestRow, VaccinationRow
from lgo.store.models.patients import Patient, PatientIdentityCheck
from lgo.store.models.stats import StatsNationalCall, StatsSession

log = get_logger(__name__)

PARIS = ZoneInfo("Europe/Paris")
Granularity = Literal["day", "month"]
MAX_BUCKETS: dict[str, int] = {"day": 400, "month": 120}
EXECUTION_KIND = "eprescription.execution"  # lgo.services.outbox.EXECUTION_KIND
PROTOCOL = "protocole"  # dispensations.prescription_source of a protocol dispensation
LOCAL_ONLY = "local_only"  # dispensations.sync_status of a dispensation nobody is told about
DOCUMENT_CHANNELS = {"dmp.provide": "dmp", "mss.send": "mss"}
# Documents of the missions part counted on their own (figure prefix → documents.kind).
MISSION_DOCUMENTS = {"vaccination_notes": "vaccination-note", "trod_results": "trod-result"}
INSI_KINDS = ("insi_traits", "insi_vitale", "insi_verify")
PENDING, PROCESSING, DELIVERED, FAILED = "pending", "processing", "delivered", "failed"
# Call traces kept in memory while the database refuses them (then the oldest are dropped).
MAX_QUEUED_CALLS = 10_000
# Rows in a dashboard: (figure, French label). The order is the table's and the CSV's.
FIGURES: tuple[tuple[str, str], ...] = (
    ("eprescription.dispensed", "e-prescriptions exécutées"),
    ("eprescription.degraded", "dont en mode dégradé"),
    ("paper.dispensed", "ordonnances papier"),
    ("eprescription.reports_delivered", "exécutions transmises"),
    ("eprescription.reports_failed", "exécutions en échec définitif"),
    ("patients.vitale", "patients servis (carte Vitale)"),
    ("patients.apcv", "patients servis (apCV)"),
    ("patients.other", "patients servis (saisie)"),
    ("patients.new_vitale", "nouveaux patients (carte Vitale)"),
    ("patients.new_apcv", "nouveaux patients (apCV)"),
    ("apcv.exchanges", "lectures apCV (téléservice)"),
    ("ins.insi_calls", "appels INSi"),
    ("ins.found", "INS trouvés"),
    ("ins.qualified", "identités qualifiées"),
    ("ins.failed", "appels INSi sans INS (non trouvé, erreur)"),
    ("dmp.delivered", "documents versés au DMP"),
    ("dmp.failed", "versements DMP en échec"),
    ("mss.delivered", "envois MSSanté"),
    ("mss.failed", "envois MSSanté en échec"),
    ("signins.cps", "connexions CPS"),
    ("signins.ecps", "connexions e-CPS"),
    ("vaccinations.recorded", "vaccinations réalisées"),
    ("vaccination_notes.delivered", "notes de vaccination versées au DMP"),
    ("vaccination_notes.failed", "notes de vaccination en échec (DMP)"),
    ("trod.recorded", "tests rapides (TROD) réalisés"),
    ("trod.protocol_dispensed", "antibiotiques délivrés sous protocole (TROD)"),
    ("trod_results.delivered", "résultats de TROD versés au DMP"),
    ("trod_results.failed", "résultats de TROD en échec (DMP)"),
    ("national.calls", "appels aux services nationaux"),
    ("national.failed", "appels aux services nationaux en échec"),
)
FIGURE_NAMES = tuple(name for name, _ in FIGURES)


# ---------------------------------------------------------------- periods


@dataclass(frozen=True)
class Period:
    start: date  # first local day, inclusive
    end: date  # last local day, inclusive
    by: Granularity

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise InvalidInput("La date de fin précède la date de début.")
        if len(self.labels()) > MAX_BUCKETS[self.by]:
            raise InvalidInput(
                f"Période trop longue : {MAX_BUCKETS[self.by]} {self.by_label} au plus."
            )

    @property
    def by_label(self) -> str:
        return "jours" if self.by == "day" else "mois"

    def key(self, day: date) -> str:
        return day.isoformat() if self.by == "day" else day.strftime("%Y-%m")

    def labels(self) -> list[str]:
        if self.by == "day":
            count = (self.end - self.start).days + 1
            return [self.key(self.start + timedelta(days=n)) for n in range(count)]
        months = []
        year, month = self.start.year, self.start.month
        while (year, month) <= (self.end.year, self.end.month):
            months.append(f"{year:04d}-{month:02d}")
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return months

    def utc_bounds(self) -> tuple[datetime, datetime]:
        """[first local midnight, the midnight after the last day) in UTC."""
        first = datetime.combine(self.start, time(), PARIS)
        after = datetime.combine(self.end + timedelta(days=1), time(), PARIS)
        return first.astimezone(UTC), after.astimezone(UTC)


def local_day(moment: datetime | date) -> date:
    if isinstance(moment, datetime):
        return moment.astimezone(PARIS).date()
    return moment


def today_local(now: datetime | None = None) -> date:
    return (now or utcnow()).astimezone(PARIS).date()


# ---------------------------------------------------------------- figure sources

# A source names the rows that make a figure: a time column (a UTC instant, or a business date), the
# conditions, optionally a key counted once per period (distinct patients) or the typed error of a
# failure. Rows are counted by the database per UTC hour (or per business date): Paris is a whole
# number of hours from UTC, so an hour falls in exactly one local day.


@dataclass(frozen=True)
class Source:
    figure: str
    when: Any  # the column the period filters and groups on
    where: tuple[Any, ...]
    is_date: bool = False  # business date (no time zone) rather than a UTC instant
    key: Any = None  # counted once per period when given
    error: Any = None  # the typed error of a failure
    join: tuple[Any, Any] | None = None  # (table, on clause)
    failure_source: str | None = None  # failures by typed error are listed under this name

    def _select(self, *columns: Any) -> Select[Any]:
        stmt = select(*columns).select_from(self.when.table)
        if self.join is not None:
            stmt = stmt.join(*self.join)
        return stmt.where(*self.where)

    def grouped(self, bounds: Any, dialect: str) -> Select[Any]:
        """``(slot, count, error)`` rows: per hour or date (and error), or per (date, key)."""
        if self.key is not None:
            return self._select(self.when, self.key, null()).where(bounds).distinct()
        # Grouped by label: an expression with bound parameters (date_trunc('hour', …), a
        # concatenation) repeated in GROUP BY is not recognised as the same by PostgreSQL.
        slot = (self.when if self.is_date else _hour(self.when, dialect)).label("slot")
        if self.error is None:
            return self._select(slot, func.count(), null()).where(bounds).group_by(slot)
        error = self.error.label("error")
        return self._select(slot, func.count(), error).where(bounds).group_by(slot, error)

    def total(self) -> Select[Any]:
        if self.key is not None:  # once per (business date, key), as the days of a report
            inner = self._select(self.when, self.key).distinct().subquery()
            return select(func.count()).select_from(inner)
        return self._select(func.count())


def _hour(column: Any, dialect: str) -> Any:
    if dialect == "postgresql":
        return func.date_trunc("hour", column)
    return func.strftime("%Y-%m-%d %H:00:00", column)  # SQLite keeps naive UTC text


def _slot_day(slot: Any) -> date:
    """The local day of a slot: a business date, or a UTC hour (datetime or SQLite text)."""
    if isinstance(slot, str):
        slot = datetime.fromisoformat(slot).replace(tzinfo=UTC)
    elif isinstance(slot, datetime) and slot.tzinfo is None:
        slot = slot.replace(tzinfo=UTC)
    return local_day(slot)


def _sources() -> list[Source]:
    d, o, p, c, g = DispensationRow, OutboxMessage, Patient, PatientIdentityCheck, DocumentDelivery
    n, s = StatsNationalCall, StatsSession

    def served(figure: str, *where: Any) -> Source:
        return Source(
            figure,
            d.business_date,
            where,
            is_date=True,
            key=d.patient_id,
            join=(p, p.id == d.patient_id),
        )

    def dated(figure: str, *where: Any) -> Source:
        return Source(figure, d.business_date, where, is_date=True)

    def timed(
        figure: str, when: Any, *where: Any, error: Any = None, failure_source: str | None = None
    ) -> Source:
        return Source(figure, when, where, error=error, failure_source=failure_source)

    execution = o.kind == EXECUTION_KIND
    insi = c.kind.in_(INSI_KINDS)
    sources = [
        # An e-prescription typed from its paper copy in degraded mode is stored as "paper" but is
        # reported to the national base all the same: what it is shows in its sync status.
        dated("eprescription.dispensed", d.sync_status != LOCAL_ONLY),
        dated("eprescription.degraded", d.sync_status != LOCAL_ONLY, d.degraded.is_(True)),
        # Dispensed under a protocol (antibiotic after a TROD): no prescription, counted apart.
        dated("paper.dispensed", d.sync_status == LOCAL_ONLY, d.prescription_source != PROTOCOL),
        timed("eprescription.reports_delivered", o.delivered_at, execution, o.status == DELIVERED),
        timed(
            "eprescription.reports_failed",
            o.created_at,
            execution,
            o.status == FAILED,
            error=o.last_error,
            failure_source="eprescription.outbox",
        ),
        served("patients.vitale", p.source == "vitale"),
        served("patients.apcv", p.source == "apcv"),
        served("patients.other", p.source.not_in(("vitale", "apcv"))),
        timed("patients.new_vitale", p.created_at, p.source == "vitale"),
        timed("patients.new_apcv", p.created_at, p.source == "apcv"),
        timed("apcv.exchanges", n.at, n.service == "apcv", n.status.like("2%")),
        timed("ins.insi_calls", c.at, insi),
        timed("ins.found", c.at, insi, c.outcome == "found"),
        timed("ins.qualified", c.at, c.status_after == "qualified", c.status_before != "qualified"),
        timed(
            "ins.failed",
            c.at,
            insi,
            c.error_slug.is_not(None),
            error=c.error_slug,
            failure_source="insi",
        ),
    ]
    for kind, channel in DOCUMENT_CHANNELS.items():
        sources += [
            timed(f"{channel}.delivered", g.delivered_at, g.kind == kind, g.status == DELIVERED),
            timed(
                f"{channel}.failed",
                g.created_at,
                g.kind == kind,
                g.status == FAILED,
                error=g.last_error,
                failure_source=channel,
            ),
        ]
    sources += _mission_sources(timed)
    sources += [
        timed("signins.cps", s.opened_at, s.kind == "cps"),
        timed("signins.ecps", s.opened_at, s.kind == "ecps"),
        timed("national.calls", n.at),
        timed(
            "national.failed",
            n.at,
            _national_failed(),
            error=n.service + ":" + n.status,
            failure_source="national",
        ),
    ]
    return sources


def _mission_sources(timed: Callable[..., Source]) -> list[Source]:
    """Vaccinations and rapid tests (missions part), and the DMP deliveries of their documents."""
    v, t, g, r = VaccinationRow, TrodTestRow, DocumentDelivery, DocumentRow
    sources = [
        timed("vaccinations.recorded", v.administered_at),
        timed("trod.recorded", t.performed_at),
        timed("trod.protocol_dispensed", t.performed_at, t.dispensation_id.is_not(None)),
    ]
    dmp = g.kind == "dmp.provide"
    for figure, kind in MISSION_DOCUMENTS.items():
        on_kind = (r, and_(r.id == g.document_id, r.kind == kind))
        sources += [
            Source(
                f"{figure}.delivered", g.delivered_at, (dmp, g.status == DELIVERED), join=on_kind
            ),
            Source(
                f"{figure}.failed",
                g.created_at,
                (dmp, g.status == FAILED),
                error=g.last_error,
                join=on_kind,
                failure_source=figure,
            ),
        ]
    return sources


def _national_failed() -> Any:
    """A call failed when no answer came (typed error slug) or the answer was 5xx, 429 or 401/403.

    A 404 or 409 is an answer the client turns into a business outcome (prescription unknown,
    already executed), not a failure of the service.
    """
    status = StatsNationalCall.status
    return (
        ~status.like("2%")
        & ~status.like("3%")
        & status.not_in(("400", "404", "409", "410", "412", "422"))
    )


# ---------------------------------------------------------------- report


@dataclass(frozen=True)
class Failure:
    source: str  # eprescription.outbox, insi, dmp, mss, national
    error: str  # typed error slug (or service:status for national calls)
    count: int


@dataclass(frozen=True)
class Bucket:
    period: str  # YYYY-MM-DD or YYYY-MM
    figures: dict[str, int]
    failures: list[Failure]


@dataclass(frozen=True)
class Backlog:
    queue: str  # eprescription | dmp | mss
    pending: int
    failed: int
    oldest_pending_at: datetime | None


@dataclass(frozen=True)
class Report:
    period: Period
    generated_at: datetime
    buckets: list[Bucket]
    totals: dict[str, int]
    failures: list[Failure]
    backlog: list[Backlog]
    open_session: str | None = None  # kind of the session open now, counted in signins.*

    def as_json(self) -> dict[str, Any]:
        now = self.generated_at
        return {
            "from": self.period.start.isoformat(),
            "to": self.period.end.isoformat(),
            "by": self.period.by,
            "generated_at": now.isoformat(),
            "figures": [{"name": name, "label": label} for name, label in FIGURES],
            "buckets": [
                {
                    "period": b.period,
                    "figures": b.figures,
                    "failures": [_failure_json(f) for f in b.failures],
                }
                for b in self.buckets
            ],
            "totals": self.totals,
            "failures": [_failure_json(f) for f in self.failures],
            "backlog": [_backlog_json(b, now) for b in self.backlog],
        }


def _failure_json(failure: Failure) -> dict[str, Any]:
    return {"source": failure.source, "error": failure.error, "count": failure.count}


def _backlog_json(backlog: Backlog, now: datetime) -> dict[str, Any]:
    oldest = backlog.oldest_pending_at
    return {
        "queue": backlog.queue,
        "pending": backlog.pending,
        "failed": backlog.failed,
        "oldest_pending_at": oldest.isoformat() if oldest else None,
        "oldest_pending_age_s": round((now - oldest).total_seconds()) if oldest else None,
    }


def report_csv(report: Report) -> str:
    """One row per period and figure, then one per period and failure: ``period,figure,count``
    with failures as ``failure:<source>:<error>``; the totals row has period ``total``."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["period", "figure", "label", "count"])
    labels = dict(FIGURES)
    for bucket in report.buckets:
        for name in FIGURE_NAMES:
            writer.writerow([bucket.period, name, labels[name], bucket.figures[name]])
        for failure in bucket.failures:
            name = f"failure:{failure.source}:{failure.error}"
            writer.writerow([bucket.period, name, "échec", failure.count])
    for name in FIGURE_NAMES:
        writer.writerow(["total", name, labels[name], report.totals[name]])
    for failure in report.failures:
        name = f"failure:{failure.source}:{failure.error}"
        writer.writerow(["total", name, "échec", failure.count])
    return out.getvalue()


class StatsService:
    """Reads the figures. ``recorder`` (when given) is flushed first so that nothing recorded by this
    process is missing; ``sessions`` adds the session open right now to the sign-ins."""

    def __init__(
        self,
        db: Database,
        *,
        recorder: StatsRecorder | None = None,
        sessions: SessionRegistry | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._db = db
        self._recorder = recorder
        self._sessions = sessions
        self._clock = clock

    def report(self, start: date, end: date, by: Granularity = "day") -> Report:
        period = Period(start, end, by)
        if self._recorder is not None:
            self._recorder.flush()
        figures: dict[str, dict[str, int]] = {
            k: dict.fromkeys(FIGURE_NAMES, 0) for k in period.labels()
        }
        failures: dict[str, Tally[tuple[str, str]]] = {k: Tally() for k in period.labels()}
        with self._db.uow(readonly=True) as uow:
            for source in _sources():
                for key, counted, error in self._rows(uow.session, source, period):
                    figures[key][source.figure] += counted
                    if source.failure_source is not None:
                        failures[key][(source.failure_source, error or "unknown")] += counted
        open_kind = self._add_open_session(figures, period)
        return self._assemble(period, figures, failures, open_kind)

    def _rows(self, session: Any, source: Source, period: Period) -> Iterator[tuple[str, int, Any]]:
        if source.is_date:
            bounds: Any = and_(source.when >= period.start, source.when <= period.end)
        else:
            lower, upper = period.utc_bounds()
            bounds = and_(source.when >= lower, source.when < upper)
        seen: set[tuple[str, Any]] = set()
        for slot, counted, error in session.execute(source.grouped(bounds, self._db.dialect)):
            key = period.key(_slot_day(slot))
            if source.key is not None:  # (day, key) rows: once per period
                if (key, counted) in seen:
                    continue
                seen.add((key, counted))
                counted = 1
            yield key, int(counted), error

    def _add_open_session(self, figures: dict[str, dict[str, int]], period: Period) -> str | None:
        """The session open now is not in ``stats_sessions`` yet (written when it closes)."""
        current = self._sessions.current() if self._sessions is not None else None
        if current is None:
            return None
        key = period.key(local_day(current.opened_at))
        if key in figures and period.start <= local_day(current.opened_at) <= period.end:
            figures[key][f"signins.{current.kind.value}"] += 1
        return current.kind.value

    def _assemble(
        self,
        period: Period,
        figures: dict[str, dict[str, int]],
        failures: dict[str, Tally[tuple[str, str]]],
        open_kind: str | None,
    ) -> Report:
        totals = dict.fromkeys(FIGURE_NAMES, 0)
        all_failures: Tally[tuple[str, str]] = Tally()
        buckets = []
        for key in period.labels():
            for name, value in figures[key].items():
                totals[name] += value
            all_failures.update(failures[key])
            buckets.append(Bucket(key, figures[key], _failure_list(failures[key])))
        return Report(
            period,
            self._clock(),
            buckets,
            totals,
            _failure_list(all_failures),
            self.backlog(),
            open_kind,
        )

    # ------------------------------------------------------------ live figures

    def backlog(self) -> list[Backlog]:
        """Queues now: what waits (pending or being sent), what failed for good, the oldest wait."""
        o, g = OutboxMessage, DocumentDelivery
        waiting = (PENDING, PROCESSING)
        with self._db.uow(readonly=True) as uow:
            rows = [
                _backlog(
                    uow.session,
                    "eprescription",
                    o.status,
                    o.created_at,
                    o.kind == EXECUTION_KIND,
                    waiting,
                )
            ]
            for kind, channel in DOCUMENT_CHANNELS.items():
                rows.append(
                    _backlog(uow.session, channel, g.status, g.created_at, g.kind == kind, waiting)
                )
        return rows

    def totals(self) -> dict[str, int]:
        """All-time count of each figure (Prometheus counters), counted by the database."""
        if self._recorder is not None:
            self._recorder.flush()
        result = dict.fromkeys(FIGURE_NAMES, 0)
        with self._db.uow(readonly=True) as uow:
            for source in _sources():
                result[source.figure] += self._count(uow.session, source)
        current = self._sessions.current() if self._sessions is not None else None
        if current is not None:
            result[f"signins.{current.kind.value}"] += 1
        return result

    def national_calls(self) -> dict[tuple[str, str], int]:
        """All-time national calls by (service, status)."""
        n = StatsNationalCall
        if self._recorder is not None:
            self._recorder.flush()
        stmt = select(n.service, n.status, func.count()).group_by(n.service, n.status)
        with self._db.uow(readonly=True) as uow:
            return {
                (service, status): int(count)
                for service, status, count in uow.session.execute(stmt)
            }

    @staticmethod
    def _count(session: Any, source: Source) -> int:
        return int(session.scalar(source.total()) or 0)


def _failure_list(tally: Tally[tuple[str, str]]) -> list[Failure]:
    return [Failure(source, error, count) for (source, error), count in sorted(tally.items())]


def _backlog(
    session: Any,
    queue_name: str,
    status: Any,
    created: Any,
    kind_clause: Any,
    waiting: tuple[str, ...],
) -> Backlog:
    pending = session.scalar(select(func.count()).where(kind_clause, status.in_(waiting)))
    failed = session.scalar(select(func.count()).where(kind_clause, status == FAILED))
    oldest = session.scalar(select(func.min(created)).where(kind_clause, status.in_(waiting)))
    if isinstance(oldest, datetime) and oldest.tzinfo is None:  # func.min loses the column type
        oldest = oldest.replace(tzinfo=UTC)
    elif isinstance(oldest, str):
        oldest = datetime.fromisoformat(oldest).replace(tzinfo=UTC)
    return Backlog(queue_name, int(pending or 0), int(failed or 0), oldest)


# ---------------------------------------------------------------- recording


@dataclass(frozen=True)
class _Call:
    at: datetime
    service: str
    action: str
    status: str
    attempts: int
    duration_ms: int


class StatsRecorder:
    """Keeps the sessions and national call traces that no other table holds.

    Trace sinks run in the calling thread, maybe while its caller holds a database transaction:
    they only queue the row; ``flush`` (periodic, at shutdown, and before every read) writes them.
    Sessions are written when they close (the session listener runs outside the registry's lock).
    """

    def __init__(self, db: Database, clock: Callable[[], datetime] = utcnow) -> None:
        self._db = db
        self._clock = clock
        self._calls: queue.SimpleQueue[_Call] = queue.SimpleQueue()
        self._flush_lock = threading.Lock()

    def national_call(self, fields: dict[str, Any]) -> None:
        """``lgo.national.transport.TRACE_SINKS`` receiver: keeps service, action, status, attempts."""
        self._calls.put(
            _Call(
                at=self._clock(),
                service=str(fields.get("service", ""))[:32],
                action=str(fields.get("action", ""))[:64],
                status=str(fields.get("status", ""))[:64],
                attempts=int(fields.get("attempts", 1)),
                duration_ms=int(fields.get("duration_ms", 0)),
            )
        )

    def session_closed(self, session: ProfessionalSession, reason: str) -> None:
        """``SessionRegistry.on_close`` listener."""
        row = StatsSession(
            id=session.id,
            kind=session.kind.value,
            opened_at=session.opened_at,
            closed_at=self._clock(),
            close_reason=reason[:32],
        )
        try:
            with self._db.uow() as uow:
                uow.session.merge(row)  # a session closes once; merge keeps a replay harmless
                uow.commit()
        except Exception as exc:
            # Whatever happens here, closing the session must go on (and the close listeners
            # registered after this one, and the session.closed event).
            log.warning("stats_session_not_recorded", error=type(exc).__name__)

    def flush(self) -> int:
        """Write the queued call traces; returns how many."""
        with self._flush_lock:
            calls = list(_drain(self._calls))
            if not calls:
                return 0
            try:
                with self._db.uow() as uow:
                    uow.session.add_all(StatsNationalCall(**c.__dict__) for c in calls)
                    uow.commit()
            except SQLAlchemyError as exc:
                kept = calls[-MAX_QUEUED_CALLS:]  # keep the newest for the next flush, bounded
                for call in kept:
                    self._calls.put(call)
                log.warning(
                    "stats_calls_not_recorded",
                    kept=len(kept),
                    dropped=len(calls) - len(kept),
                    error=type(exc).__name__,
                )
                return 0
            return len(calls)


def _drain(q: queue.SimpleQueue[_Call]) -> Iterable[_Call]:
    while True:
        try:
            yield q.get_nowait()
        except queue.Empty:
            return
