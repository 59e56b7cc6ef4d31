"""Foundation: counters (API clients) and patients (identity traits).

Revision ID: 0001_foundation
Revises:
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from lgo.store.columns import UTCDateTime

revision: str = "0001_foundation"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "counters",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("token_prefix", sa.String(12), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_counters"),
        sa.UniqueConstraint("name", name="uq_counters_name"),
        sa.UniqueConstraint("token_hash", name="uq_counters_token_hash"),
    )
    op.create_table(
        "patients",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("birth_name", sa.String(100), nullable=False),
        sa.Column("used_name", sa.String(100), nullable=True),
        sa.Column("given_names", sa.String(200), nullable=False),
        sa.Column("sex", sa.String(1), nullable=True),
        sa.Column("birth_date_raw", sa.String(8), nullable=False),
        sa.Column("birth_place_code", sa.String(5), nullable=True),
        sa.Column("nir", sa.String(15), nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("identity_status", sa.String(16), nullable=False, server_default="provisional"),
        sa.PrimaryKeyConstraint("id", name="pk_patients"),
    )
    op.create_index("ix_patients_nir", "patients", ["nir"])


def downgrade() -> None:
    op.drop_index("ix_patients_nir", table_name="patients")
    op.drop_table("patients")
    op.drop_table("counters")
