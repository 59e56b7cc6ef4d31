"""Dispensing: prescriptions, dispensations, lines, ordonnancier (append-only), outbox, idempotency.

Revision ID: dispensing_0001
Revises: 0001_foundation
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from lgo.store.columns import UTCDateTime

revision: str = "dispensing_0001"
down_revision: str | Sequence[str] | None = "0001_foundation"
branch_labels: str | Sequence[str] | None = ("dispensing",)
depends_on: str | Sequence[str] | None = None

GENESIS_HASH = "0" * 64

SQLITE_TRIGGERS = [
    """CREATE TRIGGER ordonnancier_entries_no_update BEFORE UPDATE ON ordonnancier_entries
    BEGIN SELECT RAISE(ABORT, 'ordonnancier is append-only: UPDATE refused'); END""",
    """CREATE TRIGGER ordonnancier_entries_no_delete BEFORE DELETE ON ordonnancier_entries
    BEGIN SELECT RAISE(ABORT, 'ordonnancier is append-only: DELETE refused'); END""",
]

PG_TRIGGERS = [
    """CREATE FUNCTION ordonnancier_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION 'ordonnancier is append-only: % refused', TG_OP; END $$""",
    """CREATE TRIGGER ordonnancier_entries_no_change BEFORE UPDATE OR DELETE ON ordonnancier_entries
    FOR EACH ROW EXECUTE FUNCTION ordonnancier_append_only()""",
    """CREATE TRIGGER ordonnancier_entries_no_truncate BEFORE TRUNCATE ON ordonnancier_entries
    FOR EACH STATEMENT EXECUTE FUNCTION ordonnancier_append_only()""",
]


def _prescriptions() -> None:
    op.create_table(
        "prescriptions",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("patient_id", sa.String(36), nullable=True),
        sa.Column("prescribed_on", sa.Date(), nullable=False),
        sa.Column("prescriber_rpps", sa.String(11), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("fetched_at", UTCDateTime(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_prescriptions"),
    )
    op.create_index("ix_prescriptions_patient_id", "prescriptions", ["patient_id"])


def _dispensations() -> None:
    op.create_table(
        "dispensations",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("patient_id", sa.String(36), nullable=False),
        sa.Column("prescription_id", sa.String(40), nullable=False),
        sa.Column("prescription_source", sa.String(16), nullable=False),
        sa.Column("sync_status", sa.String(16), nullable=False),
        sa.Column("degraded", sa.Boolean(), nullable=False),
        sa.Column("pharmacist_national_id", sa.String(32), nullable=False),
        sa.Column("pharmacist_rpps", sa.String(11), nullable=False),
        sa.Column("structure_id", sa.String(32), nullable=True),
        sa.Column("session_kind", sa.String(8), nullable=False),
        sa.Column("session_id", sa.String(36), nullable=False),
        sa.Column("counter_name", sa.String(64), nullable=True),
        sa.Column("idempotency_key", sa.String(128), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_dispensations"),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name="fk_dispensations_patient_id_patients"
        ),
        sa.UniqueConstraint("idempotency_key", name="uq_dispensations_idempotency_key"),
    )
    for column in ("created_at", "business_date", "patient_id", "prescription_id"):
        op.create_index(f"ix_dispensations_{column}", "dispensations", [column])


def _lines() -> None:
    op.create_table(
        "dispensation_lines",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("dispensation_id", sa.String(36), nullable=False),
        sa.Column("prescription_id", sa.String(40), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("intervention", sa.String(16), nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("units", sa.Integer(), nullable=False),
        sa.Column("boxes", sa.Integer(), nullable=False),
        sa.Column("delivered_cip13", sa.String(13), nullable=True),
        sa.Column("designation", sa.String(200), nullable=False),
        sa.Column("regulatory_list", sa.String(16), nullable=False),
        sa.Column("completeness", sa.String(3), nullable=True),
        sa.Column("exceptional", sa.Boolean(), nullable=False),
        sa.Column("unit_dispensing", sa.Boolean(), nullable=False),
        sa.Column("lot", sa.String(40), nullable=True),
        sa.Column("substituted_form", sa.String(64), nullable=True),
        sa.Column("reason", sa.String(200), nullable=True),
        sa.Column("prescriber_agreement_on", sa.Date(), nullable=True),
        sa.Column("override_code", sa.String(40), nullable=True),
        sa.Column("override_reason", sa.String(200), nullable=True),
        sa.Column("override_rpps", sa.String(11), nullable=True),
        sa.Column("mentions", sa.String(200), nullable=True),
        sa.Column("period_start", sa.Date(), nullable=True),
        sa.Column("period_end", sa.Date(), nullable=True),
        sa.Column("molecule", sa.String(100), nullable=True),
        sa.Column("ordonnancier_number", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_dispensation_lines"),
        sa.ForeignKeyConstraint(
            ["dispensation_id"],
            ["dispensations.id"],
            name="fk_dispensation_lines_dispensation_id_dispensations",
        ),
        sa.UniqueConstraint(
            "prescription_id",
            "line_no",
            "seq",
            name="uq_dispensation_lines_prescription_id_line_no_seq",
        ),
    )
    op.create_index(
        "ix_dispensation_lines_dispensation_id", "dispensation_lines", ["dispensation_id"]
    )


def _ordonnancier() -> None:
    head = op.create_table(
        "ordonnancier_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last_number", sa.Integer(), nullable=False),
        sa.Column("last_hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ordonnancier_head"),
    )
    op.bulk_insert(head, [{"id": 1, "last_number": 0, "last_hash": GENESIS_HASH}])
    op.create_table(
        "ordonnancier_entries",
        sa.Column("number", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("recorded_at", sa.String(40), nullable=False),
        sa.Column("dispensation_id", sa.String(36), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("prescription_id", sa.String(40), nullable=False),
        sa.Column("prescriber_rpps", sa.String(11), nullable=False),
        sa.Column("prescriber_name", sa.String(200), nullable=False),
        sa.Column("patient_id", sa.String(36), nullable=False),
        sa.Column("patient_name", sa.String(300), nullable=False),
        sa.Column("patient_address", sa.String(300), nullable=False),
        sa.Column("product_code", sa.String(13), nullable=False),
        sa.Column("designation", sa.String(200), nullable=False),
        sa.Column("regulatory_list", sa.String(16), nullable=False),
        sa.Column("quantity_units", sa.Integer(), nullable=False),
        sa.Column("pharmacist_rpps", sa.String(11), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("number", name="pk_ordonnancier_entries"),
        sa.UniqueConstraint("hash", name="uq_ordonnancier_entries_hash"),
    )
    for column in ("dispensation_id", "patient_id", "product_code"):
        op.create_index(f"ix_ordonnancier_entries_{column}", "ordonnancier_entries", [column])
    triggers = SQLITE_TRIGGERS if op.get_bind().dialect.name == "sqlite" else PG_TRIGGERS
    for statement in triggers:
        op.execute(statement)


def _outbox_and_keys() -> None:
    op.create_table(
        "outbox_messages",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("dispensation_id", sa.String(36), nullable=True),
        sa.Column("idempotency_key", sa.String(128), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
        sa.Column("claimed_by", sa.String(64), nullable=True),
        sa.Column("claimed_until", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.String(300), nullable=True),
        sa.Column("delivered_at", UTCDateTime(), nullable=True),
        sa.Column("receipt", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_outbox_messages"),
        sa.UniqueConstraint("idempotency_key", name="uq_outbox_messages_idempotency_key"),
    )
    for column in ("dispensation_id", "status", "next_attempt_at"):
        op.create_index(f"ix_outbox_messages_{column}", "outbox_messages", [column])
    op.create_table(
        "idempotency_keys",
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("scope", sa.String(40), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("response", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_idempotency_keys"),
    )


def upgrade() -> None:
    _prescriptions()
    _dispensations()
    _lines()
    _ordonnancier()
    _outbox_and_keys()


def downgrade() -> None:
    for table in (
        "idempotency_keys",
        "outbox_messages",
        "ordonnancier_entries",
        "ordonnancier_head",
        "dispensation_lines",
        "dispensations",
        "prescriptions",
    ):
        op.drop_table(table)
    if op.get_bind().dialect.name != "sqlite":
        op.execute("DROP FUNCTION IF EXISTS ordonnancier_append_only()")
