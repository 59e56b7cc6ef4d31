"""Documents out of the pharmacy: produce CDA documents, queue and deliver them (DMP, MSSanté).

Use cases
- :meth:`DocumentService.dispensing_summary` after a dispensation, :meth:`vaccination_note` after a
  vaccination: the patient's INS must be qualified (identity guard) **before** anything is built,
  stored or sent; the CDA is built and schema-validated; the document and its deliveries are
  written in **one** transaction; nothing leaves the pharmacy inside it.
- :meth:`DocumentService.send`: queue one more delivery (DMP, or MSSanté to a recipient).
- :class:`DmpConsultation`: the patient's DMP list (ITI-18) and one document opened (ITI-43),
  rendered as sanitised HTML.

Delivery (store-and-forward)
The shared ``outbox_messages`` worker (dispensing part) delivers execution reports only and has no
per-kind handler registry yet, so documents use their own queue table, ``document_deliveries``,
with the same guarantees: claim with ``FOR UPDATE SKIP LOCKED`` (PostgreSQL) / ``BEGIN IMMEDIATE``
(SQLite) and a lease, delivery outside any transaction with the same idempotency key on every
attempt, exponential backoff with jitter on transient failures (outage, timeout, 5xx, SMTP 4xx),
``failed`` with the reason on permanent ones (patient's block, no DMP, refused recipient).
Handlers are registered per message kind (``dmp.provide``, ``mss.send``) with the signature
:data:`DeliveryHandler`, ready to move onto the shared outbox once it dispatches on ``kind``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Final, Literal, Protocol, cast

from sqlalchemy import CursorResult, or_, select, update
from sqlalchemy.exc import IntegrityError

from lgo.core.errors import Conflict, InvalidInput, LgoError, Unavailable
from lgo.core.events import EventBus
from lgo.core.logs import get_logger
from lgo.core.safe_xml import parse_xml
from lgo.documents.cda import NS, build_document, read_document
from lgo.documents.conformance import DocumentChecker, rule_id
from lgo.documents.errors import (
    CdaNonConformantError,
    DocumentInputError,
    DocumentNotFoundError,
    InsNotQualifiedError,
)
from lgo.documents.models import (
    Author,
    CdaDocument,
    DispensedItem,
    DispensingSummary,
    DocumentBody,
    DocumentHeader,
    Organisation,
    PatientRecord,
    TrodResult,
    Vaccination,
    VaccinationNote,
)
from lgo.documents.render import render_html
from lgo.documents.validate import MAX_CDA_BYTES
from lgo.domain.identity import IdentityRuleError, Ins, Traits
from lgo.national.dmp import DmpDocumentEntry, DmpDocumentUnknown, DmpGateway
from lgo.national.errors import MalformedResponse, ServiceUnavailable
from lgo.national.mss import Attachment, MssGateway, MssMessage
from lgo.services.identity import IdentityNotQualified
from lgo.services.worker import BackgroundWorker, WorkerPolicy, backoff_delay
from lgo.store.db import Database
from lgo.store.models.dispensing import DispensationLineRow, DispensationRow
from lgo.store.models.documents import DocumentDelivery, DocumentRow

log = get_logger(__name__)

KIND_DMP: Final = "dmp.provide"
KIND_MSS: Final = "mss.send"
PENDING, PROCESSING, DELIVERED, FAILED = "pending", "processing", "delivered", "failed"
Channel = Literal["dmp", "mss"]


class PatientDirectory(Protocol):
    """What documents need from the identity part (``lgo.services.identity.IdentityService``)."""

    def get(self, patient_id: str) -> Any: ...  # PatientView

    def require_qualified_ins(self, patient_id: str) -> Ins: ...


class DocumentAlreadyProduced(Conflict):
    slug = "document-already-produced"
    title = "Un document a déjà été produit pour cette dispensation"


class RecipientRequired(DocumentInputError):
    slug = "mss-recipient-required"
    title = "Adresse MSSanté du destinataire requise"


class MssNotConfigured(Unavailable):
    slug = "mss-not-configured"
    title = "MSSanté non configurée : certificat de la pharmacie absent"


class MssRecipientInvalid(InvalidInput):
    slug = "mss-recipient-invalid"
    title = "Adresse hors de la messagerie sécurisée de santé (MSSanté)"


# MSSanté carries mail inside its trust space only: every operator's domain is under mssante.fr.
_MSS_ADDRESS: Final = re.compile(r"[^@\s]+@([a-z0-9-]+\.)*mssante\.fr", re.IGNORECASE)


@dataclass(frozen=True)
class DeliveryJob:
    delivery_id: int
    kind: str
    key: str
    attempts: int
    document: CdaDocument
    payload: dict[str, Any]


# A handler delivers one job; it returns a JSON-able receipt, raises ServiceUnavailable (or
# MalformedResponse) for "try again later" and any other LgoError for "never as it is".
DeliveryHandler = Callable[[DeliveryJob], dict[str, Any]]


def utcnow() -> datetime:
    return datetime.now(UTC)


# --- producing documents ------------------------------------------------------------------------


def author_from_session(identity: Any) -> Author:
    """An :class:`Author` from a ``lgo.services.sessions.ProfessionalIdentity``."""
    return Author(
        national_id=identity.national_id,
        family_name=identity.family_name,
        given_name=identity.given_name,
        profession_code=identity.profession_code,
        profession_label=identity.profession_label or "Pharmacien",
    )


class DocumentService:
    def __init__(
        self,
        db: Database,
        patients: PatientDirectory,
        organisation: Organisation,
        *,
        events: EventBus | None = None,
        clock: Callable[[], datetime] = utcnow,
        on_queued: Callable[[], None] | None = None,
        checker: DocumentChecker | None = None,
        mss_configured: bool = True,
    ) -> None:
        # mss_configured: False when the pharmacy has no MSSanté certificate (the composition root
        # says so); a test that registers its own MSSanté handler leaves it True.
        self._db = db
        self._mss_configured = mss_configured
        self._checker = checker or DocumentChecker()
        self._patients = patients
        self._organisation = organisation
        self._events = events
        self._clock = clock
        self.on_queued = on_queued

    # use cases ----------------------------------------------------------------------------------

    def dispensing_summary(
        self,
        dispensation_id: str,
        author: Author,
        *,
        to_dmp: bool = True,
        mss_recipient: str | None = None,
    ) -> DocumentView:
        if mss_recipient:
            self.require_mss(mss_recipient)
        patient_id, summary = self._load_dispensation(dispensation_id)
        return self._produce(patient_id, summary, author, to_dmp, mss_recipient, dispensation_id)

    def vaccination_note(
        self,
        patient_id: str,
        vaccinations: Iterable[Vaccination],
        author: Author,
        *,
        to_dmp: bool = True,
        mss_recipient: str | None = None,
    ) -> DocumentView:
        if mss_recipient:
            self.require_mss(mss_recipient)
        body = VaccinationNote(tuple(vaccinations))
        return self._produce(patient_id, body, author, to_dmp, mss_recipient, None)

    def trod_result(
        self,
        patient_id: str,
        result: TrodResult,
        author: Author,
        *,
        to_dmp: bool = True,
        mss_recipient: str | None = None,
    ) -> DocumentView:
        """The BIO-TROD document of a rapid test done at the counter, queued like the others."""
        if mss_recipient:
            self.require_mss(mss_recipient)
        return self._produce(patient_id, result, author, to_dmp, mss_recipient, None)

    def send(
        self,
        document_id: str,
        channel: Channel,
        *,
        author_rpps: str,
        recipient: str | None = None,
    ) -> DocumentView:
        """Queue one more delivery of a stored document (idempotent per channel and recipient)."""
        if channel == "mss":
            self.require_mss(recipient)
        with self._db.uow() as uow:
            row = uow.session.get(DocumentRow, document_id)
            if row is None:
                raise DocumentNotFoundError()
            uow.session.add(self._delivery(document_id, channel, author_rpps, recipient))
            # UNIQUE(idempotency_key): a second click (or counter) adds nothing.
            with contextlib.suppress(IntegrityError):
                uow.commit()
        self._queued(document_id)
        return self.get(document_id)

    def require_mss(self, recipient: str | None = None) -> None:
        """Before anything is written: MSSanté configured, and the recipient inside it (the one
        check of every MSSanté send: documents, vaccination notes, rapid tests)."""
        if not self._mss_configured:
            raise MssNotConfigured()
        if recipient is not None and not _MSS_ADDRESS.fullmatch(recipient.strip()):
            raise MssRecipientInvalid(
                "Une adresse MSSanté se termine par « .mssante.fr » (ex. : "
                "prenom.nom@medecin.mssante.fr) : vérifier l'adresse du destinataire."
            )

    def dispensation_author(self, dispensation_id: str) -> str:
        """The national id of the pharmacist who made the dispensation."""
        with self._db.uow(readonly=True) as uow:
            row = uow.session.get(DispensationRow, dispensation_id)
            if row is None:
                raise DocumentNotFoundError("Dispensation introuvable.")
            return row.pharmacist_national_id

    def unfed_dispensations(self, since: datetime, limit: int = 500) -> list[tuple[str, str]]:
        """Dispensations committed since ``since`` that have no document yet, oldest first, as
        (dispensation id, pharmacist's national id). One anti-join on indexed columns
        (``dispensations.created_at``, ``UNIQUE documents.dispensation_id``)."""
        with self._db.uow(readonly=True) as uow:
            rows = uow.session.execute(
                select(DispensationRow.id, DispensationRow.pharmacist_national_id)
                .outerjoin(DocumentRow, DocumentRow.dispensation_id == DispensationRow.id)
                .where(DispensationRow.created_at >= since, DocumentRow.id.is_(None))
                .order_by(DispensationRow.created_at)
                .limit(limit)
            ).all()
            return [(row[0], row[1]) for row in rows]

    def get(self, document_id: str) -> DocumentView:
        with self._db.uow(readonly=True) as uow:
            row = uow.session.get(DocumentRow, document_id)
            if row is None:
                raise DocumentNotFoundError()
            deliveries = (
                uow.session.execute(
                    select(DocumentDelivery)
                    .where(DocumentDelivery.document_id == document_id)
                    .order_by(DocumentDelivery.id)
                )
                .scalars()
                .all()
            )
            return _document_view(row, deliveries)

    def for_patient(self, patient_id: str) -> list[DocumentView]:
        with self._db.uow(readonly=True) as uow:
            rows = (
                uow.session.execute(
                    select(DocumentRow)
                    .where(DocumentRow.patient_id == patient_id)
                    .order_by(DocumentRow.created_at.desc())
                )
                .scalars()
                .all()
            )
            ids = [row.id for row in rows]
            deliveries = (
                uow.session.execute(
                    select(DocumentDelivery)
                    .where(DocumentDelivery.document_id.in_(ids))
                    .order_by(DocumentDelivery.id)
                )
                .scalars()
                .all()
                if ids
                else []
            )
            by_document: dict[str, list[DocumentDelivery]] = {}
            for delivery in deliveries:
                by_document.setdefault(delivery.document_id, []).append(delivery)
            return [_document_view(row, by_document.get(row.id, [])) for row in rows]

    def content(self, document_id: str) -> bytes:
        with self._db.uow(readonly=True) as uow:
            row = uow.session.get(DocumentRow, document_id)
            if row is None:
                raise DocumentNotFoundError()
            return bytes(row.content)

    def html(self, document_id: str) -> str:
        return render_html(self.content(document_id))

    # internals ----------------------------------------------------------------------------------

    def _produce(
        self,
        patient_id: str,
        body: DocumentBody,
        author: Author,
        to_dmp: bool,
        mss_recipient: str | None,
        dispensation_id: str | None,
    ) -> DocumentView:
        ins = self._guard(patient_id)
        record = self._record(patient_id, ins)
        header = DocumentHeader(record, author, self._organisation, self._clock())
        document = build_document(header, body)
        self._require_conformant(document, patient_id)
        author_rpps = author.national_id[1:]
        row = DocumentRow(
            id=document.document_id,
            kind=document.kind.value,
            title=document.title,
            patient_id=patient_id,
            dispensation_id=dispensation_id,
            author_rpps=author_rpps,
            created_at=document.effective_time,
            content=document.xml,
        )
        deliveries = []
        if to_dmp:
            deliveries.append(self._delivery(document.document_id, "dmp", author_rpps, None))
        if mss_recipient:
            deliveries.append(
                self._delivery(document.document_id, "mss", author_rpps, mss_recipient)
            )
        try:
            with self._db.uow() as uow:
                uow.session.add(row)
                uow.session.flush()  # the document before its deliveries (foreign key)
                uow.session.add_all(deliveries)
                uow.commit()
        except IntegrityError:  # UNIQUE(dispensation_id): one summary per dispensation
            raise DocumentAlreadyProduced() from None
        log.info(
            "document_produced",
            document_id=document.document_id,
            kind=document.kind.value,
            deliveries=len(deliveries),
        )
        self._queued(document.document_id)
        return self.get(document.document_id)

    def _require_conformant(self, document: CdaDocument, patient_id: str) -> None:
        """Validation before sending (schema, and the volet schematron when the kit is set):
        a document that fails is neither stored nor queued; the counter gets the failed rules
        (problem+json) and a ``document.rejected`` event (rule ids only, no document content)."""
        try:
            self._checker.require(document.kind, document.xml)
        except CdaNonConformantError as exc:
            rules = [rule_id(str(m)) for m in exc.extra.get("failed_rules", [])]
            log.warning("document_not_conformant", kind=document.kind.value, rules=rules)
            if self._events is not None:
                self._events.publish(
                    "document.rejected",
                    {
                        "kind": document.kind.value,
                        "patient_id": patient_id,
                        "volet": exc.extra.get("volet"),
                        "rules": rules,
                    },
                )
            raise

    def _guard(self, patient_id: str) -> Ins:
        """The identity guard, first: an unqualified identity stops here, before anything is
        built, stored or sent."""
        try:
            return self._patients.require_qualified_ins(patient_id)
        except IdentityNotQualified as exc:  # includes "on the work list"
            raise InsNotQualifiedError(identity_problem=exc.slug) from None

    def _record(self, patient_id: str, ins: Ins) -> PatientRecord:
        view = self._patients.get(patient_id)
        try:
            traits = Traits.of(
                view.birth_name, view.given_names, view.sex or "", view.birth_date, view.birthplace
            )
        except IdentityRuleError as exc:
            raise DocumentInputError(str(exc)) from None
        return PatientRecord(
            ins=ins, traits=traits, status=view.status, on_work_list=view.on_work_list
        )

    def _delivery(
        self, document_id: str, channel: Channel, author_rpps: str, recipient: str | None
    ) -> DocumentDelivery:
        now = self._clock()
        if channel == "mss":
            if not recipient or "@" not in recipient:
                raise RecipientRequired()
            # The address is hashed: the key stays short (column size) and carries no name.
            digest = hashlib.sha256(recipient.strip().lower().encode()).hexdigest()[:32]
            kind, key = KIND_MSS, f"mss:{document_id}:{digest}"
            payload = {"author_rpps": author_rpps, "recipient": recipient}
        else:
            kind, key = KIND_DMP, f"dmp:{document_id}"
            payload = {"author_rpps": author_rpps}
        return DocumentDelivery(
            document_id=document_id,
            kind=kind,
            idempotency_key=key,
            payload=json.dumps(payload),
            status=PENDING,
            attempts=0,
            created_at=now,
            next_attempt_at=now,
        )

    def _load_dispensation(self, dispensation_id: str) -> tuple[str, DispensingSummary]:
        with self._db.uow(readonly=True) as uow:
            row = uow.session.get(DispensationRow, dispensation_id)
            if row is None:
                raise DocumentNotFoundError("Dispensation introuvable.")
            lines = (
                uow.session.execute(
                    select(DispensationLineRow)
                    .where(DispensationLineRow.dispensation_id == dispensation_id)
                    .order_by(DispensationLineRow.line_no)
                )
                .scalars()
                .all()
            )
            items = tuple(
                DispensedItem(line.delivered_cip13 or "", line.designation, Decimal(line.boxes))
                for line in lines
                if line.boxes > 0 and line.delivered_cip13
            )
            summary = DispensingSummary(dispensation_id, row.created_at, items)
            return row.patient_id, summary

    def _queued(self, document_id: str) -> None:
        if self._events is not None:
            self._events.publish("document.queued", {"id": document_id})
        if self.on_queued is not None:
            self.on_queued()


@dataclass(frozen=True)
class DeliveryView:
    """One delivery of a document (times in ISO 8601, UTC)."""

    id: int
    kind: str  # dmp.provide, mss.send
    status: str  # pending, processing, delivered, failed
    attempts: int
    recipient: str | None  # the MSSanté address
    last_error: str | None
    next_attempt_at: str
    delivered_at: str | None


@dataclass(frozen=True)
class QueuedDelivery(DeliveryView):
    document_id: str


@dataclass(frozen=True)
class DocumentView:
    """A document produced here and the state of its deliveries."""

    id: str
    kind: str  # dispensing-summary, vaccination-note, bio-trod
    title: str
    patient_id: str
    dispensation_id: str | None
    author_rpps: str
    created_at: str
    size: int  # bytes of the CDA
    deliveries: tuple[DeliveryView, ...]


@dataclass(frozen=True)
class DeliveryListing:
    degraded: bool  # a delivery service is unreachable
    deliveries: tuple[QueuedDelivery, ...]


def _document_view(row: DocumentRow, deliveries: Iterable[DocumentDelivery]) -> DocumentView:
    return DocumentView(
        id=row.id,
        kind=row.kind,
        title=row.title,
        patient_id=row.patient_id,
        dispensation_id=row.dispensation_id,
        author_rpps=row.author_rpps,
        created_at=row.created_at.isoformat(),
        size=len(row.content),
        deliveries=tuple(DeliveryView(**_delivery_fields(d)) for d in deliveries),
    )


def _delivery_fields(row: DocumentDelivery) -> dict[str, Any]:
    payload = json.loads(row.payload)
    return {
        "id": row.id,
        "kind": row.kind,
        "status": row.status,
        "attempts": row.attempts,
        "recipient": payload.get("recipient"),
        "last_error": row.last_error,
        "next_attempt_at": row.next_attempt_at.isoformat(),
        "delivered_at": row.delivered_at.isoformat() if row.delivered_at else None,
    }


# --- handlers -------------------------------------------------------------------------------------


def dmp_handler(dmp: DmpGateway) -> DeliveryHandler:
    def deliver(job: DeliveryJob) -> dict[str, Any]:
        receipt = dmp.provide(job.document, author_rpps=job.payload["author_rpps"])
        return {
            "unique_id": receipt.unique_id,
            "submission_set_id": receipt.submission_set_id,
            "already_stored": receipt.already_stored,
        }

    return deliver


def mss_handler(mss: MssGateway) -> DeliveryHandler:
    def deliver(job: DeliveryJob) -> dict[str, Any]:
        document = job.document
        message = MssMessage(
            message_id=f"lgo-{job.delivery_id}-{uuid.uuid5(uuid.NAMESPACE_URL, job.key).hex}",
            recipient=job.payload["recipient"],
            subject=f"{document.title} - {document.organisation.name}",
            body=(
                f"Bonjour,\n\nVeuillez trouver ci-joint le document « {document.title} » "
                f"produit par {document.organisation.name}.\n\nMessage envoyé par messagerie "
                "sécurisée de santé (MSSanté)."
            ),
            attachments=(Attachment(f"{document.kind.value}.xml", document.xml),),
        )
        receipt = mss.send(message, author_rpps=job.payload["author_rpps"])
        return {"message_id": receipt.message_id, "code": receipt.code}

    return deliver


# --- delivery worker ------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryPolicy(WorkerPolicy):
    """Documents wait longer between tries and hold a longer lease (uploads of several MB)."""

    base_delay_s: float = 5.0
    max_delay_s: float = 600.0
    lease_s: float = 120.0


@dataclass(frozen=True)
class _Claimed:
    id: int
    kind: str
    key: str
    payload: str
    attempts: int
    document_id: str


class DeliveryWorker(BackgroundWorker):
    """Delivers ``document_deliveries`` rows through the handler registered for their kind."""

    name = "documents"

    def __init__(
        self,
        db: Database,
        handlers: dict[str, DeliveryHandler],
        *,
        events: EventBus | None = None,
        policy: DeliveryPolicy | None = None,
        clock: Callable[[], datetime] = utcnow,
        rng: random.Random | None = None,
        worker_id: str | None = None,
    ) -> None:
        self.policy = policy or DeliveryPolicy()
        super().__init__(self.policy.idle_poll_s)
        self.db = db
        self.handlers = dict(handlers)
        self.events = events
        self.clock = clock
        self.rng = rng or random.Random()
        self.worker_id = worker_id or f"documents-{uuid.uuid4().hex[:8]}"

    def register(self, kind: str, handler: DeliveryHandler) -> None:
        self.handlers[kind] = handler

    # one pass -----------------------------------------------------------------------------------

    def run_once(self) -> int:
        claimed = self.claim()
        for job in claimed:
            self._deliver(job)
        return len(claimed)

    def claim(self) -> list[_Claimed]:
        now = self.clock()
        due = or_(
            (DocumentDelivery.status == PENDING) & (DocumentDelivery.next_attempt_at <= now),
            (DocumentDelivery.status == PROCESSING) & (DocumentDelivery.claimed_until < now),
        )
        with self.db.uow() as uow:
            rows = (
                uow.session.execute(
                    select(DocumentDelivery)
                    .where(due, DocumentDelivery.kind.in_(list(self.handlers)))
                    .order_by(DocumentDelivery.id)
                    .limit(self.policy.batch)
                    .with_for_update(skip_locked=True)
                )
                .scalars()
                .all()
            )
            claimed = []
            for row in rows:
                row.status, row.claimed_by = PROCESSING, self.worker_id
                row.claimed_until = now + timedelta(seconds=self.policy.lease_s)
                row.attempts += 1
                claimed.append(
                    _Claimed(
                        row.id,
                        row.kind,
                        row.idempotency_key,
                        row.payload,
                        row.attempts,
                        row.document_id,
                    )
                )
            uow.commit()
        return claimed

    def _deliver(self, claimed: _Claimed) -> None:
        try:
            job = self._job(claimed)
            receipt = self.handlers[claimed.kind](job)
        except (ServiceUnavailable, MalformedResponse) as exc:
            self._transient(claimed, exc.slug)
            return
        except LgoError as exc:
            self._failed(claimed, failure_reason(exc))
            return
        except (ValueError, KeyError) as exc:
            self._failed(claimed, f"invalid_message:{type(exc).__name__}")
            return
        self._delivered(claimed, receipt)

    def _job(self, claimed: _Claimed) -> DeliveryJob:
        with self.db.uow(readonly=True) as uow:
            row = uow.session.get(DocumentRow, claimed.document_id)
            if row is None:
                raise DocumentNotFoundError()
            content = bytes(row.content)
        return DeliveryJob(
            claimed.id,
            claimed.kind,
            claimed.key,
            claimed.attempts,
            read_document(content),
            json.loads(claimed.payload),
        )

    # outcomes -----------------------------------------------------------------------------------

    def _delivered(self, claimed: _Claimed, receipt: dict[str, Any]) -> None:
        done = self._set(
            claimed,
            status=DELIVERED,
            delivered_at=self.clock(),
            last_error=None,
            receipt=json.dumps(receipt),
        )
        if not done:
            return  # lease lost to another worker, which delivers the same key
        log.info(
            "document_delivered",
            delivery_id=claimed.id,
            kind=claimed.kind,
            attempts=claimed.attempts,
        )
        self._publish(
            "document.delivered",
            {
                "id": claimed.document_id,
                "delivery_id": claimed.id,
                "kind": claimed.kind,
                "attempts": claimed.attempts,
            },
        )
        if self.degraded:
            self.degraded = False
            self._publish("documents.degraded", {"active": False})

    def _transient(self, claimed: _Claimed, reason: str) -> None:
        if claimed.attempts >= self.policy.max_attempts:
            self._failed(claimed, f"too_many_attempts:{reason}")
            return
        delay = backoff_delay(claimed.attempts, self.policy, self.rng)
        self._set(
            claimed,
            status=PENDING,
            last_error=reason,
            next_attempt_at=self.clock() + timedelta(seconds=delay),
        )
        log.warning(
            "document_delivery_retry",
            delivery_id=claimed.id,
            kind=claimed.kind,
            attempts=claimed.attempts,
            reason=reason,
            delay_s=round(delay, 2),
        )
        if not self.degraded:
            self.degraded = True
            self._publish("documents.degraded", {"active": True, "reason": reason})

    def _failed(self, claimed: _Claimed, reason: str) -> None:
        self._set(claimed, status=FAILED, last_error=reason[:300])
        log.warning(
            "document_delivery_failed", delivery_id=claimed.id, kind=claimed.kind, reason=reason
        )
        self._publish(
            "document.delivery_failed",
            {
                "id": claimed.document_id,
                "delivery_id": claimed.id,
                "kind": claimed.kind,
                "reason": reason,
            },
        )

    def _set(self, claimed: _Claimed, **values: Any) -> int:
        with self.db.uow() as uow:
            result = uow.session.execute(
                update(DocumentDelivery)
                .where(
                    DocumentDelivery.id == claimed.id,
                    DocumentDelivery.status == PROCESSING,
                    DocumentDelivery.claimed_by == self.worker_id,
                )
                .values(claimed_until=None, **values)
            )
            uow.commit()
        return int(cast(CursorResult[Any], result).rowcount)

    def _publish(self, type_: str, data: dict[str, Any]) -> None:
        if self.events is not None:
            self.events.publish(type_, data)


def list_deliveries(
    db: Database, status: str | None = None, limit: int = 200
) -> list[QueuedDelivery]:
    """Deliveries, newest first (``status`` filter): what the counter shows as waiting or failed."""
    stmt = select(DocumentDelivery).order_by(DocumentDelivery.id.desc()).limit(limit)
    if status:
        stmt = stmt.where(DocumentDelivery.status == status)
    with db.uow(readonly=True) as uow:
        rows = uow.session.execute(stmt).scalars().all()
        return [
            QueuedDelivery(**_delivery_fields(row), document_id=row.document_id) for row in rows
        ]


def retry_failed(db: Database, delivery_id: int, now: datetime | None = None) -> None:
    """Put a failed delivery back in the queue (the pharmacist fixed the cause)."""
    with db.uow() as uow:
        row = uow.session.get(DocumentDelivery, delivery_id)
        if row is None:
            raise DocumentNotFoundError("Envoi introuvable.")
        if row.status != FAILED:
            raise Conflict("Seul un envoi en échec peut être relancé.")
        row.status, row.next_attempt_at, row.attempts = PENDING, now or utcnow(), 0
        uow.commit()


class DeliveryQueue:
    """The deliveries as the counter follows them: listed with the queue's state, a failed one
    put back (and the worker woken)."""

    def __init__(self, db: Database, worker: DeliveryWorker) -> None:
        self._db = db
        self._worker = worker

    def list(self, status: str | None = None, limit: int = 200) -> DeliveryListing:
        deliveries = tuple(list_deliveries(self._db, status, limit))
        return DeliveryListing(self._worker.degraded, deliveries)

    def retry(self, delivery_id: int) -> None:
        retry_failed(self._db, delivery_id)
        self._worker.notify()


# --- consulting the DMP ---------------------------------------------------------------------------


class DmpConsultation:
    """Read the patient's DMP: list (ITI-18) and open one document (ITI-43) as sanitised HTML."""

    def __init__(self, patients: PatientDirectory, dmp: DmpGateway) -> None:
        self._patients = patients
        self._dmp = dmp

    def list(self, patient_id: str, *, author_rpps: str) -> list[DmpDocumentEntry]:
        ins = self._patients.require_qualified_ins(patient_id)
        entries = self._dmp.find_documents(ins.matricule, ins.oid.value, author_rpps=author_rpps)
        log.info("dmp_listed", patient_id=patient_id, count=len(entries))
        return entries

    def open(self, patient_id: str, repository_id: str, unique_id: str, *, author_rpps: str) -> str:
        ins = self._patients.require_qualified_ins(patient_id)
        content = self._dmp.retrieve(repository_id, unique_id, author_rpps=author_rpps)
        root = parse_xml(content, max_bytes=MAX_CDA_BYTES)
        patient = root.find("h:recordTarget/h:patientRole/h:id", {"h": NS})
        if patient is None or patient.get("extension") != ins.matricule:
            # Never show a document of another patient, whatever the DMP returned.
            raise DmpDocumentUnknown("dmp: document of another patient")
        return render_html(content)


def failure_reason(exc: LgoError) -> str:
    """A delivery's failure as stored and shown: the slug and, for a document refused for its
    content (CI-SIS kit or the DMP), the ids of the failed rules; never their texts, which may
    quote a coded value of the document (the reason is logged too)."""
    rules = exc.extra.get("failed_rules") or []
    ids = list(dict.fromkeys(rule_id(str(rule)) for rule in rules))
    return f"{exc.slug} (règles : {', '.join(ids)})" if ids else exc.slug
