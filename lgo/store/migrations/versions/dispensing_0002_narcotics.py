"""Dispensing: registre des stupéfiants (append-only).

Revision ID: dispensing_0002
Revises: dispensing_0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from lgo.store.columns import UTCDateTime

revision: str = "dispensing_0002"
down_revision: str | Sequence[str] | None = "dispensing_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQLITE_TRIGGERS = [
    """CREATE TRIGGER narcotics_register_no_update BEFORE UPDATE ON narcotics_register
    BEGIN SELECT RAISE(ABORT, 'narcotics register is append-only: UPDATE refused'); END""",
    """CREATE TRIGGER narcotics_register_no_delete BEFORE DELETE ON narcotics_register
    BEGIN SELECT RAISE(ABORT, 'narcotics register is append-only: DELETE refused'); END""",
]

PG_TRIGGERS = [
    """CREATE FUNCTION narcotics_register_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION 'narcotics register is append-only: % refused', TG_OP; END $$""",
    """CREATE TRIGGER narcotics_register_no_change BEFORE UPDATE OR DELETE ON narcotics_register
    FOR EACH ROW EXECUTE FUNCTION narcotics_register_append_only()""",
    """CREATE TRIGGER narcotics_register_no_truncate BEFORE TRUNCATE ON narcotics_register
    FOR EACH STATEMENT EXECUTE FUNCTION narcotics_register_append_only()""",
]


def upgrade() -> None:
    op.create_table(
        "narcotics_register",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("product_code", sa.String(13), nullable=False),
        sa.Column("designation", sa.String(200), nullable=False),
        sa.Column("movement", sa.String(24), nullable=False),
        sa.Column("units", sa.Integer(), nullable=False),
        sa.Column("dispensation_id", sa.String(36), nullable=True),
        sa.Column("reference", sa.String(200), nullable=True),
        sa.Column("pharmacist_rpps", sa.String(11), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_narcotics_register"),
    )
    op.create_index("ix_narcotics_register_business_date", "narcotics_register", ["business_date"])
    op.create_index("ix_narcotics_register_product_code", "narcotics_register", ["product_code"])
    triggers = SQLITE_TRIGGERS if op.get_bind().dialect.name == "sqlite" else PG_TRIGGERS
    for statement in triggers:
        op.execute(statement)


def downgrade() -> None:
    op.drop_table("narcotics_register")
    if op.get_bind().dialect.name != "sqlite":
        op.execute("DROP FUNCTION IF EXISTS narcotics_register_append_only()")
