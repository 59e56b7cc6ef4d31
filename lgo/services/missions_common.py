"""What the vaccination and TROD services share: typed errors, the acting pharmacist, the patient's
facts the rules need, the request key, the document step and date filters."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Generic, Protocol, TypeVar, cast

from sqlalchemy import CursorResult, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lgo.core.errors import Conflict, InvalidInput, LgoError, NotFound
from lgo.core.events import EventBus
from lgo.core.logs import get_logger
from lgo.documents.errors import InsNotQualifiedError
from lgo.documents.models import Author
from lgo.services.local_time import PHARMACY_TZ
from lgo.store.columns import utcnow
from lgo.store.db import Database
from lgo.store.models import Patient

log = get_logger(__name__)
# How long a document production may hold an act before another producer takes over (a crash).
DOCUMENT_LEASE = timedelta(minutes=5)
CLOCK_DRIFT = timedelta(minutes=5)


class MissionPatientNotFound(NotFound):
    slug = "patient-not-found"
    title = "Patient introuvable"


class MissionKeyReused(Conflict):
    slug = "idempotency-key-reused"
    title = "Cette clé Idempotency-Key a déjà servi pour un autre acte"


class DocumentAlreadyProduced(Conflict):
    slug = "act-document-already-produced"
    title = "Le document de cet acte a déjà été produit"


def performer(actor: Actor, national_id: str) -> Author:
    """Who performed the act: the acting pharmacist, or (a later document by another one) the
    performer known by national id only (names are not kept with the act)."""
    if actor.author.national_id == national_id:
        return actor.author
    return Author(national_id=national_id, family_name="", given_name="")


class ActNotFound(NotFound):
    slug = "act-not-found"
    title = "Acte introuvable"


class MissionRefused(InvalidInput):
    """The rules refuse the act; ``refusals`` lists each reason (code, French message)."""

    slug = "mission-refused"
    title = "Acte refusé"


@dataclass(frozen=True)
class Actor:
    """The pharmacist performing the act (from the open CPS / e-CPS session)."""

    author: Author  # for the documents
    rpps: str
    session_id: str
    counter_name: str | None

    @property
    def name(self) -> str:
        return " ".join(p for p in (self.author.given_name, self.author.family_name) if p)


@dataclass(frozen=True)
class PatientFacts:
    """What the rules need about the patient (never logged)."""

    patient_id: str
    birth_date_raw: str
    sex: str | None
    display_name: str


def patient_facts(session: Session, patient_id: str) -> PatientFacts:
    row = session.get(Patient, patient_id)
    if row is None:
        raise MissionPatientNotFound()
    name = " ".join(p for p in (row.used_name or row.birth_name, row.given_names) if p)
    return PatientFacts(row.id, row.birth_date_raw, row.sex, name)


class ActRow(Protocol):
    """What the two act tables share (``vaccinations``, ``trod_tests``)."""

    id: Any
    idempotency_key: Any
    request_hash: Any
    patient_id: Any
    document_id: Any
    document_skipped: Any


Row = TypeVar("Row", bound=ActRow)
View = TypeVar("View")


@dataclass(frozen=True)
class CodedReason:
    """A rule's refusal or warning: a stable code and the French message."""

    code: str
    message: str


class ActStore(Generic[Row, View]):
    """One act table: insert once per request key, replay, link the document, read, search.

    ``when`` is the act's time column (searched on local days); ``kind`` the column filtered by the
    search's ``kind`` (vaccine, test); ``view`` renders a row for the API."""

    def __init__(
        self,
        db: Database,
        table: type[Row],
        when: Any,
        kind: Any,
        view: Callable[[Row], View],
        not_found: str,
    ) -> None:
        self._db = db
        self._table = table
        self._when = when
        self._kind = kind
        self._view = view
        self._not_found = not_found

    def replay(self, key: str, fingerprint: str) -> View | None:
        """The first answer for this key (same body), a 409 for another body, None when new."""
        table: Any = self._table
        with self._db.uow(readonly=True) as uow:
            row = uow.session.execute(
                select(table).where(table.idempotency_key == key)
            ).scalar_one_or_none()
            if row is None:
                return None
            if row.request_hash != fingerprint:
                raise MissionKeyReused()
            return self._view(row)

    def insert(self, row: Row) -> View | None:
        """Commit the new act; on a lost race for the same key, the winner's answer."""
        try:
            with self._db.uow() as uow:
                uow.session.add(row)
                uow.commit()
        except IntegrityError:
            replay = self.replay(row.idempotency_key, row.request_hash)
            if replay is None:
                raise
            return replay
        return None

    def link_document(
        self,
        act_id: str,
        produce: Callable[[], ProducedDocument],
        problems: list[dict[str, Any]] | None = None,
    ) -> bool:
        """Produce the act's document through the documents part and note the outcome.

        One producer at a time: the act is claimed first (``document_claimed_at``, a lease that
        another producer may take over once :data:`DOCUMENT_LEASE` has passed, after a crash).
        False when the act already has its document or another producer holds it. Why the
        document was not produced (French problem, failed rules) goes to ``problems``."""
        if not self._claim(act_id):
            return False
        document_id, skipped, problem = produce_document(produce, act_id)
        if problem is not None and problems is not None:
            problems.append(problem)
        table: Any = self._table
        with self._db.uow() as uow:
            uow.session.execute(
                update(table)
                .where(table.id == act_id)
                .values(
                    document_id=document_id,
                    document_skipped=skipped,
                    document_claimed_at=None,
                )
            )
            uow.commit()
        return True

    def _claim(self, act_id: str) -> bool:
        table: Any = self._table
        now = utcnow()
        free = or_(
            table.document_claimed_at.is_(None), table.document_claimed_at < now - DOCUMENT_LEASE
        )
        with self._db.uow() as uow:
            result = uow.session.execute(
                update(table)
                .where(table.id == act_id, table.document_id.is_(None), free)
                .values(document_claimed_at=now)
            )
            uow.commit()
        return int(cast(CursorResult[Any], result).rowcount) == 1

    def row(self, act_id: str) -> Row:
        """The act's row, detached with its values (for a later step outside the read)."""
        with self._db.uow(readonly=True) as uow:
            row = uow.session.get(self._table, act_id)
            if row is None:
                raise ActNotFound(self._not_found)
            uow.session.expunge(row)
            return row

    def produce_later(
        self,
        act_id: str,
        produce: Callable[[Row], ProducedDocument],
        problems: list[dict[str, Any]] | None = None,
    ) -> None:
        """The act's document after the act (INS qualified since, or a crash before it): once."""
        row = self.row(act_id)
        if row.document_id is not None:
            raise DocumentAlreadyProduced()
        if not self.link_document(act_id, lambda: produce(row), problems):
            raise DocumentAlreadyProduced("Production du document déjà en cours.")

    def get(self, act_id: str) -> View:
        with self._db.uow(readonly=True) as uow:
            row = uow.session.get(self._table, act_id)
            if row is None:
                raise ActNotFound(self._not_found)
            return self._view(row)

    def search(
        self,
        *,
        patient_id: str | None,
        start: date | None,
        end: date | None,
        kind: str | None,
        limit: int,
    ) -> list[View]:
        """Newest first; dates are local days, inclusive."""
        table: Any = self._table
        lower, upper = utc_bounds(start, end)
        stmt = select(table).order_by(self._when.desc()).limit(limit)
        if patient_id:
            stmt = stmt.where(table.patient_id == patient_id)
        if kind:
            stmt = stmt.where(self._kind == kind)
        if lower:
            stmt = stmt.where(self._when >= lower)
        if upper:
            stmt = stmt.where(self._when < upper)
        with self._db.uow(readonly=True) as uow:
            return [self._view(row) for row in uow.session.execute(stmt).scalars()]


class ProducedDocument(Protocol):
    @property
    def id(self) -> str: ...


class DocumentProducer(Protocol):
    """The documents part's service, as the missions use it."""

    def require_mss(self, recipient: str | None = None) -> None: ...

    def vaccination_note(
        self,
        patient_id: str,
        vaccinations: Any,
        author: Author,
        *,
        to_dmp: bool = True,
        mss_recipient: str | None = None,
    ) -> ProducedDocument: ...

    def trod_result(
        self,
        patient_id: str,
        result: Any,
        author: Author,
        *,
        to_dmp: bool = True,
        mss_recipient: str | None = None,
    ) -> ProducedDocument: ...


def produce_document(
    produce: Callable[[], ProducedDocument], act_id: str
) -> tuple[str | None, str | None, dict[str, Any] | None]:
    """Run the documents part's use case: (document id, None, None) or (None, why it was skipped,
    the French problem the counter shows: title, detail and, for a document the CI-SIS kit
    refused, its ``failed_rules``).

    An unqualified INS is the normal case of a patient without INS (no document, no error for the
    counter); any other document error is logged and reported, the act itself stays recorded."""
    try:
        document = produce()
    except InsNotQualifiedError as exc:
        return None, exc.slug, _counter_problem(exc)
    except LgoError as exc:
        log.warning("mission_document_failed", act_id=act_id, error=exc.slug)
        return None, exc.slug[:64], _counter_problem(exc)
    return document.id, None, None


def first_problem(problems: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Why the act's document was not produced, for the act's answer (this answer only: the act
    keeps the reason's slug in ``document_skipped``)."""
    return problems[0] if problems else None


def _counter_problem(exc: LgoError) -> dict[str, Any]:
    """The error as problem+json members, without the HTTP status (the act itself was recorded)."""
    problem = exc.problem()
    problem.pop("status", None)
    problem.pop("instance", None)
    return problem


def publish(events: EventBus | None, type_: str, data: dict[str, Any]) -> None:
    if events is not None:
        events.publish(type_, data)


def not_future(moment: datetime, now: datetime) -> None:
    """An act is recorded when done or after: not later than now (a few minutes of clock drift
    between the counter and the daemon allowed)."""
    if moment > now + CLOCK_DRIFT:
        raise InvalidInput("Heure de l'acte dans le futur : vérifier la date et l'heure.")


def utc_bounds(start: date | None, end: date | None) -> tuple[datetime | None, datetime | None]:
    """Local days (inclusive) as UTC instants [first midnight, midnight after the last day)."""
    lower = datetime.combine(start, time(), PHARMACY_TZ) if start else None
    upper = datetime.combine(end + timedelta(days=1), time(), PHARMACY_TZ) if end else None
    if lower and upper and upper <= lower:
        raise InvalidInput("La date de fin précède la date de début.")
    return lower, upper


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)
