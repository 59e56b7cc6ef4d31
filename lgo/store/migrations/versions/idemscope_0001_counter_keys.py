"""Idempotency keys scoped to the counter that sent them (issue #17).

Stored keys become ``<counter name>:<Idempotency-Key>`` (dispensations and idempotency_keys), so
the same key from another counter is another request instead of a replay of the first counter's
answer. Existing keys are rewritten with the counter of their dispensation; the columns grow to
200 characters (counter name ≤ 64 + ``:`` + key ≤ 128).

Revision ID: idemscope_0001
Revises: 0001_foundation
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "idemscope_0001"
down_revision: str | Sequence[str] | None = "0001_foundation"
branch_labels: str | Sequence[str] | None = ("idempotency_scope",)
depends_on: str | Sequence[str] | None = ("dispensing_0001",)

# Keys first (they are found through the dispensation's still unscoped key), then dispensations.
SCOPE_KEYS = """
UPDATE idempotency_keys SET key = (
    SELECT COALESCE(d.counter_name, '') || ':' || idempotency_keys.key FROM dispensations d
    WHERE d.idempotency_key = idempotency_keys.key)
WHERE EXISTS (SELECT 1 FROM dispensations d WHERE d.idempotency_key = idempotency_keys.key)
"""
SCOPE_DISPENSATIONS = """
UPDATE dispensations SET idempotency_key = COALESCE(counter_name, '') || ':' || idempotency_key
WHERE idempotency_key IS NOT NULL
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":  # SQLite does not enforce VARCHAR lengths
        op.alter_column(
            "idempotency_keys",
            "key",
            type_=sa.String(200),
            existing_type=sa.String(128),
            existing_nullable=False,
        )
        op.alter_column(
            "dispensations",
            "idempotency_key",
            type_=sa.String(200),
            existing_type=sa.String(128),
            existing_nullable=True,
        )
    op.execute(SCOPE_KEYS)
    op.execute(SCOPE_DISPENSATIONS)


# Back to unscoped keys: strip "<counter name>:" (keys first, found through the dispensation).
UNSCOPE_KEYS = """
UPDATE idempotency_keys SET key = SUBSTR(key, LENGTH((
    SELECT COALESCE(d.counter_name, '') FROM dispensations d
    WHERE d.idempotency_key = idempotency_keys.key)) + 2)
WHERE EXISTS (SELECT 1 FROM dispensations d WHERE d.idempotency_key = idempotency_keys.key)
"""
UNSCOPE_DISPENSATIONS = """
UPDATE dispensations SET idempotency_key = SUBSTR(idempotency_key,
    LENGTH(COALESCE(counter_name, '')) + 2)
WHERE idempotency_key IS NOT NULL
"""


def downgrade() -> None:
    # Two counters may have used the same key: the unscoped UNIQUE index then refuses the
    # downgrade, which is right (it would merge two requests into one).
    op.execute(UNSCOPE_KEYS)
    op.execute(UNSCOPE_DISPENSATIONS)
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column(
            "dispensations",
            "idempotency_key",
            type_=sa.String(128),
            existing_type=sa.String(200),
            existing_nullable=True,
        )
        op.alter_column(
            "idempotency_keys",
            "key",
            type_=sa.String(128),
            existing_type=sa.String(200),
            existing_nullable=False,
        )
