"""Counter use cases: load a prescription, check interventions, commit a dispensation exactly once.

The commit is ONE transaction: the idempotency key, the dispensation and its lines, the ordonnancier
entries and the outbox message (execution report). Nothing leaves the machine inside it: the outbox
worker reports later, so the counter keeps working when the e-prescription service is down
(degraded mode). Exactly-once rests on constraints (see lgo/store/models/dispensing.py).

On PostgreSQL a new paper prescription costs two round trips: the key's claim (with the BEGIN),
the prescription's insert and the commit's read in one pipeline, then one message with every write
whose answer is not needed and the COMMIT (lgo.store.db: ``execute_together``,
``write_with_commit``). A stored prescription's locked read leaves with the claim and its commit's
read adds one, an execution report its outbox insert (the answer shows the message's id).
"""

from __future__ import annotations

import hashlib
import json
import math
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any, Protocol

from sqlalchemy import (
    ClauseElement,
    CompoundSelect,
    Connection,
    Insert,
    Select,
    bindparam,
    insert,
    null,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lgo.core.events import EventBus
from lgo.core.logs import get_logger
from lgo.core.plain import plain as _plain
from lgo.domain.controlled import Period
from lgo.domain.dispensing import (
    ExecutionDecision,
    InterventionKind,
    LineDecision,
    LineHistory,
    LineRequest,
    evaluate_execution,
)
from lgo.domain.identity import IdentityStatus, may_send_ins
from lgo.domain.legal_record import Bearer, Datum
from lgo.domain.patient_match import PatientTraits
from lgo.domain.prescription import Prescription, PrescriptionLine, PrescriptionSource
from lgo.domain.products import Pack, Product, RegulatoryList
from lgo.national import eprescription as ep
from lgo.national.errors import PrescriptionCancelled, ServiceUnavailable
from lgo.national.profiles import eprescription as eprescription_profile
from lgo.services import narcotics, ordonnancier
from lgo.services.dispensing_errors import (
    DispensationNotFound,
    DispensingRefused,
    EPrescriptionDown,
    IdempotencyKeyReused,
    LineAlreadyDispensed,
    PatientNotFound,
    PrescriptionNotLoaded,
)
from lgo.services.faults import fault_point
from lgo.services.legal_record import (
    ensure_complete,
    missing_record_data,
    patient_name,
    prescriber_address,
    public_missing,
    recorded_lines,
)
from lgo.services.local_time import local_date
from lgo.services.prescription_patient import (
    STORED_PATIENT_COLUMNS,
    PatientMatchResult,
    PatientRecord,
    StoredPatient,
    candidate_match,
    ensure_prescription_patient,
    match_view,
)
from lgo.services.prescriptions import ProductCatalog, from_json, from_record, to_json
from lgo.store.base import Base
from lgo.store.columns import utcnow
from lgo.store.db import (
    Database,
    DriverResult,
    execute_on_driver,
    execute_together,
    write_with_commit,
)
from lgo.store.models import Patient
from lgo.store.models.dispensing import (
    DispensationLineRow,
    DispensationRow,
    OutboxMessage,
    PrescriptionRow,
)

log = get_logger(__name__)

# The commit's statements, built once on the Core tables (no ORM unit of work on the hot path),
# run on the driver's cursor (lgo.store.db.execute_on_driver: their columns are plain, dates and
# booleans converted by SQLAlchemy's own processors), each compiled once per dialect.
_TABLES = Base.metadata.tables
_KEYS = _TABLES["idempotency_keys"]
_PATIENTS = _TABLES["patients"]
_PRESCRIPTIONS = _TABLES["prescriptions"]
_DISPENSATIONS = _TABLES["dispensations"]
_LINES = _TABLES["dispensation_lines"]
_OUTBOX = _TABLES["outbox_messages"]
# No RETURNING: the line ids are not needed (the insert leaves with the COMMIT).
_INSERT_LINES = insert(_LINES).inline()


def _insert_new(table: Any, key: Any) -> dict[str, Insert]:
    """``INSERT … ON CONFLICT (key) DO NOTHING`` by dialect name: a new row is claimed, or found
    taken (no row inserted), in one statement instead of a read then an insert. On PostgreSQL a
    conflict with a transaction in progress waits for its end, as the unique index did."""
    # The row count says which (execute_on_driver reads it from the cursor; through
    # Connection.execute SQLAlchemy keeps it for an INSERT only when asked).
    kept = {"preserve_rowcount": True}
    return {
        "postgresql": postgresql.insert(table)
        .on_conflict_do_nothing(index_elements=[key])
        .execution_options(**kept),
        "sqlite": sqlite.insert(table)
        .on_conflict_do_nothing(index_elements=[key])
        .execution_options(**kept),
    }


# Built once: a statement's cache key is computed once per object, so one built per call costs
# its construction and its key on every dispensation. Their keys are given (no RETURNING), except
# the outbox message's id, which the answer shows.
_CLAIM_KEY = _insert_new(_KEYS, _KEYS.c.key)
_NEW_PRESCRIPTION = _insert_new(_PRESCRIPTIONS, _PRESCRIPTIONS.c.id)
_INSERT_DISPENSATION = insert(_DISPENSATIONS).inline()
_INSERT_MESSAGE = insert(_OUTBOX).returning(_OUTBOX.c.id)
_ANSWER_OF_KEY = select(_KEYS.c.request_hash, _KEYS.c.status_code, _KEYS.c.response).where(
    _KEYS.c.key == bindparam("key")
)
_STORE_ANSWER = (
    update(_KEYS)
    .where(_KEYS.c.key == bindparam("stored_key"))
    .values(status_code=bindparam("status_code"), response=bindparam("response"))
)
# Locked on PostgreSQL: one commit per prescription at a time.
_PRESCRIPTION_CONTENT = (
    select(_PRESCRIPTIONS.c.content)
    .where(_PRESCRIPTIONS.c.id == bindparam("prescription_id"))
    .with_for_update()
)
# Controlled lines: the periods the patient has covered by other prescriptions (chevauchement).
_COVERED_ELSEWHERE = (
    _DISPENSATIONS.c.patient_id == bindparam("patient_id"),
    _LINES.c.prescription_id != bindparam("prescription_id"),
    _LINES.c.period_start.is_not(None),
)
_COVERED = (
    select(_LINES.c.period_start, _LINES.c.period_end)
    .join(_DISPENSATIONS, _DISPENSATIONS.c.id == _LINES.c.dispensation_id)
    .where(*_COVERED_ELSEWHERE, _LINES.c.molecule == bindparam("molecule"))
)
_PAST_COLUMNS = tuple(
    _LINES.c[name]
    for name in ("line_no", "seq", "days", "units", "exceptional", "period_start", "period_end")
)
_PAST_LINES = (
    select(*_PAST_COLUMNS)
    .where(_LINES.c.prescription_id == bindparam("prescription_id"))
    .order_by(_LINES.c.line_no, _LINES.c.seq)
)
# The commit's one read. The patient (the columns its rules use) and the prescription's earlier
# interventions: one row per earlier line, or one row without a line...
_PATIENT_AND_PAST_ROWS = (
    select(
        *(_PATIENTS.c[name] for name in STORED_PATIENT_COLUMNS),
        *_PAST_COLUMNS,
        null().label("molecule"),
    )
    .select_from(
        _PATIENTS.outerjoin(_LINES, _LINES.c.prescription_id == bindparam("prescription_id"))
    )
    .where(_PATIENTS.c.id == bindparam("patient_id"))
)
_PATIENT_AND_PAST = _PATIENT_AND_PAST_ROWS.order_by(_LINES.c.line_no, _LINES.c.seq)


# ...and, with a controlled line, the periods this patient has covered by other prescriptions for
# its substances (the rows _COVERED reads, without a patient, named by their substance).
@lru_cache(maxsize=32)
def _patient_past_and_covered(substances: int) -> CompoundSelect[Any]:
    """The read for ``substances`` controlled substances: one statement per count, built once,
    its ``IN`` list of plain binds (``molecule_0``…). An expanding bind would have SQLAlchemy
    rewrite the SQL text and every bind on each call; a dispensation names few substances."""
    covered_rows = (
        select(
            *(null() for _ in range(len(STORED_PATIENT_COLUMNS) + len(_PAST_COLUMNS) - 2)),
            _LINES.c.period_start,
            _LINES.c.period_end,
            _LINES.c.molecule,
        )
        .join(_DISPENSATIONS, _DISPENSATIONS.c.id == _LINES.c.dispensation_id)
        .where(
            *_COVERED_ELSEWHERE,
            _LINES.c.molecule.in_([bindparam(f"molecule_{i}") for i in range(substances)]),
        )
    )
    with_covered = union_all(_PATIENT_AND_PAST_ROWS, covered_rows)
    columns = with_covered.selected_columns
    return with_covered.order_by(columns.line_no, columns.seq)


SCOPE = "dispensation"
OUTBOX_EXECUTION = "eprescription.execution"
INTERVENTIONS_TO_NATIONAL = {
    InterventionKind.UNCHANGED: ep.Intervention.UNCHANGED,
    InterventionKind.SUBSTITUTED: ep.Intervention.SUBSTITUTED,
    InterventionKind.MODIFIED: ep.Intervention.MODIFIED,
    InterventionKind.NOT_DISPENSED: ep.Intervention.NOT_DISPENSED,
}
EXCEPTIONAL_REASON = eprescription_profile.EXCEPTIONAL_RENEWAL_REASON


class PrescriptionFetcher(Protocol):
    def fetch(self, prescription_id: str, *, author_rpps: str) -> ep.PrescriptionRecord: ...


@dataclass(frozen=True)
class ProfessionalContext:
    """The CPS/e-CPS situation that performs the act (stored on every dispensation)."""

    national_id: str
    rpps: str
    structure_id: str | None
    session_kind: str
    session_id: str
    counter_name: str | None = None


@dataclass(frozen=True)
class LineInput:
    """One intervention as the counter sends it (before the catalogue resolves packs)."""

    request: LineRequest
    cip13: str | None = None
    boxes: int | None = None
    designation: str | None = None


@dataclass(frozen=True)
class DispensationInput:
    patient_id: str
    prescription_id: str
    lines: tuple[LineInput, ...]
    # The paper copy typed in: a paper prescription, or an e-prescription in degraded mode.
    paper: Prescription | None = None
    patient_address: str = ""
    fingerprint: str = ""  # canonical hash of the request body (idempotency)
    # Typed at the counter when the prescription does not give it (R.5132-10).
    prescriber_address: str = ""
    # Who brought the prescription (R.5132-35, stupéfiants): None when the request does not say.
    bearer: Bearer | None = None
    # The prescriber's RPPS when the pharmacist acknowledged the prescriber warning (logged with
    # the commit, on its one line).
    acknowledged_prescriber: str | None = None


@dataclass(frozen=True)
class DispensationResult:
    status_code: int
    body: dict[str, Any]
    replayed: bool = False


@dataclass
class PrescriptionView:
    prescription: Prescription
    degraded: bool
    histories: dict[int, LineHistory] = field(default_factory=dict)


# ---------------------------------------------------------------- read models (typed answers)


@dataclass(frozen=True)
class RuleRefusal:
    """A rule that refuses (or limits) an intervention."""

    code: str
    line_no: int | None
    message: str
    overridable: bool
    article: str | None
    max_days: int | None


@dataclass(frozen=True)
class MissingMention:
    """A mention the ordonnancier entry would lack (R.5132-10)."""

    datum: str
    label: str
    article: str


@dataclass(frozen=True)
class CheckedLine:
    line_no: int
    intervention: str
    days: int
    units: int
    completeness: str | None
    warnings: list[str]
    mentions: list[str]
    overridden: list[str]


@dataclass(frozen=True)
class CheckOutcome:
    """What the commit would decide, without writing anything."""

    allowed: bool
    refusals: list[RuleRefusal]
    record_missing: list[MissingMention]
    lines: list[CheckedLine]


@dataclass(frozen=True)
class ActingProfessional:
    national_id: str
    rpps: str
    structure_id: str | None
    session_kind: str
    session_id: str
    counter: str | None


@dataclass(frozen=True)
class RecordedOverride:
    code: str
    reason: str | None
    pharmacist_rpps: str | None


@dataclass(frozen=True)
class RecordedLine:
    line_no: int
    intervention: str
    days: int
    units: int
    boxes: int
    delivered_cip13: str | None
    designation: str
    regulatory_list: str
    completeness: str | None
    exceptional: bool
    unit_dispensing: bool
    lot: str | None
    substituted_form: str | None
    reason: str | None
    override: RecordedOverride | None
    mentions: list[str]
    period_start: str | None
    period_end: str | None
    ordonnancier_number: int | None


@dataclass(frozen=True)
class OutboxState:
    id: int
    status: str


@dataclass(frozen=True)
class DispensationRecord:
    """A recorded dispensation as the API answers it (``_plain`` of it is the commit's JSON body)."""

    id: str
    created_at: str
    business_date: str
    patient_id: str
    prescription_id: str
    prescription_source: str
    sync_status: str
    degraded: bool
    professional: ActingProfessional
    lines: list[RecordedLine]
    outbox: list[OutboxState]


def scoped_key(counter_name: str | None, key: str) -> str:
    """The stored form of an Idempotency-Key: ``<counter name>:<key>`` (counter names are unique
    and at most 64 characters, keys at most 128: the columns hold 200)."""
    return f"{counter_name or ''}:{key}"


def request_fingerprint(body: Any) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


class DispensingService:
    def __init__(
        self,
        db: Database,
        events: EventBus,
        catalog: ProductCatalog,
        *,
        eprescription: PrescriptionFetcher | None = None,
        pharmacy_finess: str | None = None,
        clock: Callable[[], datetime] = utcnow,
        on_commit: Callable[[], None] | None = None,
    ) -> None:
        self.db = db
        self.events = events
        self.catalog = catalog
        self.eprescription = eprescription
        self.pharmacy_finess = pharmacy_finess
        self.clock = clock
        self.on_commit = on_commit

    # ------------------------------------------------------------ prescriptions

    def load_prescription(
        self, prescription_id: str, *, author_rpps: str, patient_id: str | None = None
    ) -> PrescriptionView:
        """Fetch from the national service and cache; on outage fall back to the cached copy
        (degraded). Raises EPrescriptionDown when neither is available."""
        prescription_id = ep.normalise_prescription_id(prescription_id)
        if self.eprescription is None:
            return self._cached_view(prescription_id, degraded=True)
        try:
            record = self.eprescription.fetch(prescription_id, author_rpps=author_rpps)
        except ServiceUnavailable:
            log.warning("eprescription_fetch_degraded", prescription_id=prescription_id)
            return self._cached_view(prescription_id, degraded=True)
        if record.state is ep.PrescriptionState.CANCELLED:
            # Expired or completed ones stay readable: the rules decide (exceptional dispensation).
            raise PrescriptionCancelled(f"ordonnance {prescription_id}")
        prescription = from_record(record, self.catalog, patient_id)
        national = self._national_histories(prescription, record)
        # Kept with the cached copy: the commit's rules then also see other pharmacies' deliveries.
        extra = {
            **prescription.extra,
            **{f"national:{n}": f"{h.days_dispensed}:{h.deliveries}" for n, h in national.items()},
        }
        prescription = replace(prescription, extra=extra)
        self._store_prescription(prescription)
        with self.db.uow(readonly=True) as uow:
            histories = _histories(uow.session, prescription)
        return PrescriptionView(prescription, degraded=False, histories=histories)

    def _cached_view(self, prescription_id: str, *, degraded: bool) -> PrescriptionView:
        with self.db.uow(readonly=True) as uow:
            row = uow.session.get(PrescriptionRow, prescription_id)
            if row is None:
                raise EPrescriptionDown(f"ordonnance {prescription_id} jamais chargée")
            prescription = from_json(row.content)
            # What the counter sees offline: this pharmacy's deliveries and the last national view.
            histories = _histories(uow.session, prescription)
            return PrescriptionView(prescription, degraded=degraded, histories=histories)

    def _store_prescription(self, prescription: Prescription) -> None:
        with self.db.uow() as uow:
            _upsert_prescription(uow.session, prescription, self.clock())
            uow.commit()

    def _national_histories(
        self, prescription: Prescription, record: ep.PrescriptionRecord
    ) -> dict[int, LineHistory]:
        """What the national base says was already dispensed (other pharmacies included)."""
        histories: dict[int, LineHistory] = {}
        for line, dto in zip(prescription.lines, record.lines, strict=True):
            done = [d for d in dto.dispensed if d.quantity > 0]
            boxes = sum(d.quantity for d in done)
            per_box = line.duration_days / max(dto.quantity, 1)
            histories[line.line_no] = LineHistory(
                days_dispensed=math.floor(boxes * per_box), deliveries=len(done)
            )
        return histories

    def covered_periods(
        self, prescription: Prescription, patient_id: str | None
    ) -> dict[int, list[Period]]:
        """Controlled lines: periods the patient already has covered by other prescriptions
        (the same query as the commit's, for the view's "deliverable today")."""
        if patient_id is None:
            return {}
        with self.db.uow(readonly=True) as uow:
            return _covered_periods(uow.session, prescription, patient_id)

    def patient_match(self, prescription: Prescription, patient_id: str) -> PatientMatchResult:
        """Is ``patient_id`` the prescription's patient, by the commit's rule (for the view)."""
        with self.db.uow(readonly=True) as uow:
            patient = uow.session.get(Patient, patient_id)
            if patient is None:
                raise PatientNotFound()
            return match_view(prescription, patient)

    def candidates_match(
        self, prescription_id: str, candidates: Sequence[PatientTraits]
    ) -> list[PatientMatchResult]:
        """The same rule for people not stored yet (a card's beneficiaries), against the copy the
        commit checks (the one the last ``GET /v1/prescriptions/{id}`` stored)."""
        with self.db.uow(readonly=True) as uow:
            row = uow.session.get(PrescriptionRow, ep.normalise_prescription_id(prescription_id))
            if row is None:
                raise PrescriptionNotLoaded()
            prescription = from_json(row.content)
        return [candidate_match(prescription, c) for c in candidates]

    # ------------------------------------------------------------ commit

    def dispense(
        self, key: str, data: DispensationInput, ctx: ProfessionalContext, *, degraded: bool
    ) -> DispensationResult:
        """Commit once per key: same key and body → the first answer; other body → 409. A key
        belongs to the counter that sent it: another counter's same key is another request."""
        key = scoped_key(ctx.counter_name, key)
        try:
            # A Core transaction, not an ORM Session: every statement here is a plain one.
            with self.db.transaction() as tx:
                conn = tx.connection
                now = self.clock()
                replay, sent = _claim_key(conn, key, data, now)
                if replay is not None:
                    return replay
                fault_point("dispensation.after_key_claim")
                written = self._write(conn, key, data, ctx, degraded, now, sent)
                fault_point("dispensation.before_commit")
                tx.commit()  # PostgreSQL: with the tail's writes, in one message
        except IntegrityError:
            # Another transaction won: the same key (replay it) or the same line (conflict).
            replay = self._replay(key, data.fingerprint)
            if replay is not None:
                return replay
            raise LineAlreadyDispensed() from None
        fault_point("dispensation.after_commit")
        self._after_commit(written, data)
        return DispensationResult(201, written.body)

    def _replay(self, key: str, fingerprint: str) -> DispensationResult | None:
        with self.db.uow(readonly=True) as uow:
            stored = _stored_answer(uow.session.connection(), key)
            return None if stored is None else _replayed(stored, fingerprint)

    def _after_commit(self, written: _Written, data: DispensationInput) -> None:
        body = written.body
        # One line per dispensation (ids and RPPS only): an acknowledged prescriber warning is said
        # on it rather than on a line of its own.
        acknowledged = {}
        if data.acknowledged_prescriber is not None:
            acknowledged = {
                "prescriber_warning_acknowledged": True,
                "prescriber_rpps": data.acknowledged_prescriber,
                "pharmacist_rpps": body["professional"]["rpps"],
            }
        log.info(
            "dispensation_committed",
            dispensation_id=body["id"],
            degraded=body["degraded"],
            **acknowledged,
        )
        self.events.publish(
            "dispensation.committed",
            {
                "id": body["id"],
                "prescription_id": body["prescription_id"],
                "degraded": body["degraded"],
                "sync_status": body["sync_status"],
                # The DMP auto-feed skips at once a patient whose INS may not leave the pharmacy.
                "ins_qualified": written.ins_qualified,
            },
        )
        # Only a queued execution report gives the outbox worker something to do.
        if written.queued and self.on_commit is not None:
            self.on_commit()

    def _write(
        self,
        conn: Connection,
        key: str,
        data: DispensationInput,
        ctx: ProfessionalContext,
        degraded: bool,
        now: datetime,
        sent: Sequence[DriverResult],
    ) -> _Written:
        """Write the dispensation with plain statements (no ORM unit of work), each row once.

        The ordonnancier head is every counter's waiting point, so it comes last: first what
        needs no ordonnancier number (dispensation, register, outbox), then the head is locked
        and only the numbered rows follow (lines, entries, the stored answer that shows the
        numbers), the head's own update being the last write before the commit. PostgreSQL: every
        write whose answer is not needed leaves with the COMMIT, in one message (the
        dispensation and the register before the head's lock); only the outbox message, whose id
        the answer shows, is sent before. ``sent``: the answers of the typed copy's statements
        that left with the key's claim (:func:`_claim_key`)."""
        # Read once the prescription is held: the history is what the last commit on it left.
        prescription, (patient, past, covered) = _prescription_for_commit(conn, data, now, sent)
        ensure_prescription_patient(prescription, patient)  # before the dispensation's rows
        decision = evaluate_execution(
            prescription,
            [line.request for line in data.lines],
            _merged_histories(prescription, past),
            local_date(now),
            covered,
        )
        if not decision.allowed:
            raise DispensingRefused(refusals=_refusals(decision))
        ensure_complete(_missing_record(prescription, patient, data, decision.lines))  # no row yet
        dispensation = _dispensation_values(key, prescription, data, ctx, degraded, now)
        write_with_commit(conn, _INSERT_DISPENSATION, dispensation)  # PostgreSQL: with the COMMIT
        lines = self._line_values(dispensation["id"], prescription, data, decision.lines, past)
        narcotics.record_withdrawals(conn, lines, ctx.rpps, now)
        outbox: list[OutboxState] = []
        if _reportable(prescription, data):
            report = _execution_report(
                dispensation["id"], prescription, lines, past, ctx, now, self.pharmacy_finess
            )
            message_id = _enqueue(conn, dispensation["id"], report, now)
            outbox.append(OutboxState(message_id, "pending"))
        listed = [line for line in lines if line["units"] > 0 and line["regulatory_list"] != "none"]
        entries = [_entry(line, prescription, patient, data, ctx, now) for line in listed]
        # The answer is built before the head is taken: only its numbers are filled in after.
        body = _answer_of(dispensation, lines, outbox)
        written = _Written(body, queued=bool(outbox), ins_qualified=_ins_qualified(patient))
        shown = {id(line): answered for line, answered in zip(lines, body["lines"], strict=True)}
        if entries and ordonnancier.on_server(conn):
            # PostgreSQL: the server locks the head, numbers, chains and writes the entries first
            # in the COMMIT's message, the lines and the stored answer read the numbers there: the
            # head is held while PostgreSQL runs that message, for no daemon work.
            ordonnancier.append_with_commit(conn, entries)
            answers = [shown[id(line)] for line in listed]
            for offset, answered in enumerate(answers):
                answered["ordonnancier_number"] = ordonnancier.number_mark(offset)
            numbered_lines = ordonnancier.numbered_insert(_INSERT_LINES, "ordonnancier_number")
            rows = ordonnancier.offset_rows(lines, listed, "ordonnancier_number")
            write_with_commit(conn, numbered_lines, rows)
            fault_point("dispensation.after_lines")
            fault_point("dispensation.after_ordonnancier")
            parts, where = ordonnancier.cut_marks(json.dumps(body, default=str), len(listed))
            fill = {
                "stored_key": key,
                "status_code": 201,
                "fill_parts": parts,
                "fill_offsets": where,
            }
            write_with_commit(conn, ordonnancier.filled_update(_STORE_ANSWER, "response"), fill)
            ordonnancier.numbers_after_commit(conn, answers)
            return written
        numbered: list[dict[str, Any]] = []
        new_head: ordonnancier.Head | None = None
        if entries:
            # From here to the commit every other counter waits (PostgreSQL row lock on the head).
            numbered, new_head = ordonnancier.chain(ordonnancier.lock_head(conn), entries)
        for line, entry in zip(listed, numbered, strict=True):
            line["ordonnancier_number"] = shown[id(line)]["ordonnancier_number"] = entry["number"]
        answer = json.dumps(body, default=str)
        # PostgreSQL: these writes leave with the COMMIT, in one message (the head is held for the
        # lock's answer, this Python, and one round trip); SQLite runs them here.
        write_with_commit(conn, _INSERT_LINES, lines)
        fault_point("dispensation.after_lines")
        ordonnancier.insert_entries(conn, numbered)
        fault_point("dispensation.after_ordonnancier")
        answered = {"stored_key": key, "status_code": 201, "response": answer}
        write_with_commit(conn, _STORE_ANSWER, answered)
        if new_head is not None:
            ordonnancier.move_head(conn, new_head)  # the last write
        return written

    def _line_values(
        self,
        dispensation_id: str,
        prescription: Prescription,
        data: DispensationInput,
        decisions: Sequence[LineDecision],
        past: Sequence[_PastLine],
    ) -> list[dict[str, Any]]:
        """The dispensation_lines rows, by line number; ``seq`` counts the line's earlier
        interventions (two counters that read the same history collide on the unique index)."""
        inputs = {line.request.line_no: line for line in data.lines}
        rows = []
        for decision in sorted(decisions, key=lambda d: d.line_no):
            seq = sum(1 for p in past if p.line_no == decision.line_no)
            given = inputs[decision.line_no]
            rows.append(
                _line_values(dispensation_id, prescription, given, decision, seq, self.catalog)
            )
        return rows

    def check(self, data: DispensationInput) -> CheckOutcome:
        """Evaluate the interventions without recording anything (the counter's "check" step)."""
        with self.db.uow(readonly=True) as uow:
            patient = uow.session.get(Patient, data.patient_id)
            if patient is None:
                raise PatientNotFound()
            row = uow.session.get(PrescriptionRow, data.prescription_id)
            prescription = from_json(row.content) if row is not None else data.paper
            if prescription is None:
                raise PrescriptionNotLoaded()
            ensure_prescription_patient(prescription, patient)
            decision = _evaluate(uow.session, prescription, data, local_date(self.clock()))
            missing = _missing_record(prescription, patient, data, decision.lines)
        return CheckOutcome(
            allowed=decision.allowed,
            refusals=rule_refusals(decision),
            # What the ordonnancier entries would lack: the commit is refused until it is given.
            record_missing=[MissingMention(**m) for m in public_missing(missing)],
            lines=[
                CheckedLine(
                    line_no=d.line_no,
                    intervention=d.kind.value,
                    days=d.days,
                    units=d.units,
                    completeness=d.completeness.value if d.completeness else None,
                    warnings=list(d.warnings),
                    mentions=list(d.mentions),
                    overridden=[o.code.value for o in d.overridden],
                )
                for d in decision.lines
            ],
        )

    # ------------------------------------------------------------ reads

    def get(self, dispensation_id: str) -> DispensationRecord:
        with self.db.uow(readonly=True) as uow:
            if uow.session.get(DispensationRow, dispensation_id) is None:
                raise DispensationNotFound()
            return _record(uow.session, dispensation_id)

    def list(
        self, *, patient_id: str | None = None, day: date | None = None, limit: int = 200
    ) -> list[DispensationRecord]:
        stmt = select(DispensationRow.id).order_by(DispensationRow.created_at.desc()).limit(limit)
        if patient_id:
            stmt = stmt.where(DispensationRow.patient_id == patient_id)
        if day:
            stmt = stmt.where(DispensationRow.business_date == day)
        with self.db.uow(readonly=True) as uow:
            ids = uow.session.execute(stmt).scalars().all()
            return [_record(uow.session, i) for i in ids]


# ---------------------------------------------------------------- helpers (transaction-scoped)


@dataclass(frozen=True)
class _Written:
    """What the commit wrote, for the answer and what follows the commit."""

    body: dict[str, Any]
    queued: bool  # an execution report waits in the outbox
    ins_qualified: bool


@dataclass(frozen=True)
class _PastLine:
    """An earlier intervention on the prescription: what the rules and the numbering need."""

    line_no: int
    seq: int
    days: int
    units: int
    exceptional: bool
    period_start: date | None
    period_end: date | None


def _past_lines(db: Session | Connection, prescription_id: str) -> list[_PastLine]:
    """One read of the prescription's earlier interventions (history, seq, renewal number)."""
    rows = db.execute(_PAST_LINES, {"prescription_id": prescription_id}).all()
    return [_PastLine(*row) for row in rows]


_CommitReads = tuple[StoredPatient, list[_PastLine], dict[int, list[Period]]]


def _commit_read(patient_id: str, prescription: Prescription) -> tuple[Any, dict[str, Any]]:
    """In one statement: the patient (the columns the commit's rules read, as a plain value: the
    commit never writes the patient, so it needs no ORM object), the prescription's earlier
    interventions and, for its controlled lines, the periods covered by other prescriptions
    (what :func:`_covered_periods` reads). Its rows go to :func:`_commit_reads`."""
    params: dict[str, Any] = {
        "patient_id": patient_id,
        "prescription_id": prescription.prescription_id,
    }
    if substances := _controlled_substances(prescription):
        molecules = sorted(set(substances.values()))
        params.update((f"molecule_{i}", molecule) for i, molecule in enumerate(molecules))
        return _patient_past_and_covered(len(molecules)), params
    return _PATIENT_AND_PAST, params


def _commit_reads(rows: Sequence[tuple[Any, ...]], prescription: Prescription) -> _CommitReads:
    """What :func:`_commit_read`'s rows say: the patient, the earlier lines, the covered periods."""
    substances = _controlled_substances(prescription)
    mine = [row for row in rows if row[0] is not None]  # the patient's id: not a covered row
    if not mine:
        raise PatientNotFound()
    width, past_width = len(STORED_PATIENT_COLUMNS), len(_PAST_COLUMNS)
    patient = StoredPatient(*mine[0][:width])
    past = [_PastLine(*row[width : width + past_width]) for row in mine if row[width] is not None]
    periods = [(row[-1], row[-3], row[-2]) for row in rows if row[0] is None]
    covered = {
        line_no: [Period(s, e) for molecule, s, e in periods if molecule == substance and s and e]
        for line_no, substance in substances.items()
    }
    return patient, past, covered


def _ins_qualified(patient: PatientRecord) -> bool:
    """The INS may leave the pharmacy (a DMP document can be produced)."""
    has_ins = bool(patient.ins_matricule and patient.ins_oid)
    return has_ins and may_send_ins(IdentityStatus(patient.identity_status), patient.on_work_list)


def _prescription_values(prescription: Prescription, now: datetime) -> dict[str, Any]:
    return {
        "id": prescription.prescription_id,
        "source": prescription.source.value,
        "patient_id": prescription.patient_id,
        "prescribed_on": prescription.prescribed_on,
        "prescriber_rpps": prescription.prescriber_rpps,
        "content": to_json(prescription),
        "fetched_at": now,
        "version": 1,
    }


def _prescription_for_commit(
    conn: Connection, data: DispensationInput, now: datetime, sent: Sequence[DriverResult]
) -> tuple[Prescription, _CommitReads]:
    """The prescription the commit checks, its row held (PostgreSQL): one commit per prescription
    at a time, and the commit's read, made once it is held. A typed copy is written in one
    statement when it is new (its insert holds the new row); a stored copy wins over the typed one
    and is read locked, then the read made. PostgreSQL: the typed copy's insert and the read for
    it left with the key's claim (``sent``: one round trip; the insert runs first, so the read
    still comes after the row is held); when a stored copy wins, that read is dropped and made
    again after the lock."""
    if data.paper is not None:
        read: DriverResult | None = None
        if sent:
            claimed, read = sent
        else:  # SQLite (in-process: no round trip to save)
            claimed = execute_on_driver(conn, *_typed_copy(conn, data.paper, now))
        if claimed.rowcount == 1:
            if read is None:
                read = execute_on_driver(conn, *_commit_read(data.patient_id, data.paper))
            return data.paper, _commit_reads(read.rows, data.paper)
    if data.paper is None and sent:
        (held,) = sent  # PostgreSQL: the locked read left with the key's claim
    else:
        held = execute_on_driver(conn, *_held_copy(data))
    found = held.rows
    if not found:
        raise PrescriptionNotLoaded()
    prescription = from_json(found[0][0])
    read = execute_on_driver(conn, *_commit_read(data.patient_id, prescription))
    return prescription, _commit_reads(read.rows, prescription)


def _dispensation_values(
    key: str,
    prescription: Prescription,
    data: DispensationInput,
    ctx: ProfessionalContext,
    degraded: bool,
    now: datetime,
) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "created_at": now,
        "business_date": local_date(now),
        "patient_id": data.patient_id,
        "prescription_id": prescription.prescription_id,
        "prescription_source": prescription.source.value,
        "sync_status": "pending_sync" if _reportable(prescription, data) else "local_only",
        "degraded": degraded,
        "pharmacist_national_id": ctx.national_id,
        "pharmacist_rpps": ctx.rpps,
        "structure_id": ctx.structure_id,
        "session_kind": ctx.session_kind,
        "session_id": ctx.session_id,
        "counter_name": ctx.counter_name,
        "idempotency_key": key,
    }


def _entry(
    line: Mapping[str, Any],
    prescription: Prescription,
    patient: PatientRecord,
    data: DispensationInput,
    ctx: ProfessionalContext,
    now: datetime,
) -> dict[str, Any]:
    """The ordonnancier entry of a listed line (without its number)."""
    return {
        "recorded_at": now.isoformat(),
        "dispensation_id": line["dispensation_id"],
        "line_no": line["line_no"],
        "prescription_id": prescription.prescription_id,
        "prescriber_rpps": prescription.prescriber_rpps,
        "prescriber_name": prescription.extra.get("prescriber_name", ""),
        "prescriber_address": prescriber_address(prescription, data.prescriber_address),
        "patient_id": patient.id,
        "patient_name": patient_name(patient),
        "patient_address": data.patient_address,
        "product_code": line["delivered_cip13"] or prescription.line(line["line_no"]).product.code,
        "designation": line["designation"],
        "regulatory_list": line["regulatory_list"],
        "quantity_units": line["units"],
        "pharmacist_rpps": ctx.rpps,
        **_bearer_fields(data.bearer, line["regulatory_list"]),
    }


def _evaluate(
    session: Session, prescription: Prescription, data: DispensationInput, today: date
) -> ExecutionDecision:
    requests = [line.request for line in data.lines]
    histories = _histories(session, prescription)
    covered = _covered_periods(session, prescription, data.patient_id)
    return evaluate_execution(prescription, requests, histories, today, covered)


def _designation(given: LineInput, delivered: Product) -> str:
    substitution = given.request.substitution
    return substitution.delivered_name if substitution else given.designation or delivered.name


def _missing_record(
    prescription: Prescription,
    patient: PatientRecord,
    data: DispensationInput,
    decisions: Sequence[LineDecision],
) -> list[Datum]:
    inputs = {line.request.line_no: line for line in data.lines}
    designations = {
        n: _designation(given, given.request.delivered_product or prescription.line(n).product)
        for n, given in inputs.items()
    }
    return missing_record_data(
        prescription,
        patient,
        patient_address=data.patient_address,
        typed_prescriber=data.prescriber_address,
        bearer=data.bearer,
        lines=recorded_lines(prescription, decisions, designations),
    )


def _bearer_fields(bearer: Bearer | None, regulatory_list: str) -> dict[str, str | None]:
    """The bearer's identity goes to a stupéfiant's entry when it is not the patient."""
    named = bearer is not None and not bearer.is_patient
    if regulatory_list != RegulatoryList.STUPEFIANT.value or not named or bearer is None:
        return {"bearer_name": None, "bearer_address": None}
    return {"bearer_name": bearer.name.strip(), "bearer_address": bearer.address.strip()}


def _refusals(decision: ExecutionDecision) -> list[dict[str, Any]]:
    """The refusals as the problem's ``refusals`` member."""
    return [_plain(r) for r in rule_refusals(decision)]


def rule_refusals(decision: ExecutionDecision) -> list[RuleRefusal]:
    return [
        RuleRefusal(r.code.value, r.line_no, r.message, r.overridable, r.article, r.max_days)
        for r in decision.all_refusals()
    ]


def _upsert_prescription(session: Session, prescription: Prescription, now: datetime) -> None:
    row = session.get(PrescriptionRow, prescription.prescription_id)
    if row is None:
        session.add(PrescriptionRow(**_prescription_values(prescription, now)))
        return
    content = to_json(prescription)
    if row.content != content:
        row.content, row.fetched_at, row.version = content, now, row.version + 1


def _stored_answer(conn: Connection, key: str) -> tuple[str, int, str] | None:
    """The key's (request hash, status, answer), None when the key is new."""
    row = conn.execute(_ANSWER_OF_KEY, {"key": key}).one_or_none()
    return None if row is None else (row.request_hash, row.status_code, row.response)


def _claim_key(
    conn: Connection, key: str, data: DispensationInput, now: datetime
) -> tuple[DispensationResult | None, list[DriverResult]]:
    """Insert the key first: a concurrent request with the same key blocks on the unique index
    (PostgreSQL) or on the writer lock (SQLite) until this transaction ends. A new key costs one
    statement; a key already taken (the other transaction committed) is then read and replayed.

    PostgreSQL: in a pipeline, with the BEGIN psycopg opens the transaction with and what
    :func:`_prescription_for_commit` sends first (a typed copy's insert and the commit's read, or
    the stored copy's locked read), whose answers are given back: one round trip where there were
    two. They run after the claim, so a same-key
    request still waits on the key before anything else; on a replay they are rolled back
    unread."""
    claim = {
        "key": key,
        "scope": SCOPE,
        "request_hash": data.fingerprint,
        "status_code": 0,
        "response": "{}",
        "created_at": now,
    }
    steps: list[tuple[ClauseElement, Mapping[str, Any]]] = [(_CLAIM_KEY[conn.dialect.name], claim)]
    if conn.dialect.name == "postgresql":
        if data.paper is not None:
            steps += [_typed_copy(conn, data.paper, now), _commit_read(data.patient_id, data.paper)]
        else:
            steps.append(_held_copy(data))
    claimed, *sent = execute_together(conn, steps)
    if claimed.rowcount == 1:
        return None, sent
    stored = _stored_answer(conn, key)
    # Taken by a committed transaction (keys are never deleted): its row is visible now.
    assert stored is not None
    return _replayed(stored, data.fingerprint), []


def _held_copy(data: DispensationInput) -> tuple[Select[Any], Mapping[str, Any]]:
    """The stored copy's read, its row locked (PostgreSQL): one commit per prescription."""
    return _PRESCRIPTION_CONTENT, {"prescription_id": data.prescription_id}


def _typed_copy(conn: Connection, paper: Prescription, now: datetime) -> tuple[Insert, Any]:
    """The typed copy's insert, kept when the prescription is new (see :func:`_insert_new`)."""
    return _NEW_PRESCRIPTION[conn.dialect.name], _prescription_values(paper, now)


def _replayed(stored: tuple[str, int, str], fingerprint: str) -> DispensationResult:
    request_hash, status_code, response = stored
    if request_hash != fingerprint:
        raise IdempotencyKeyReused()
    return DispensationResult(status_code, json.loads(response), replayed=True)


def _national_history(prescription: Prescription, line_no: int) -> LineHistory:
    days, _, deliveries = prescription.extra.get(f"national:{line_no}", "0:0").partition(":")
    return LineHistory(days_dispensed=int(days), deliveries=int(deliveries or 0))


def _histories(session: Session, prescription: Prescription) -> dict[int, LineHistory]:
    return _merged_histories(prescription, _past_lines(session, prescription.prescription_id))


def _merged_histories(
    prescription: Prescription, past: Sequence[_PastLine]
) -> dict[int, LineHistory]:
    """This pharmacy's history, raised to what the national base knows (other pharmacies)."""
    local = _local_histories(past)
    merged: dict[int, LineHistory] = {}
    for line in prescription.lines:
        mine = local.get(line.line_no, LineHistory())
        national = _national_history(prescription, line.line_no)
        merged[line.line_no] = replace(
            mine,
            days_dispensed=max(mine.days_dispensed, national.days_dispensed),
            deliveries=max(mine.deliveries, national.deliveries),
        )
    return merged


def _local_histories(past: Sequence[_PastLine]) -> dict[int, LineHistory]:
    histories: dict[int, LineHistory] = {}
    for row in past:
        before = histories.get(row.line_no, LineHistory())
        period = (
            Period(row.period_start, row.period_end)
            if row.period_start and row.period_end
            else before.last_period
        )
        histories[row.line_no] = LineHistory(
            days_dispensed=before.days_dispensed + row.days,
            deliveries=before.deliveries + (1 if row.days > 0 else 0),
            last_period=period,
            exceptional_days=before.exceptional_days + (row.days if row.exceptional else 0),
        )
    return histories


def _covered_periods(
    session: Session | Connection, prescription: Prescription, patient_id: str
) -> dict[int, list[Period]]:
    """Controlled lines: periods this patient already has covered for the same substance by
    other prescriptions (chevauchement)."""
    covered: dict[int, list[Period]] = {}
    for line_no, substance in _controlled_substances(prescription).items():
        rows = session.execute(
            _COVERED,
            {
                "patient_id": patient_id,
                "prescription_id": prescription.prescription_id,
                "molecule": substance,
            },
        ).all()
        covered[line_no] = [Period(s, e) for s, e in rows if s and e]
    return covered


def _controlled_substances(prescription: Prescription) -> dict[int, str]:
    """The substance of each controlled line, by line number (the ``molecule`` the lines store)."""
    return {
        line.line_no: line.product.molecule or line.product.code
        for line in prescription.lines
        if line.regulatory_list.is_controlled
    }


def _line_values(
    dispensation_id: str,
    prescription: Prescription,
    given: LineInput,
    decision: LineDecision,
    seq: int,
    catalog: ProductCatalog,
) -> dict[str, Any]:
    request = given.request
    line = prescription.line(decision.line_no)
    delivered = request.delivered_product or line.product
    pack = request.pack or (catalog.pack(given.cip13) if given.cip13 else None)
    boxes = given.boxes
    if boxes is None:
        boxes = _boxes(prescription, line, pack, decision.units)
    substitution = request.substitution
    override = decision.overridden[0] if decision.overridden else None
    reason = request.not_dispensed_reason or request.modification_reason
    if request.exceptional:
        reason = EXCEPTIONAL_REASON
    return {
        "dispensation_id": dispensation_id,
        "prescription_id": prescription.prescription_id,
        "line_no": line.line_no,
        "seq": seq,
        "intervention": request.kind.value,
        "days": decision.days,
        "units": decision.units,
        "boxes": boxes,
        "delivered_cip13": (substitution.delivered_cip13 if substitution else given.cip13)
        if decision.units
        else None,
        "designation": _designation(given, delivered)[:200],
        "regulatory_list": line.regulatory_list.value,
        "completeness": decision.completeness.value
        if decision.completeness and decision.units
        else None,
        "exceptional": request.exceptional,
        "unit_dispensing": request.unit_dispensing,
        "lot": request.lots[0] if request.lots else None,
        "substituted_form": substitution.delivered_form if substitution else None,
        "reason": reason,
        "prescriber_agreement_on": request.prescriber_agreement_on,
        "override_code": override.code.value if override else None,
        "override_reason": override.reason if override else None,
        "override_rpps": override.pharmacist_rpps if override else None,
        "mentions": ";".join(decision.mentions) or None,
        "period_start": decision.period.start if decision.period else None,
        "period_end": decision.period.end if decision.period else None,
        "molecule": line.product.molecule or line.product.code,
        "ordonnancier_number": None,
    }


def _boxes(
    prescription: Prescription, line: PrescriptionLine, pack: Pack | None, units: int
) -> int:
    if units == 0:
        return 0
    if pack is not None:
        return math.ceil(units / pack.units)
    if prescription.extra.get(f"unit:{line.line_no}") == "box":
        return units  # e-prescription line without a known pack size: units are boxes
    return 1


def _reportable(prescription: Prescription, data: DispensationInput) -> bool:
    """An execution goes to the national base for e-prescriptions, typed in degraded mode too."""
    if prescription.source is PrescriptionSource.EPRESCRIPTION:
        return True
    return bool(data.paper and data.paper.extra.get("eprescription") == "true")


def _execution_report(
    dispensation_id: str,
    prescription: Prescription,
    lines: Sequence[Mapping[str, Any]],
    past: Sequence[_PastLine],
    ctx: ProfessionalContext,
    now: datetime,
    finess: str | None,
) -> dict[str, Any]:
    """The outbox message's payload: the execution as the national base receives it."""
    return {
        "prescription_id": prescription.prescription_id,
        "idempotency_key": f"lgo-exec-{dispensation_id}",
        "dispensed_at": now.isoformat(),
        "pharmacist_rpps": ctx.rpps,
        "pharmacy_finess": finess,
        "lines": [
            {
                "line_no": r["line_no"],
                "line_id": prescription.extra.get(f"line:{r['line_no']}"),
                "intervention": INTERVENTIONS_TO_NATIONAL[
                    InterventionKind(r["intervention"])
                ].value,
                "cip13": r["delivered_cip13"],
                "quantity": r["boxes"],
                "complete": (r["completeness"] or "").endswith("C"),
                "renewal_number": _renewal_number(prescription, r, past),
                "reason": r["reason"],
                "prescriber_agreement_date": (
                    r["prescriber_agreement_on"].isoformat()
                    if r["prescriber_agreement_on"]
                    else None
                ),
            }
            for r in lines
        ],
    }


def _enqueue(
    conn: Connection, dispensation_id: str, report: Mapping[str, Any], now: datetime
) -> int:
    """Queue the execution report (same transaction); returns the message id."""
    message = {
        "created_at": now,
        "kind": OUTBOX_EXECUTION,
        "dispensation_id": dispensation_id,
        "idempotency_key": report["idempotency_key"],
        "payload": json.dumps(report),
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
    }
    ((message_id,),) = execute_on_driver(conn, _INSERT_MESSAGE, message).rows
    return int(message_id)


def _renewal_number(
    prescription: Prescription, line: Mapping[str, Any], past: Sequence[_PastLine]
) -> int:
    """Which dispensation of the line this is for the national base (0 = the first, n = the n-th
    renewal); an exceptional dispensation is numbered after the prescribed renewals (1st
    exceptional = renewals + 1), as the national base expects."""
    earlier = [p for p in past if p.line_no == line["line_no"]]
    if line["exceptional"]:
        exceptional = sum(1 for p in earlier if p.exceptional)
        return prescription.line(line["line_no"]).renewals + 1 + exceptional
    return _cycle_number(prescription, line["line_no"], earlier)


def _cycle_number(prescription: Prescription, line_no: int, earlier: Sequence[_PastLine]) -> int:
    """The treatment periods already handed over on the line before this one (here, or elsewhere
    as the national base said at loading): partial deliveries of one period share its number, and
    a line not dispensed hands over nothing (counting rows would call the next delivery a
    renewal, which the national base refuses)."""
    duration = prescription.line(line_no).duration_days
    local = sum(p.days for p in earlier if not p.exceptional and p.units > 0)
    before = max(local, _national_history(prescription, line_no).days_dispensed)
    return before // duration if duration > 0 else 0


def _record(session: Session, dispensation_id: str) -> DispensationRecord:
    dispensations = DispensationRow.__table__
    row = session.execute(
        select(dispensations).where(DispensationRow.id == dispensation_id)
    ).one_or_none()
    assert row is not None
    lines = session.execute(
        select(DispensationLineRow.__table__)
        .where(DispensationLineRow.dispensation_id == dispensation_id)
        .order_by(DispensationLineRow.line_no)
    ).all()
    outbox = session.execute(
        select(OutboxMessage.id, OutboxMessage.status).where(
            OutboxMessage.dispensation_id == dispensation_id
        )
    ).all()
    return _record_of(
        dict(row._mapping),
        [dict(ln._mapping) for ln in lines],
        [OutboxState(i, s) for i, s in outbox],
    )


def _record_of(
    row: Mapping[str, Any], lines: Sequence[Mapping[str, Any]], outbox: list[OutboxState]
) -> DispensationRecord:
    """The record from the dispensations / dispensation_lines values, as read."""
    answer = _answer_of(row, lines, outbox)
    return DispensationRecord(
        **{
            **answer,
            "professional": ActingProfessional(**answer["professional"]),
            "lines": [_recorded_line(line) for line in answer["lines"]],
            "outbox": outbox,
        }
    )


def _recorded_line(answered: Mapping[str, Any]) -> RecordedLine:
    override = answered["override"]
    return RecordedLine(
        **{**answered, "override": RecordedOverride(**override) if override else None}
    )


def _answer_of(
    row: Mapping[str, Any], lines: Sequence[Mapping[str, Any]], outbox: list[OutboxState]
) -> dict[str, Any]:
    """The commit's JSON body from the dispensations / dispensation_lines values (as just
    written: the commit answers without reading back): what ``_plain`` makes of
    :class:`DispensationRecord`, built without the dataclasses (same keys in the same order, same
    values), since the commit builds it on every dispensation."""
    return {
        "id": row["id"],
        "created_at": row["created_at"].astimezone(UTC).isoformat(),
        "business_date": row["business_date"].isoformat(),
        "patient_id": row["patient_id"],
        "prescription_id": row["prescription_id"],
        "prescription_source": row["prescription_source"],
        "sync_status": row["sync_status"],
        "degraded": row["degraded"],
        "professional": {
            "national_id": row["pharmacist_national_id"],
            "rpps": row["pharmacist_rpps"],
            "structure_id": row["structure_id"],
            "session_kind": row["session_kind"],
            "session_id": row["session_id"],
            "counter": row["counter_name"],
        },
        "lines": [_answered_line(line) for line in lines],
        "outbox": [{"id": message.id, "status": message.status} for message in outbox],
    }


def _answered_line(ln: Mapping[str, Any]) -> dict[str, Any]:
    """One line of :func:`_answer_of` (a :class:`RecordedLine`'s fields, in order)."""
    override = (
        {
            "code": ln["override_code"],
            "reason": ln["override_reason"],
            "pharmacist_rpps": ln["override_rpps"],
        }
        if ln["override_code"]
        else None
    )
    return {
        "line_no": ln["line_no"],
        "intervention": ln["intervention"],
        "days": ln["days"],
        "units": ln["units"],
        "boxes": ln["boxes"],
        "delivered_cip13": ln["delivered_cip13"],
        "designation": ln["designation"],
        "regulatory_list": ln["regulatory_list"],
        "completeness": ln["completeness"],
        "exceptional": ln["exceptional"],
        "unit_dispensing": ln["unit_dispensing"],
        "lot": ln["lot"],
        "substituted_form": ln["substituted_form"],
        "reason": ln["reason"],
        "override": override,
        "mentions": ln["mentions"].split(";") if ln["mentions"] else [],
        "period_start": ln["period_start"].isoformat() if ln["period_start"] else None,
        "period_end": ln["period_end"].isoformat() if ln["period_end"] else None,
        "ordonnancier_number": ln["ordonnancier_number"],
    }
