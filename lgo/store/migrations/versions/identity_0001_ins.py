"""Identity: INS on patients, history of identity checks, work list.

Revision ID: identity_0001
Revises: 0001_foundation
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from lgo.store.columns import UTCDateTime

revision: str = "identity_0001"
down_revision: str | Sequence[str] | None = "0001_foundation"
branch_labels: str | Sequence[str] | None = ("identity",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN (nullable, or NOT NULL with a default) works on both databases without
    # rebuilding the table; uniqueness is a unique index, which SQLite can add in place.
    op.add_column("patients", sa.Column("ins_matricule", sa.String(15), nullable=True))
    op.add_column("patients", sa.Column("ins_oid", sa.String(32), nullable=True))
    op.add_column("patients", sa.Column("ins_checked_at", UTCDateTime(), nullable=True))
    op.add_column("patients", sa.Column("document_checked_at", UTCDateTime(), nullable=True))
    op.add_column("patients", sa.Column("document_kind", sa.String(32), nullable=True))
    op.add_column(
        "patients",
        sa.Column("on_work_list", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.create_index("uq_patients_ins_matricule", "patients", ["ins_matricule"], unique=True)
    op.create_table(
        "patient_identity_checks",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("patient_id", sa.String(36), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("status_before", sa.String(16), nullable=False),
        sa.Column("status_after", sa.String(16), nullable=False),
        sa.Column("author_rpps", sa.String(11), nullable=True),
        sa.Column("error_slug", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_patient_identity_checks"),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
            name="fk_patient_identity_checks_patient_id_patients",
        ),
    )
    op.create_index(
        "ix_patient_identity_checks_patient_id", "patient_identity_checks", ["patient_id"]
    )
    op.create_table(
        "identity_work_list",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("patient_id", sa.String(36), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("opened_at", UTCDateTime(), nullable=False),
        sa.Column("resolved_at", UTCDateTime(), nullable=True),
        sa.Column("resolution", sa.String(32), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_identity_work_list"),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name="fk_identity_work_list_patient_id_patients"
        ),
    )
    op.create_index("ix_identity_work_list_patient_id", "identity_work_list", ["patient_id"])


def downgrade() -> None:
    op.drop_index("ix_identity_work_list_patient_id", table_name="identity_work_list")
    op.drop_table("identity_work_list")
    op.drop_index("ix_patient_identity_checks_patient_id", table_name="patient_identity_checks")
    op.drop_table("patient_identity_checks")
    op.drop_index("uq_patients_ins_matricule", table_name="patients")
    with op.batch_alter_table("patients") as batch:
        for column in (
            "on_work_list",
            "document_kind",
            "document_checked_at",
            "ins_checked_at",
            "ins_oid",
            "ins_matricule",
        ):
            batch.drop_column(column)
