"""Missions: vaccinations given and rapid tests (TROD) done at the counter.

Revision ID: missions_0001
Revises: 0001_foundation
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from lgo.store.columns import UTCDateTime

revision: str = "missions_0001"
down_revision: str | Sequence[str] | None = "0001_foundation"
branch_labels: str | Sequence[str] | None = ("missions",)
depends_on: str | Sequence[str] | None = None


def _act_columns() -> list[sa.Column[object]]:
    """Columns every act has: who, for whom, when, the request key."""
    return [
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("idempotency_key", sa.String(128), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("patient_id", sa.String(36), sa.ForeignKey("patients.id"), nullable=False),
        sa.Column("pharmacist_rpps", sa.String(11), nullable=False),
        sa.Column("pharmacist_national_id", sa.String(12), nullable=False),
        sa.Column("session_id", sa.String(36), nullable=False),
        sa.Column("counter_name", sa.String(64), nullable=True),
        sa.Column("document_id", sa.String(64), nullable=True),
        sa.Column("document_skipped", sa.String(64), nullable=True),
        sa.Column("document_claimed_at", UTCDateTime(), nullable=True),
    ]


def upgrade() -> None:
    op.create_table(
        "vaccinations",
        *_act_columns(),
        sa.Column("administered_at", UTCDateTime(), nullable=False),
        sa.Column("vaccine", sa.String(32), nullable=False),
        sa.Column("gtin", sa.String(14), nullable=False),
        sa.Column("cip13", sa.String(13), nullable=True),
        sa.Column("cis_code", sa.String(8), nullable=True),
        sa.Column("product_label", sa.String(200), nullable=False),
        sa.Column("lot_number", sa.String(20), nullable=False),
        sa.Column("expiry", sa.Date(), nullable=False),
        sa.Column("serial", sa.String(20), nullable=True),
        sa.Column("dose_number", sa.Integer(), nullable=True),
        sa.Column("act", sa.String(24), nullable=False),
        sa.Column("route", sa.String(24), nullable=False),
        sa.Column("site", sa.String(24), nullable=True),
        sa.Column("eligibility", sa.Text(), nullable=False),
    )
    op.create_index(
        "uq_vaccinations_idempotency_key", "vaccinations", ["idempotency_key"], unique=True
    )
    op.create_index(
        "ix_vaccinations_patient_id_administered_at",
        "vaccinations",
        ["patient_id", "administered_at"],
    )
    op.create_index("ix_vaccinations_administered_at", "vaccinations", ["administered_at"])
    op.create_index("ix_vaccinations_vaccine", "vaccinations", ["vaccine"])
    op.create_table(
        "trod_tests",
        *_act_columns(),
        sa.Column("performed_at", UTCDateTime(), nullable=False),
        sa.Column("test", sa.String(16), nullable=False),
        sa.Column("kit_manufacturer", sa.String(100), nullable=False),
        sa.Column("kit_reference", sa.String(64), nullable=False),
        sa.Column("kit_lot", sa.String(20), nullable=False),
        sa.Column("kit_expiry", sa.Date(), nullable=True),
        sa.Column("readings", sa.Text(), nullable=False),
        sa.Column("positive", sa.Boolean(), nullable=False),
        sa.Column("criteria", sa.Text(), nullable=False),
        sa.Column("within_protocol", sa.Boolean(), nullable=False),
        sa.Column("refusals", sa.Text(), nullable=False),
        sa.Column("pharmacist_name", sa.String(200), nullable=False),
        sa.Column("dispensation_id", sa.String(36), nullable=True),
    )
    op.create_index("uq_trod_tests_idempotency_key", "trod_tests", ["idempotency_key"], unique=True)
    # At most one protocol dispensation per test (NULLs never collide).
    op.create_index("uq_trod_tests_dispensation_id", "trod_tests", ["dispensation_id"], unique=True)
    op.create_index(
        "ix_trod_tests_patient_id_performed_at", "trod_tests", ["patient_id", "performed_at"]
    )
    op.create_index("ix_trod_tests_performed_at", "trod_tests", ["performed_at"])
    op.create_index("ix_trod_tests_test", "trod_tests", ["test"])


def downgrade() -> None:
    op.drop_table("trod_tests")
    op.drop_table("vaccinations")
