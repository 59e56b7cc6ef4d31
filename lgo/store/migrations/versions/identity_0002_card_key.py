"""Identity: one patient per card beneficiary (unique card key).

Revision ID: identity_0002
Revises: identity_0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "identity_0002"
down_revision: str | Sequence[str] | None = "identity_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("patients", sa.Column("card_key", sa.String(40), nullable=True))
    op.create_index("uq_patients_card_key", "patients", ["card_key"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_patients_card_key", table_name="patients")
    with op.batch_alter_table("patients") as batch:
        batch.drop_column("card_key")
