"""The server-side ordonnancier append in fewer steps (issue #20): same signature, same rows.

``ordonnancier_append`` (ordoappend_0001) ran, per entry, a jsonb subscript, a ``jsonb_build_object``,
a ``||`` and a ``jsonb_populate_record`` and one INSERT, and the ``set_config`` as a ``PERFORM``
(a query of its own). Here the entries' JSON is read into rows once (``jsonb_populate_recordset``),
the loop only numbers and hashes them in PL/pgSQL variables, and one INSERT writes them all; the
setting is an assignment (PL/pgSQL's simple-expression path, no query). The head is locked,
numbered from and moved exactly as before, and the hash is the same expression on the same text:
the rows, numbers and hashes are those the old function wrote for the same input (tested), so the
chain verifies across the upgrade. Existing rows are not touched.

SQLite keeps numbering in Python: the revision is a no-op there.

Revision ID: ordoappend_0002
Revises: ordoappend_0001
"""

from collections.abc import Sequence

from alembic import op

revision: str = "ordoappend_0002"
down_revision: str | Sequence[str] | None = "ordoappend_0001"
branch_labels: str | Sequence[str] | None = ("ordonnancier_append_one_insert",)
depends_on: str | Sequence[str] | None = None

# ``rows`` keeps the input's order (jsonb_populate_recordset and unnest both do), so entry i gets
# number first + i - 1 as before. A column added to ordonnancier_entries later is read from the
# JSON by name, as jsonb_populate_record did.
APPEND = """CREATE OR REPLACE FUNCTION ordonnancier_append(
        entries jsonb, prefixes text[], suffixes text[])
    RETURNS bigint LANGUAGE plpgsql AS $$
    DECLARE
        n int := cardinality(prefixes);
        rows ordonnancier_entries[];
        r ordonnancier_entries;
        head_number bigint;
        head_hash text;
        first bigint;
    BEGIN
        IF n IS DISTINCT FROM cardinality(suffixes)
           OR n IS DISTINCT FROM jsonb_array_length(entries) OR n = 0 THEN
            RAISE EXCEPTION 'ordonnancier_append: entries, prefixes and suffixes differ';
        END IF;
        SELECT last_number, last_hash INTO STRICT head_number, head_hash
            FROM ordonnancier_head WHERE id = 1 FOR UPDATE;
        first := set_config('lgo.ordonnancier_first', (head_number + 1)::text, true);
        rows := ARRAY(SELECT jsonb_populate_recordset(NULL::ordonnancier_entries, entries));
        FOR i IN 1 .. n LOOP
            r := rows[i];
            r.prev_hash := head_hash;
            head_number := head_number + 1;
            r.number := head_number;
            head_hash := encode(sha256(convert_to(
                head_hash || E'\\n' || prefixes[i] || head_number::text || suffixes[i], 'UTF8')),
                'hex');
            r.hash := head_hash;
            rows[i] := r;
        END LOOP;
        INSERT INTO ordonnancier_entries SELECT * FROM unnest(rows);
        UPDATE ordonnancier_head SET last_number = head_number, last_hash = head_hash
            WHERE id = 1;
        RETURN first;
    END $$"""


def _postgresql() -> bool:
    return bool(op.get_bind().dialect.name == "postgresql")


def upgrade() -> None:
    if _postgresql():
        # The body names ordonnancier_entries' row type, which PL/pgSQL's validator resolves at
        # creation; that table's branch (dispensing) may be upgraded after this one. Unchecked
        # here, the body is compiled at its first call (as pg_dump restores functions).
        op.execute("SET check_function_bodies = off")
        op.execute(APPEND)
        op.execute("RESET check_function_bodies")


def downgrade() -> None:
    if _postgresql():
        from lgo.store.migrations.versions.ordoappend_0001_server_append import FUNCTIONS

        op.execute(FUNCTIONS[0].replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1))
