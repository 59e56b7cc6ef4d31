"""The ordonnancier appended in one server-side step on PostgreSQL (issue #20).

Every counter waits on the ``ordonnancier_head`` row. When the daemon read the head, numbered and
hashed the entries in Python, then sent them with the COMMIT, the row stayed locked for the lock's
answer, the daemon's wait for a CPU (under load, most of the hold) and its Python. Here
``ordonnancier_append`` does it all on the server: lock the head, number the entries, hash the
chain, insert them and move the head. It is called first in the commit's single message, so the
head is held only while PostgreSQL runs that message.

The hash is the Python one (lgo/domain/ordonnancier.py): ``sha256(prev_hash "\\n" canonical)``.
The daemon sends each entry's canonical JSON cut around its number (``prefixes``/``suffixes``,
ASCII: Python escapes every other character), so the server only writes the number in and hashes;
``lgo ordonnancier verify`` checks these entries with the Python verifier like any other.

The rest of the message reads the numbers given through two helpers:
``ordonnancier_number(offset)`` (the number of the ``offset``-th entry, 0-based; NULL for NULL)
and ``ordonnancier_fill(parts, offsets)`` (text with those numbers between ``parts``), from a
setting local to the transaction. SQLite (one writer at a time, in-process) keeps numbering in
Python: the revision is a no-op there.

Revision ID: ordoappend_0001
Revises: 0001_foundation
"""

from collections.abc import Sequence

from alembic import op

revision: str = "ordoappend_0001"
down_revision: str | Sequence[str] | None = "0001_foundation"
branch_labels: str | Sequence[str] | None = ("ordonnancier_append",)
# None: PL/pgSQL and these SQL bodies name no table at creation (resolved at the first call), and
# a dependency would take legalrec_0001 out of the database's recorded heads.
depends_on: str | Sequence[str] | None = None

FUNCTIONS = [
    # entries: a JSON array of the entries' columns (without number and hashes);
    # prefixes[i] || number || suffixes[i] is entry i's canonical text. Returns the first number.
    """CREATE FUNCTION ordonnancier_append(entries jsonb, prefixes text[], suffixes text[])
    RETURNS bigint LANGUAGE plpgsql AS $$
    DECLARE
        head_number bigint;
        head_hash text;
        link text;
        i int;
    BEGIN
        IF cardinality(prefixes) IS DISTINCT FROM cardinality(suffixes)
           OR cardinality(prefixes) IS DISTINCT FROM jsonb_array_length(entries)
           OR cardinality(prefixes) = 0 THEN
            RAISE EXCEPTION 'ordonnancier_append: entries, prefixes and suffixes differ';
        END IF;
        SELECT last_number, last_hash INTO STRICT head_number, head_hash
            FROM ordonnancier_head WHERE id = 1 FOR UPDATE;
        PERFORM set_config('lgo.ordonnancier_first', (head_number + 1)::text, true);
        FOR i IN 1 .. cardinality(prefixes) LOOP
            link := head_hash;
            head_number := head_number + 1;
            head_hash := encode(sha256(convert_to(
                link || E'\\n' || prefixes[i] || head_number::text || suffixes[i], 'UTF8')), 'hex');
            -- In FROM, called once (``(f(x)).*`` would call it once per column).
            INSERT INTO ordonnancier_entries
                SELECT * FROM jsonb_populate_record(NULL::ordonnancier_entries,
                    entries -> (i - 1) || jsonb_build_object('number', head_number,
                                                             'prev_hash', link, 'hash', head_hash));
        END LOOP;
        UPDATE ordonnancier_head SET last_number = head_number, last_hash = head_hash
            WHERE id = 1;
        RETURN head_number - cardinality(prefixes) + 1;
    END $$""",
    """CREATE FUNCTION ordonnancier_number(entry_offset int) RETURNS bigint
    LANGUAGE sql STABLE STRICT AS $$
        SELECT current_setting('lgo.ordonnancier_first')::bigint + entry_offset
    $$""",
    # parts[1] number(offsets[1]) parts[2] … parts[n+1]. PL/pgSQL: its expressions are planned
    # once per session (a SQL function with an aggregate is planned again at every call).
    """CREATE FUNCTION ordonnancier_fill(parts text[], offsets int[]) RETURNS text
    LANGUAGE plpgsql STABLE STRICT AS $$
    DECLARE
        first bigint := current_setting('lgo.ordonnancier_first')::bigint;
        filled text := parts[1];
    BEGIN
        FOR i IN 1 .. cardinality(offsets) LOOP
            filled := filled || (first + offsets[i])::text || parts[i + 1];
        END LOOP;
        RETURN filled;
    END $$""",
]


def _postgresql() -> bool:
    return bool(op.get_bind().dialect.name == "postgresql")


def upgrade() -> None:
    if not _postgresql():
        return
    for sql in FUNCTIONS:
        op.execute(sql)


def downgrade() -> None:
    if not _postgresql():
        return
    op.execute("DROP FUNCTION ordonnancier_fill(text[], int[])")
    op.execute("DROP FUNCTION ordonnancier_number(int)")
    op.execute("DROP FUNCTION ordonnancier_append(jsonb, text[], text[])")
