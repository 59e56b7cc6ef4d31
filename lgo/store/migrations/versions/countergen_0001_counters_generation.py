"""A change signal for the counters table alone (issue #20, the token check on SQLite).

The daemon keeps the active counters' token hashes in memory (lgo/services/counter_tokens.py) and
must see a revocation made by another process at the very next request. On SQLite its cheap signal,
``PRAGMA data_version``, moves with every commit to the file, dispensations included; the daemon
then had to re-read every token hash to learn whether the counters had changed. This branch adds a
one-row ``counter_generation`` table that triggers bump on any insert, update or delete of
``counters``: after another commit, the daemon reads one integer instead.

PostgreSQL keeps its own signal (``NOTIFY lgo_counters``, lgo/services/counters.py): the table and
triggers are created on SQLite only, and the revision is a no-op on PostgreSQL.

Revision ID: countergen_0001
Revises: 0001_foundation
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "countergen_0001"
down_revision: str | Sequence[str] | None = "0001_foundation"
branch_labels: str | Sequence[str] | None = ("counter_generation",)
depends_on: str | Sequence[str] | None = None

TABLE = "counter_generation"
EVENTS = ("insert", "update", "delete")
TRIGGER = """
CREATE TRIGGER counters_generation_{event} AFTER {EVENT} ON counters
BEGIN
    UPDATE counter_generation SET generation = generation + 1 WHERE id = 1;
END
"""


def _sqlite() -> bool:
    return bool(op.get_bind().dialect.name == "sqlite")


def upgrade() -> None:
    if not _sqlite():
        return
    op.create_table(
        TABLE,
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_counter_generation"),
    )
    op.execute("INSERT INTO counter_generation (id, generation) VALUES (1, 0)")
    for event in EVENTS:
        op.execute(TRIGGER.format(event=event, EVENT=event.upper()))


def downgrade() -> None:
    if not _sqlite():
        return
    for event in EVENTS:
        op.execute(f"DROP TRIGGER counters_generation_{event}")
    op.drop_table(TABLE)
