from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, false
from sqlalchemy.orm import Mapped, mapped_column

from lgo.store.base import Base
from lgo.store.columns import UTCDateTime


class Patient(Base):
    """A patient's identity traits as read (Vitale, apCV) or typed. The identity part (INS, status
    history) extends this table through the ``identity`` migration branch."""

    __tablename__ = "patients"
    __table_args__ = (
        Index("uq_patients_ins_matricule", "ins_matricule", unique=True),
        Index("uq_patients_card_key", "card_key", unique=True),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    birth_name: Mapped[str] = mapped_column(String(100))
    used_name: Mapped[str | None] = mapped_column(String(100), nullable=True)
    given_names: Mapped[str] = mapped_column(String(200))
    sex: Mapped[str | None] = mapped_column(String(1), nullable=True)
    # Kept as read: 8 characters YYYYMMDD, lunar dates (e.g. 19800000) included.
    birth_date_raw: Mapped[str] = mapped_column(String(8))
    birth_place_code: Mapped[str | None] = mapped_column(String(5), nullable=True)
    nir: Mapped[str | None] = mapped_column(String(15), nullable=True, index=True)
    source: Mapped[str] = mapped_column(String(16))
    identity_status: Mapped[str] = mapped_column(String(16), default="provisional")

    # --- identity branch (migration identity_0001) ---
    # One INS belongs to one local patient: a second record with the same INS is a duplicate
    # (unique index; NULLs do not collide on SQLite nor PostgreSQL).
    ins_matricule: Mapped[str | None] = mapped_column(String(15), nullable=True)
    ins_oid: Mapped[str | None] = mapped_column(String(32), nullable=True)
    ins_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    document_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    document_kind: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # Set by a failed INSi re-verification; blocks every use of the INS until resolved.
    on_work_list: Mapped[bool] = mapped_column(Boolean(), default=False, server_default=false())
    # "<card NIR>:<birth date>:<rank>" for a patient created from a carte Vitale / apCV read: two
    # counters reading the same card at once create one patient (identity_0002).
    card_key: Mapped[str | None] = mapped_column(String(40), nullable=True)


class PatientIdentityCheck(Base):
    """History of identity checks (INSi calls, ID documents, resolutions): who, when, outcome."""

    __tablename__ = "patient_identity_checks"

    id: Mapped[int] = mapped_column(Integer(), primary_key=True, autoincrement=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    kind: Mapped[str] = mapped_column(String(24))  # insi_traits, insi_vitale, insi_verify, document
    outcome: Mapped[str] = mapped_column(String(32))  # found, not_found, several_found, mismatch...
    status_before: Mapped[str] = mapped_column(String(16))
    status_after: Mapped[str] = mapped_column(String(16))
    author_rpps: Mapped[str | None] = mapped_column(String(11), nullable=True)
    error_slug: Mapped[str | None] = mapped_column(String(64), nullable=True)


class IdentityWorkItem(Base):
    """An identity to resolve by hand (failed re-verification, duplicate INS)."""

    __tablename__ = "identity_work_list"

    id: Mapped[int] = mapped_column(Integer(), primary_key=True, autoincrement=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"), index=True)
    reason: Mapped[str] = mapped_column(String(32))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime())
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    resolution: Mapped[str | None] = mapped_column(String(32), nullable=True)
