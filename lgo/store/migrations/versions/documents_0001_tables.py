"""Documents: produced CDA documents and their deliveries (DMP, MSSanté).

Revision ID: documents_0001
Revises: 0001_foundation
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from lgo.store.columns import UTCDateTime

revision: str = "documents_0001"
down_revision: str | Sequence[str] | None = "0001_foundation"
branch_labels: str | Sequence[str] | None = ("documents",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "documents",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("title", sa.String(120), nullable=False),
        sa.Column("patient_id", sa.String(36), sa.ForeignKey("patients.id"), nullable=False),
        sa.Column("dispensation_id", sa.String(36), nullable=True),
        sa.Column("author_rpps", sa.String(11), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
    )
    op.create_index("ix_documents_patient_id", "documents", ["patient_id"])
    op.create_index("ix_documents_created_at", "documents", ["created_at"])
    # One dispensing summary per dispensation, whatever the retries (NULLs never collide).
    op.create_index("uq_documents_dispensation_id", "documents", ["dispensation_id"], unique=True)
    op.create_table(
        "document_deliveries",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("document_id", sa.String(64), sa.ForeignKey("documents.id"), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("idempotency_key", sa.String(160), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
        sa.Column("claimed_by", sa.String(64), nullable=True),
        sa.Column("claimed_until", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.String(300), nullable=True),
        sa.Column("delivered_at", UTCDateTime(), nullable=True),
        sa.Column("receipt", sa.Text(), nullable=True),
        sa.UniqueConstraint("idempotency_key", name="uq_document_deliveries_idempotency_key"),
    )
    op.create_index("ix_document_deliveries_document_id", "document_deliveries", ["document_id"])
    op.create_index("ix_document_deliveries_status", "document_deliveries", ["status"])
    op.create_index(
        "ix_document_deliveries_next_attempt_at", "document_deliveries", ["next_attempt_at"]
    )


def downgrade() -> None:
    op.drop_table("document_deliveries")
    op.drop_table("documents")
