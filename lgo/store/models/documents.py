"""Documents part: the CDA documents the pharmacy produced, and their deliveries (DMP, MSSanté).

A delivery row is a store-and-forward message: written in the same transaction as its document,
sent later by ``lgo.services.documents.DeliveryWorker`` with the same idempotency key on every
attempt. ``UNIQUE(document_deliveries.idempotency_key)``: one delivery per document and channel
(and recipient for MSSanté), whatever the number of clicks.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from lgo.store.base import Base
from lgo.store.columns import UTCDateTime


class DocumentRow(Base):
    __tablename__ = "documents"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # the CDA id (OID)
    kind: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(120))
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"), index=True)
    dispensation_id: Mapped[str | None] = mapped_column(String(36), nullable=True, unique=True)
    author_rpps: Mapped[str] = mapped_column(String(11))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    content: Mapped[bytes] = mapped_column(LargeBinary())  # CDA R2 XML, schema-valid


class DocumentDelivery(Base):
    __tablename__ = "document_deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    document_id: Mapped[str] = mapped_column(ForeignKey("documents.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))  # dmp.provide | mss.send
    idempotency_key: Mapped[str] = mapped_column(String(160), unique=True)
    payload: Mapped[str] = mapped_column(Text())  # JSON: author, recipient; never the document
    status: Mapped[str] = mapped_column(String(16), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    claimed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(300), nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    receipt: Mapped[str | None] = mapped_column(Text(), nullable=True)
