"""Missions part: vaccinations given and rapid tests (TROD) done at the counter.

- ``vaccinations``: the register of acts (vaccine scanned from its DataMatrix, lot, expiry, dose,
  route, site, the vaccinating pharmacist's session, the eligibility checks). One act per
  ``Idempotency-Key`` (``UNIQUE``): a retried request records nothing more.
- ``trod_tests``: one rapid test, its kit, readings and the protocol assessment;
  ``dispensation_id`` is the antibiotic dispensed under the protocol (``UNIQUE``: at most one per
  test). ``document_id`` points to the CDA document produced (VAC-NOTE / BIO-TROD) when the patient's
  INS was qualified.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from lgo.store.base import Base
from lgo.store.columns import UTCDateTime


class VaccinationRow(Base):
    __tablename__ = "vaccinations"
    __table_args__ = (
        Index("uq_vaccinations_idempotency_key", "idempotency_key", unique=True),
        Index("ix_vaccinations_patient_id_administered_at", "patient_id", "administered_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(128))
    request_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    administered_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"))
    vaccine: Mapped[str] = mapped_column(String(32), index=True)
    gtin: Mapped[str] = mapped_column(String(14))
    cip13: Mapped[str | None] = mapped_column(String(13), nullable=True)
    cis_code: Mapped[str | None] = mapped_column(String(8), nullable=True)
    product_label: Mapped[str] = mapped_column(String(200))
    lot_number: Mapped[str] = mapped_column(String(20))
    expiry: Mapped[date] = mapped_column(Date())
    serial: Mapped[str | None] = mapped_column(String(20), nullable=True)
    dose_number: Mapped[int | None] = mapped_column(Integer(), nullable=True)
    act: Mapped[str] = mapped_column(String(24))
    route: Mapped[str] = mapped_column(String(24))
    site: Mapped[str | None] = mapped_column(String(24), nullable=True)
    pharmacist_rpps: Mapped[str] = mapped_column(String(11))
    pharmacist_national_id: Mapped[str] = mapped_column(String(12))
    session_id: Mapped[str] = mapped_column(String(36))
    counter_name: Mapped[str | None] = mapped_column(String(64), nullable=True)
    eligibility: Mapped[str] = mapped_column(Text())  # JSON: ages, warnings (never identity)
    document_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # Why no note was produced ("ins-not-qualified", a document error slug), when none was.
    document_skipped: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # Set while a document is being produced (a lease: one producer at a time, retaken after a crash).
    document_claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class TrodTestRow(Base):
    __tablename__ = "trod_tests"
    __table_args__ = (
        Index("uq_trod_tests_idempotency_key", "idempotency_key", unique=True),
        Index("uq_trod_tests_dispensation_id", "dispensation_id", unique=True),
        Index("ix_trod_tests_patient_id_performed_at", "patient_id", "performed_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(128))
    request_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    performed_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"))
    test: Mapped[str] = mapped_column(String(16), index=True)
    kit_manufacturer: Mapped[str] = mapped_column(String(100))
    kit_reference: Mapped[str] = mapped_column(String(64))
    kit_lot: Mapped[str] = mapped_column(String(20))
    kit_expiry: Mapped[date | None] = mapped_column(Date(), nullable=True)
    readings: Mapped[str] = mapped_column(Text())  # JSON {analyte: outcome}
    positive: Mapped[bool] = mapped_column(Boolean())
    criteria: Mapped[str] = mapped_column(Text())  # JSON: the questionnaire as answered
    within_protocol: Mapped[bool] = mapped_column(Boolean())
    refusals: Mapped[str] = mapped_column(Text())  # JSON [{code, message}]
    pharmacist_rpps: Mapped[str] = mapped_column(String(11))
    pharmacist_national_id: Mapped[str] = mapped_column(String(12))
    pharmacist_name: Mapped[str] = mapped_column(String(200))
    session_id: Mapped[str] = mapped_column(String(36))
    counter_name: Mapped[str | None] = mapped_column(String(64), nullable=True)
    document_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    document_skipped: Mapped[str | None] = mapped_column(String(64), nullable=True)
    document_claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    dispensation_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
