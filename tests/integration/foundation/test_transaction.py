"""The Core write transaction (``Database.transaction``) and its pipelined tail on PostgreSQL:
committed once or not at all, errors of pipelined statements raised as SQLAlchemy's own types at the
commit, and the pooled connection clean for the next user."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError

from lgo.store import migrate
from lgo.store.db import Database, pipeline_rest

_ADD = text(
    "INSERT INTO counters (name, token_hash, token_prefix, created_at) "
    "VALUES (:name, :name, 'p', CURRENT_TIMESTAMP)"
)
_NAMES = text("SELECT name FROM counters ORDER BY name")


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


def test_pipelined_tail_commits_everything(any_db: Database) -> None:
    with any_db.transaction() as tx:
        tx.connection.execute(_ADD, {"name": "before"})
        pipeline_rest(tx.connection)
        tx.connection.execute(_ADD, {"name": "tail-1"})
        tx.connection.execute(_ADD, {"name": "tail-2"})
        tx.commit()
    assert _names(any_db) == ["before", "tail-1", "tail-2"]


def test_pipelined_tail_error_commits_nothing(any_db: Database) -> None:
    """A unique violation in the tail (PostgreSQL: known only at the commit) is an IntegrityError
    and nothing of the transaction stays; the same pooled connection then works normally."""
    with pytest.raises(IntegrityError), any_db.transaction() as tx:
        tx.connection.execute(_ADD, {"name": "kept-out"})
        pipeline_rest(tx.connection)
        tx.connection.execute(_ADD, {"name": "twice"})
        tx.connection.execute(_ADD, {"name": "twice"})
        tx.connection.execute(_ADD, {"name": "after"})
        tx.commit()
    assert _names(any_db) == []
    for _ in range(3):  # more than one checkout of the pool's connections
        with any_db.transaction() as tx:
            assert "lgo_pipeline" not in tx.connection.info
            tx.connection.execute(_ADD, {"name": f"next-{_}"})
            tx.commit()
    assert _names(any_db) == ["next-0", "next-1", "next-2"]


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
