"""Stats: professional sessions and national call traces kept for the services-socles dashboard.

Revision ID: stats_0001
Revises: 0001_foundation
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from lgo.store.columns import UTCDateTime

revision: str = "stats_0001"
down_revision: str | Sequence[str] | None = "0001_foundation"
branch_labels: str | Sequence[str] | None = ("stats",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "stats_sessions",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("opened_at", UTCDateTime(), nullable=False),
        sa.Column("closed_at", UTCDateTime(), nullable=False),
        sa.Column("close_reason", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_stats_sessions"),
    )
    op.create_index("ix_stats_sessions_opened_at", "stats_sessions", ["opened_at"])
    op.create_table(
        "stats_national_calls",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("service", sa.String(32), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("status", sa.String(64), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_stats_national_calls"),
    )
    op.create_index("ix_stats_national_calls_at", "stats_national_calls", ["at"])


def downgrade() -> None:
    op.drop_index("ix_stats_national_calls_at", table_name="stats_national_calls")
    op.drop_table("stats_national_calls")
    op.drop_index("ix_stats_sessions_opened_at", table_name="stats_sessions")
    op.drop_table("stats_sessions")
