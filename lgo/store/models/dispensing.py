"""Dispensing tables: prescriptions seen at the counter, dispensations and their lines, the
ordonnancier (append-only, hash-chained), the outbox, and the idempotency keys of the API.

Exactly-once rests on constraints: ``UNIQUE(idempotency_keys.key)`` for request replays,
``UNIQUE(dispensation_lines.prescription_id, line_no, seq)`` for two counters acting on the
same line, ``UNIQUE(outbox_messages.idempotency_key)`` for reports. Ordonnancier numbers come from
the single ``ordonnancier_head`` row, updated in the same transaction (its row lock serialises
writers on PostgreSQL; SQLite has one writer), so they are gapless.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    Date,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from lgo.store.base import Base
from lgo.store.columns import UTCDateTime


class PrescriptionRow(Base):
    """The last known content of a prescription (fetched or typed), as the rules read it."""

    __tablename__ = "prescriptions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    source: Mapped[str] = mapped_column(String(16))
    patient_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    prescribed_on: Mapped[date] = mapped_column(Date())
    prescriber_rpps: Mapped[str] = mapped_column(String(11))
    content: Mapped[str] = mapped_column(Text())  # JSON of the domain Prescription
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime())
    version: Mapped[int] = mapped_column(Integer, default=1)


class DispensationRow(Base):
    __tablename__ = "dispensations"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    business_date: Mapped[date] = mapped_column(Date(), index=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"), index=True)
    prescription_id: Mapped[str] = mapped_column(String(40), index=True)
    prescription_source: Mapped[str] = mapped_column(String(16))
    # pending_sync until the execution report is acknowledged (degraded mode shows here).
    sync_status: Mapped[str] = mapped_column(String(16))
    degraded: Mapped[bool] = mapped_column(Boolean(), default=False)
    pharmacist_national_id: Mapped[str] = mapped_column(String(32))
    pharmacist_rpps: Mapped[str] = mapped_column(String(11))
    structure_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    session_kind: Mapped[str] = mapped_column(String(8))
    session_id: Mapped[str] = mapped_column(String(36))
    counter_name: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # "<counter name>:<Idempotency-Key>": a key is scoped to its counter (idemscope_0001).
    idempotency_key: Mapped[str | None] = mapped_column(String(200), nullable=True, unique=True)


class DispensationLineRow(Base):
    __tablename__ = "dispensation_lines"
    __table_args__ = (UniqueConstraint("prescription_id", "line_no", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dispensation_id: Mapped[str] = mapped_column(ForeignKey("dispensations.id"), index=True)
    prescription_id: Mapped[str] = mapped_column(String(40))
    line_no: Mapped[int] = mapped_column(Integer)
    # Number of earlier interventions on this prescription line: two counters that read the same
    # history write the same seq, and the unique constraint lets only one commit.
    seq: Mapped[int] = mapped_column(Integer)
    intervention: Mapped[str] = mapped_column(String(16))
    days: Mapped[int] = mapped_column(Integer)
    units: Mapped[int] = mapped_column(Integer)
    boxes: Mapped[int] = mapped_column(Integer)
    delivered_cip13: Mapped[str | None] = mapped_column(String(13), nullable=True)
    designation: Mapped[str] = mapped_column(String(200))
    regulatory_list: Mapped[str] = mapped_column(String(16))
    completeness: Mapped[str | None] = mapped_column(String(3), nullable=True)
    exceptional: Mapped[bool] = mapped_column(Boolean(), default=False)
    unit_dispensing: Mapped[bool] = mapped_column(Boolean(), default=False)
    lot: Mapped[str | None] = mapped_column(String(40), nullable=True)
    substituted_form: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
    prescriber_agreement_on: Mapped[date | None] = mapped_column(Date(), nullable=True)
    override_code: Mapped[str | None] = mapped_column(String(40), nullable=True)
    override_reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
    override_rpps: Mapped[str | None] = mapped_column(String(11), nullable=True)
    mentions: Mapped[str | None] = mapped_column(String(200), nullable=True)
    period_start: Mapped[date | None] = mapped_column(Date(), nullable=True)
    period_end: Mapped[date | None] = mapped_column(Date(), nullable=True)
    molecule: Mapped[str | None] = mapped_column(String(100), nullable=True)
    ordonnancier_number: Mapped[int | None] = mapped_column(Integer, nullable=True)


class OrdonnancierHead(Base):
    """One row (id=1): the last number and hash of the chain, the writers' serialisation point."""

    __tablename__ = "ordonnancier_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_number: Mapped[int] = mapped_column(Integer)
    last_hash: Mapped[str] = mapped_column(String(64))


class OrdonnancierEntry(Base):
    """Append-only: database triggers refuse UPDATE and DELETE."""

    __tablename__ = "ordonnancier_entries"

    number: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    recorded_at: Mapped[str] = mapped_column(String(40))  # ISO text: hashed exactly as stored
    dispensation_id: Mapped[str] = mapped_column(String(36), index=True)
    line_no: Mapped[int] = mapped_column(Integer)
    prescription_id: Mapped[str] = mapped_column(String(40))
    prescriber_rpps: Mapped[str] = mapped_column(String(11))
    prescriber_name: Mapped[str] = mapped_column(String(200))
    patient_id: Mapped[str] = mapped_column(String(36), index=True)
    patient_name: Mapped[str] = mapped_column(String(300))
    patient_address: Mapped[str] = mapped_column(String(300))
    product_code: Mapped[str] = mapped_column(String(13), index=True)
    designation: Mapped[str] = mapped_column(String(200))
    regulatory_list: Mapped[str] = mapped_column(String(16))
    quantity_units: Mapped[int] = mapped_column(Integer)
    pharmacist_rpps: Mapped[str] = mapped_column(String(11))
    # legalrec_0001 (NULL on older entries): R.5132-10 prescriber address; R.5132-35 the bearer of a
    # stupéfiant prescription when not the patient.
    prescriber_address: Mapped[str | None] = mapped_column(String(300), nullable=True)
    bearer_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    bearer_address: Mapped[str | None] = mapped_column(String(300), nullable=True)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class OutboxMessage(Base):
    __tablename__ = "outbox_messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    kind: Mapped[str] = mapped_column(String(40))
    dispensation_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    # Sent unchanged on every attempt: the remote side deduplicates on it.
    idempotency_key: Mapped[str] = mapped_column(String(128), unique=True)
    payload: Mapped[str] = mapped_column(Text())
    status: Mapped[str] = mapped_column(String(16), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    claimed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(300), nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    receipt: Mapped[str | None] = mapped_column(Text(), nullable=True)


class IdempotencyKey(Base):
    """The first answer given to a request key, replayed for the same key and body."""

    __tablename__ = "idempotency_keys"

    # "<counter name>:<Idempotency-Key>": a key is scoped to its counter (idemscope_0001).
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    scope: Mapped[str] = mapped_column(String(40))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response: Mapped[str] = mapped_column(Text())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class NarcoticsRegisterLine(Base):
    """Registre des stupéfiants: append-only (triggers refuse UPDATE and DELETE)."""

    __tablename__ = "narcotics_register"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    business_date: Mapped[date] = mapped_column(Date(), index=True)
    product_code: Mapped[str] = mapped_column(String(13), index=True)
    designation: Mapped[str] = mapped_column(String(200))
    movement: Mapped[str] = mapped_column(String(24))
    units: Mapped[int] = mapped_column(Integer)  # signed dosage units
    dispensation_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    reference: Mapped[str | None] = mapped_column(String(200), nullable=True)
    pharmacist_rpps: Mapped[str] = mapped_column(String(11))
