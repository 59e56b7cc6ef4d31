"""Outbox worker: delivers queued execution reports to the e-prescription service.

- Claim: due rows (pending and due, or processing with an expired lease after a crash) are taken
  with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL (several workers never take the same row) and under
  ``BEGIN IMMEDIATE`` on SQLite (one writer), marked ``processing`` with a lease, committed.
- Deliver outside any transaction, with the message's idempotency key, the same on every attempt:
  a crash after the remote side recorded the execution re-sends it and the remote replays.
- Transient failures (service down, timeout, 5xx, unreadable answer) reschedule with exponential
  backoff and jitter and put the worker in degraded mode (``outbox.degraded`` event), left when a
  delivery succeeds again. Permanent refusals (poison messages) go to ``failed`` with the reason.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, cast

from pydantic import ValidationError
from sqlalchemy import CursorResult, or_, select, update

from lgo.core.errors import LgoError
from lgo.core.events import EventBus
from lgo.core.logs import get_logger
from lgo.national import eprescription as ep
from lgo.national.errors import MalformedResponse, ServiceUnavailable
from lgo.services.dispensing_errors import OutboxMessageNotFound, OutboxRetryRefused
from lgo.services.faults import fault_point
from lgo.services.fhir_export import QualifiedInsProvider
from lgo.services.worker import BackgroundWorker, WorkerPolicy, backoff_delay
from lgo.store.columns import utcnow
from lgo.store.db import Database
from lgo.store.models.dispensing import DispensationRow, OutboxMessage

log = get_logger(__name__)

PENDING, PROCESSING, DELIVERED, FAILED = "pending", "processing", "delivered", "failed"
# The only kind this worker delivers; other kinds in the table are left to their own handlers.
EXECUTION_KIND = "eprescription.execution"


class ExecutionSender(Protocol):
    def fetch(self, prescription_id: str, *, author_rpps: str) -> ep.PrescriptionRecord: ...

    def record_execution(self, report: ep.ExecutionReport) -> ep.ExecutionReceipt: ...


@dataclass(frozen=True)
class OutboxPolicy(WorkerPolicy):
    """The e-prescription outbox keeps the shared defaults (short reports, retried soon)."""


class PermanentFailure(Exception):
    """The message can never be delivered as it is (poison)."""


@dataclass(frozen=True)
class Claimed:
    id: int
    key: str
    payload: str
    attempts: int
    dispensation_id: str | None


class OutboxWorker(BackgroundWorker):
    name = "outbox"

    def __init__(
        self,
        db: Database,
        events: EventBus,
        sender: ExecutionSender | None,
        *,
        policy: OutboxPolicy | None = None,
        clock: Callable[[], datetime] = utcnow,
        rng: random.Random | None = None,
        worker_id: str | None = None,
        identity: QualifiedInsProvider | None = None,
    ) -> None:
        self.policy = policy or OutboxPolicy()
        super().__init__(self.policy.idle_poll_s)
        self.db = db
        self.identity = identity
        self.events = events
        self.sender = sender
        self.clock = clock
        self.rng = rng or random.Random()
        self.worker_id = worker_id or f"worker-{uuid.uuid4().hex[:8]}"

    # ------------------------------------------------------------ lifecycle

    def idle_wait(self) -> float:
        """Until the next pending message is due, at most ``idle_poll_s``."""
        with self.db.uow(readonly=True) as uow:
            due = uow.session.execute(
                select(OutboxMessage.next_attempt_at)
                .where(OutboxMessage.status == PENDING, OutboxMessage.kind == EXECUTION_KIND)
                .order_by(OutboxMessage.next_attempt_at)
                .limit(1)
            ).scalar_one_or_none()
        if due is None:
            return self.policy.idle_poll_s
        wait = (due - self.clock()).total_seconds()
        return min(max(wait, 0.05), self.policy.idle_poll_s)

    # ------------------------------------------------------------ one pass

    def run_once(self) -> int:
        """Claim and deliver one batch; returns how many messages were handled."""
        if self.sender is None:
            return 0
        claimed = self.claim()
        for message in claimed:
            self._deliver(message)
        return len(claimed)

    def claim(self) -> list[Claimed]:
        now = self.clock()
        lease_until = now + timedelta(seconds=self.policy.lease_s)
        due = (OutboxMessage.kind == EXECUTION_KIND) & or_(
            (OutboxMessage.status == PENDING) & (OutboxMessage.next_attempt_at <= now),
            (OutboxMessage.status == PROCESSING) & (OutboxMessage.claimed_until < now),
        )
        with self.db.uow() as uow:
            rows = (
                uow.session.execute(
                    select(OutboxMessage)
                    .where(due)
                    .order_by(OutboxMessage.id)
                    .limit(self.policy.batch)
                    .with_for_update(skip_locked=True)
                )
                .scalars()
                .all()
            )
            claimed = []
            for row in rows:
                row.status, row.claimed_by = PROCESSING, self.worker_id
                row.claimed_until, row.attempts = lease_until, row.attempts + 1
                claimed.append(
                    Claimed(
                        row.id, row.idempotency_key, row.payload, row.attempts, row.dispensation_id
                    )
                )
            uow.commit()
        if claimed:
            fault_point("outbox.after_claim")
        return claimed

    def _deliver(self, message: Claimed) -> None:
        assert self.sender is not None
        try:
            report = self._report(message)
            receipt = self.sender.record_execution(report)
        except (ServiceUnavailable, MalformedResponse) as exc:
            self._transient(message, exc.slug)
            return
        except (PermanentFailure, ValidationError, ValueError) as exc:
            self._failed(message, f"invalid_message:{type(exc).__name__}")
            return
        except LgoError as exc:
            self._failed(message, exc.slug)
            return
        fault_point("outbox.after_remote_call")
        self._delivered(message, receipt)

    def _report(self, message: Claimed) -> ep.ExecutionReport:
        payload: dict[str, Any] = json.loads(message.payload)
        if payload.get("idempotency_key") != message.key:
            raise PermanentFailure("key mismatch")
        lines = payload["lines"]
        if any(line.get("line_id") is None for line in lines):
            lines = self._resolve_line_ids(payload)
        return ep.ExecutionReport.model_validate(
            {
                **payload,
                **self._qualified_ins(message.dispensation_id),
                "lines": [{k: v for k, v in line.items() if k != "line_no"} for line in lines],
            }
        )

    def _qualified_ins(self, dispensation_id: str | None) -> dict[str, str]:
        """The patient's INS only if the identity service says it is qualified *now* (asked at
        each send, never stored in the payload: a later failed check withdraws it)."""
        if self.identity is None or dispensation_id is None:
            return {}
        with self.db.uow(readonly=True) as uow:
            patient_id = uow.session.execute(
                select(DispensationRow.patient_id).where(DispensationRow.id == dispensation_id)
            ).scalar_one_or_none()
        ins = self.identity.qualified_ins(patient_id) if patient_id else None
        return {"patient_ins": ins[0], "patient_ins_oid": ins[1]} if ins else {}

    def _resolve_line_ids(self, payload: dict[str, Any]) -> list[dict[str, Any]]:
        """Typed in degraded mode: national line ids are learnt once the service is back."""
        assert self.sender is not None
        record = self.sender.fetch(
            payload["prescription_id"], author_rpps=payload["pharmacist_rpps"]
        )
        ids = [line.line_id for line in record.lines]
        resolved = []
        for line in payload["lines"]:
            index = int(line["line_no"]) - 1
            if not 0 <= index < len(ids):
                raise PermanentFailure("line not on the national prescription")
            resolved.append({**line, "line_id": ids[index]})
        return resolved

    # ------------------------------------------------------------ outcomes

    def _delivered(self, message: Claimed, receipt: ep.ExecutionReceipt) -> None:
        now = self.clock()
        with self.db.uow() as uow:
            result = uow.session.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.id == message.id,
                    OutboxMessage.status == PROCESSING,
                    OutboxMessage.claimed_by == self.worker_id,
                )
                .values(
                    status=DELIVERED,
                    delivered_at=now,
                    claimed_until=None,
                    last_error=None,
                    receipt=receipt.model_dump_json(),
                )
            )
            done = cast(CursorResult[Any], result).rowcount
            if message.dispensation_id:
                uow.session.execute(
                    update(DispensationRow)
                    .where(DispensationRow.id == message.dispensation_id)
                    .values(sync_status="synced")
                )
            uow.commit()
        fault_point("outbox.after_mark_delivered")
        if not done:
            return  # lease lost to another worker, which reports the same key: nothing to say
        log.info(
            "outbox_delivered",
            message_id=message.id,
            attempts=message.attempts,
            replayed=receipt.replayed,
        )
        self.events.publish(
            "outbox.delivered",
            {
                "id": message.id,
                "dispensation_id": message.dispensation_id,
                "attempts": message.attempts,
                "replayed": receipt.replayed,
            },
        )
        if self.degraded:
            self.degraded = False
            self.events.publish("outbox.degraded", {"active": False})

    def _transient(self, message: Claimed, reason: str) -> None:
        if message.attempts >= self.policy.max_attempts:
            self._failed(message, f"too_many_attempts:{reason}")
            return
        delay = backoff_delay(message.attempts, self.policy, self.rng)
        self._set(
            message,
            status=PENDING,
            last_error=reason,
            next_attempt_at=self.clock() + timedelta(seconds=delay),
        )
        log.warning(
            "outbox_retry_scheduled",
            message_id=message.id,
            attempts=message.attempts,
            reason=reason,
            delay_s=round(delay, 2),
        )
        if not self.degraded:
            self.degraded = True
            self.events.publish("outbox.degraded", {"active": True, "reason": reason})

    def _failed(self, message: Claimed, reason: str) -> None:
        self._set(message, status=FAILED, last_error=reason[:300])
        log.warning("outbox_failed", message_id=message.id, reason=reason)
        self.events.publish(
            "outbox.failed",
            {
                "id": message.id,
                "dispensation_id": message.dispensation_id,
                "reason": reason,
            },
        )

    def _set(self, message: Claimed, **values: Any) -> None:
        with self.db.uow() as uow:
            uow.session.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.id == message.id,
                    OutboxMessage.status == PROCESSING,
                    OutboxMessage.claimed_by == self.worker_id,
                )
                .values(claimed_until=None, **values)
            )
            uow.commit()


# ---------------------------------------------------------------- queries for the API


def _public(row: OutboxMessage) -> dict[str, Any]:
    return {
        "id": row.id,
        "kind": row.kind,
        "dispensation_id": row.dispensation_id,
        "status": row.status,
        "attempts": row.attempts,
        "next_attempt_at": row.next_attempt_at.isoformat(),
        "last_error": row.last_error,
        "delivered_at": row.delivered_at.isoformat() if row.delivered_at else None,
        "created_at": row.created_at.isoformat(),
    }


def list_messages(
    db: Database, status: str | None = None, limit: int = 200
) -> list[dict[str, Any]]:
    stmt = select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(limit)
    if status:
        stmt = stmt.where(OutboxMessage.status == status)
    with db.uow(readonly=True) as uow:
        return [_public(r) for r in uow.session.execute(stmt).scalars().all()]


def retry(db: Database, message_id: int, now: datetime | None = None) -> dict[str, Any]:
    """Put a failed message back in the queue (the pharmacist fixed the cause)."""
    with db.uow() as uow:
        row = uow.session.get(OutboxMessage, message_id)
        if row is None:
            raise OutboxMessageNotFound()
        if row.status != FAILED:
            raise OutboxRetryRefused()
        row.status, row.next_attempt_at, row.attempts = PENDING, now or utcnow(), 0
        uow.commit()
        return _public(row)
