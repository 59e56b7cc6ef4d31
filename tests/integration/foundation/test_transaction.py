"""The Core write transaction (``Database.transaction``) and the writes sent with its COMMIT on
PostgreSQL (``write_with_commit``): committed once or not at all, values kept exactly, their errors
raised as SQLAlchemy's own types at the commit, and the pooled connection clean for the next user."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import insert, text
from sqlalchemy.exc import IntegrityError, OperationalError

from lgo.store import migrate
from lgo.store.db import Database, write_with_commit
from lgo.store.models import Counter

_ADD = text(
    "INSERT INTO counters (name, token_hash, token_prefix, created_at) "
    "VALUES (:name, :name, 'p', CURRENT_TIMESTAMP)"
)
_NAMES = text("SELECT name FROM counters ORDER BY name")
_COUNTERS_INSERT = insert(Counter.__table__)


def _counter(name: str) -> dict[str, Any]:
    return {"name": name, "token_hash": name, "token_prefix": "p", "created_at": datetime.now(UTC)}


def _names(db: Database) -> list[str]:
    with db.read_engine.connect() as connection:
        return list(connection.execute(_NAMES).scalars())


def test_transaction_rolls_back_without_commit(any_db: Database) -> None:
    with any_db.transaction() as tx:
        tx.connection.execute(_ADD, {"name": "a"})
    assert _names(any_db) == []
    with any_db.transaction() as tx:
        tx.connection.execute(_ADD, {"name": "a"})
        tx.commit()
    assert _names(any_db) == ["a"]


def test_writes_with_the_commit_keep_every_value_exactly(any_db: Database) -> None:
    """Bound by psycopg on the client side on PostgreSQL: quotes, percent signs, statement
    separators, accents and backslashes come back as given."""
    awkward = ["O'Brien 100%", "a;\nb", "Hélène \\ d", "%(name)s", "--", "x" * 60]
    with any_db.transaction() as tx:
        tx.connection.execute(_ADD, {"name": "before"})
        write_with_commit(tx.connection, _COUNTERS_INSERT, [_counter(n) for n in awkward])
        write_with_commit(tx.connection, _COUNTERS_INSERT, _counter("single"))
        tx.commit()
    assert _names(any_db) == sorted(["before", *awkward, "single"])


def test_writes_with_the_commit_error_commits_nothing(any_db: Database) -> None:
    """A unique violation among them (PostgreSQL: raised by the commit) is an IntegrityError and
    nothing of the transaction stays; the same pooled connection then works normally."""
    with pytest.raises(IntegrityError), any_db.transaction() as tx:
        tx.connection.execute(_ADD, {"name": "kept-out"})
        write_with_commit(tx.connection, _COUNTERS_INSERT, [_counter("twice"), _counter("twice")])
        write_with_commit(tx.connection, _COUNTERS_INSERT, _counter("after"))
        tx.commit()
    assert _names(any_db) == []
    for n in range(3):  # more than one checkout of the pool's connections
        with any_db.transaction() as tx:
            tx.connection.execute(_ADD, {"name": f"next-{n}"})
            tx.commit()
    assert _names(any_db) == ["next-0", "next-1", "next-2"]


def test_writes_left_without_commit_are_dropped(any_db: Database) -> None:
    """A transaction left by an exception never sends them, nor hands them to the next user of
    its pooled connection."""
    with pytest.raises(RuntimeError), any_db.transaction() as tx:
        write_with_commit(tx.connection, _COUNTERS_INSERT, _counter("never"))
        raise RuntimeError("refused")
    with any_db.transaction() as tx:
        tx.connection.execute(_ADD, {"name": "next"})
        tx.commit()
    assert _names(any_db) == ["next"]


def test_sqlite_transaction_takes_the_writer_lock_up_front(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    impatient = Database(sqlite_url, busy_timeout_ms=50)
    migrate.upgrade(db)
    try:
        with db.transaction() as first:
            first.connection.execute(text("SELECT 1"))  # a read only: still holds the lock
            with pytest.raises(OperationalError, match="locked"), impatient.transaction():
                pass
    finally:
        db.dispose()
        impatient.dispose()


@pytest.mark.postgres
def test_hot_connections_are_not_pinged_idle_ones_are(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rush pays no ping per transaction; a connection that sat idle and whose backend is gone
    (PostgreSQL restarted) is replaced before the transaction, which then succeeds."""
    pings: list[int] = []
    db = Database(pg_url)
    try:
        real_ping = db.engine.dialect.do_ping

        def counted(dbapi_connection: object) -> bool:
            pings.append(1)
            return real_ping(dbapi_connection)

        monkeypatch.setattr(db.engine.dialect, "do_ping", counted)
        for _ in range(5):
            with db.transaction() as tx:
                backend = tx.connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
                tx.commit()
        assert pings == []
        admin = Database(pg_url)  # its own pool: the killer is not the victim
        try:
            with admin.transaction() as tx:
                tx.connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})
        finally:
            admin.dispose()
        monkeypatch.setattr("lgo.store.db.time.monotonic", lambda: 1e12)  # long idle
        with db.transaction() as tx:
            again = tx.connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
            tx.commit()
        assert pings and again != backend
    finally:
        db.dispose()


@pytest.mark.postgres
def test_writes_with_the_commit_refuse_a_unit_of_work(pg_db: Database) -> None:
    """An ORM unit of work would never send them: refused at once rather than lost."""
    with pg_db.uow() as uow, pytest.raises(RuntimeError, match="transaction"):
        write_with_commit(uow.session.connection(), _COUNTERS_INSERT, _counter("lost"))
