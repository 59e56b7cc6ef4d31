"""Ordonnancier entries hold the whole legal record (issue #17): the prescriber's address
(R.5132-10) and, for a stupéfiant brought by someone other than the patient, the bearer's name and
address (R.5132-35). Nullable: entries written before keep their content and hash (the chain covers
these fields only when present).

Revision ID: legalrec_0001
Revises: 0001_foundation
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "legalrec_0001"
down_revision: str | Sequence[str] | None = "0001_foundation"
branch_labels: str | Sequence[str] | None = ("legal_record",)
depends_on: str | Sequence[str] | None = ("dispensing_0001",)

COLUMNS = (("prescriber_address", 300), ("bearer_name", 200), ("bearer_address", 300))


def upgrade() -> None:
    # ADD COLUMN is DDL: the append-only triggers (UPDATE/DELETE) are not involved.
    for name, size in COLUMNS:
        op.add_column("ordonnancier_entries", sa.Column(name, sa.String(size), nullable=True))


def downgrade() -> None:
    # Native DROP COLUMN (SQLite >= 3.35, PostgreSQL): the table and its triggers stay in place.
    for name, _ in reversed(COLUMNS):
        op.drop_column("ordonnancier_entries", name)
