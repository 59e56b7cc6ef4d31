"""The Core write transaction (``Database.transaction``) and the writes sent with its COMMIT on
PostgreSQL (``write_with_commit``): committed once or not at all, values kept exactly, their errors
raised as SQLAlchemy's own types at the commit, and the pooled connection clean for the next user."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import Boolean, Date, Text, bindparam, insert, literal, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from lgo.store import migrate
from lgo.store.db import Database, execute_on_driver, execute_together, write_with_commit
from lgo.store.models import Counter
from lgo.store.models.dispensing import PrescriptionRow

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


@pytest.mark.parametrize(
    "url_fixture", ["sqlite_url", pytest.param("pg_url", marks=pytest.mark.postgres)]
)
def test_writes_go_on_the_connection_used_last(
    url_fixture: str, request: pytest.FixtureRequest
) -> None:
    """SQLite: its page cache is still valid (SQLite drops a connection's cache after a write it
    did not make, and reloading it cost a dispensation ~40 page reads). PostgreSQL: one backend
    stays hot with its prepared statements instead of a counter's requests rotating through all."""
    db = Database(request.getfixturevalue(url_fixture))
    migrate.upgrade(db)
    try:
        older, newer = db.engine.connect(), db.engine.connect()  # two connections in the pool
        last = older.connection.dbapi_connection
        assert newer.connection.dbapi_connection is not last
        newer.close()
        older.close()  # handed back last
        for name in ("a", "b", "c"):
            with db.transaction() as tx:
                assert tx.connection.connection.dbapi_connection is last
                tx.connection.execute(_ADD, {"name": name})
                tx.commit()
        assert _names(db) == ["a", "b", "c"]
    finally:
        db.dispose()


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


# ------------------------------------------- PostgreSQL: the COMMIT's statements, prepared


def _prepared_names(db: Database) -> list[str]:
    """The lgo statements prepared in the session of the pool's connection."""
    with db.engine.connect() as connection:
        rows = connection.exec_driver_sql(
            "SELECT name FROM pg_prepared_statements WHERE name LIKE 'lgo_%%' ORDER BY name"
        )
        names = list(rows.scalars())
        connection.commit()
    return names


def _write_one(db: Database, name: str) -> str:
    """One transaction writing a counter with its COMMIT; its message as sent."""
    with db.transaction() as tx:
        write_with_commit(tx.connection, _COUNTERS_INSERT, _counter(name))
        message = "\n".join(tx.connection.info["lgo_with_commit"])
        tx.commit()
    return message


_JOINED = text(
    "INSERT INTO counters (name, token_hash, token_prefix, created_at) "
    "VALUES (array_to_string(:parts, '|', '<null>'), :name, 'p', CURRENT_TIMESTAMP)"
).bindparams(bindparam("parts", type_=ARRAY(Text)))


@pytest.mark.postgres
def test_lists_written_with_the_commit_keep_every_element(pg_db: Database) -> None:
    """A list of texts, numbers and NULLs (the server-side append's parts, PostgreSQL arrays)
    keeps each element exactly: quotes, backslashes, braces, commas, separators, the word NULL,
    empty texts."""
    parts = ['a"b', "c\\d", "{x,y}", "", "NULL", None, 7, "O'Brien; --", "é\n%", '\\"']
    with pg_db.transaction() as tx:
        write_with_commit(tx.connection, _JOINED, {"parts": parts, "name": "joined"})
        tx.commit()
    assert _names(pg_db) == ["|".join("<null>" if p is None else str(p) for p in parts)]


@pytest.mark.postgres
def test_writes_with_the_commit_are_prepared_once_per_connection(pg_url: str) -> None:
    """The message names a statement prepared once in the session (not parsed and planned each
    time); a new connection (pool recycled, reconnected) prepares it again."""
    db = Database(pg_url, pool_size=1)
    migrate.upgrade(db)
    try:
        first = _write_one(db, "p-1")
        assert first.startswith("EXECUTE lgo_") and "INSERT" not in first
        prepared = _prepared_names(db)
        assert len(prepared) == 1 and prepared[0] in first
        _write_one(db, "p-2")
        assert _prepared_names(db) == prepared  # same name, prepared once
        db.engine.dispose()  # every pooled connection closed: the next one is new
        _write_one(db, "p-3")
        assert _prepared_names(db) == prepared
    finally:
        db.dispose()
    assert _names(Database(pg_url)) == ["p-1", "p-2", "p-3"]


@pytest.mark.postgres
def test_prepared_writes_survive_a_rollback_and_a_changed_table(pg_url: str) -> None:
    """psycopg drops the session's prepared statements at a ROLLBACK once it prepared its own
    (``DEALLOCATE ALL``): they are prepared again. A table changed by a migration while they are
    prepared is re-planned by PostgreSQL: the rows land with the new column's default."""
    db = Database(pg_url, pool_size=1)
    migrate.upgrade(db)
    try:
        _write_one(db, "r-1")
        with db.transaction() as tx:  # a ROLLBACK that drops nothing: the name is still there
            tx.connection.execute(text("SELECT 1"))
        assert len(_prepared_names(db)) == 1
        _write_one(db, "r-1b")  # not prepared twice (that would fail)
        with db.transaction() as tx:  # psycopg prepares a statement of its own, then rolls back
            raw = tx.connection.connection.driver_connection
            raw.execute("SELECT name FROM counters", prepare=True)
        assert _prepared_names(db) == []  # gone with psycopg's DEALLOCATE ALL
        _write_one(db, "r-2")
        with db.engine.begin() as connection:
            connection.exec_driver_sql("ALTER TABLE counters ADD COLUMN note text DEFAULT 'n'")
        _write_one(db, "r-3")
        with db.engine.connect() as connection:
            rows = connection.exec_driver_sql("SELECT name, note FROM counters ORDER BY name")
            expected = [("r-1", "n"), ("r-1b", "n"), ("r-2", "n"), ("r-3", "n")]
            assert [tuple(row) for row in rows] == expected
    finally:
        db.dispose()


@pytest.mark.postgres
def test_a_prepared_write_dropped_behind_our_back_fails_once(pg_url: str) -> None:
    """Something else deallocates the session's statements: that transaction fails with the
    driver's error as SQLAlchemy's (nothing committed), the next one prepares again."""
    db = Database(pg_url, pool_size=1)
    migrate.upgrade(db)
    try:
        _write_one(db, "d-1")
        raw = db.engine.raw_connection()  # committed: nothing here says it happened
        try:
            raw.driver_connection.execute("DEALLOCATE ALL")  # type: ignore[union-attr]
            raw.commit()
        finally:
            raw.close()
        with pytest.raises(ProgrammingError, match="does not exist"):
            _write_one(db, "d-2")
        _write_one(db, "d-3")
    finally:
        db.dispose()
    assert _names(Database(pg_url)) == ["d-1", "d-3"]


# ---------------------------------------- execute_together: several statements, one round trip


def test_statements_sent_together_are_in_the_transaction(any_db: Database) -> None:
    """In order, each answered (PostgreSQL: one pipeline, BEGIN included): a rollback undoes them,
    a commit keeps them, awkward text comes back as given, a read sees the write before it."""
    awkward = ["O'Brien 100%", "a;\nb", "Hélène \\ d", "%(name)s", "$1", "x" * 60]
    read = {"names": awkward}
    steps = [*((_COUNTERS_INSERT, _counter(name)) for name in awkward), (_DRIVER_READ, read)]
    with any_db.transaction() as tx:
        results = execute_together(tx.connection, steps)
    assert [r.rowcount for r in results[:-1]] == [1] * len(awkward)
    assert sorted(row[0] for row in results[-1].rows) == sorted(awkward)
    assert _names(any_db) == []  # left without commit: rolled back, BEGIN was sent first
    with any_db.transaction() as tx:
        execute_together(tx.connection, steps)
        tx.commit()
    assert _names(any_db) == sorted(awkward)


def test_an_error_among_statements_sent_together_is_sqlalchemys(any_db: Database) -> None:
    """A unique violation in the middle: SQLAlchemy's IntegrityError (what the dispensation
    catches), nothing of the transaction kept, the pooled connection clean for the next user."""
    steps = [
        (_COUNTERS_INSERT, _counter("first")),
        (_COUNTERS_INSERT, _counter("first")),
        (_COUNTERS_INSERT, _counter("never")),
    ]
    with pytest.raises(IntegrityError), any_db.transaction() as tx:
        execute_together(tx.connection, steps)
        tx.commit()
    assert _names(any_db) == []
    for n in range(3):  # more than one checkout of the pool's connections
        with any_db.transaction() as tx:
            execute_together(tx.connection, [(_COUNTERS_INSERT, _counter(f"next-{n}"))])
            write_with_commit(tx.connection, _COUNTERS_INSERT, _counter(f"with-{n}"))
            tx.commit()
    assert _names(any_db) == sorted(f"{kind}-{n}" for kind in ("next", "with") for n in range(3))


# ---------------------------------------------------------------- execute_on_driver

_COUNTERS = Counter.__table__
# Built once, as the contract asks: a statement object is its compiled SQL's cache key.
_DRIVER_READ = (
    select(
        _COUNTERS.c.name,
        _COUNTERS.c.created_at,
        _COUNTERS.c.revoked_at,
        literal(True, Boolean()),
        literal(date(2026, 1, 2), Date()),
    )
    .where(_COUNTERS.c.name.in_(bindparam("names", expanding=True)))
    .order_by(_COUNTERS.c.name)
)


def test_driver_execution_reads_and_writes_what_sqlalchemy_does(any_db: Database) -> None:
    """Values through SQLAlchemy's bind processors (aware datetimes stored as UTC), rows through its
    result processors (booleans and dates on SQLite, aware datetimes back), an IN list expanded:
    the same rows as ``Connection.execute`` gives."""
    created = datetime(2026, 3, 1, 12, 30, 15, 250, tzinfo=timezone(timedelta(hours=1)))
    with any_db.transaction() as tx:
        single = {**_counter("d-one"), "created_at": created}
        assert execute_on_driver(tx.connection, _COUNTERS_INSERT, single).rowcount == 1
        execute_on_driver(tx.connection, _COUNTERS_INSERT, [_counter("d-two"), _counter("d-3")])
        tx.commit()
    with any_db.transaction() as tx:
        names = {"names": ["d-one", "d-two"]}
        rows = execute_on_driver(tx.connection, _DRIVER_READ, names).rows
        expected = [tuple(row) for row in tx.connection.execute(_DRIVER_READ, names)]
    assert rows == expected
    assert [row[0] for row in rows] == ["d-one", "d-two"]
    assert rows[0][1] == created and rows[0][1].tzinfo == UTC
    assert rows[0][2:] == (None, True, date(2026, 1, 2))


def test_driver_execution_errors_are_sqlalchemys_and_commit_nothing(any_db: Database) -> None:
    """A unique violation is SQLAlchemy's IntegrityError (what the dispensation catches to replay
    or refuse); the transaction commits nothing and the pooled connection works afterwards."""
    with pytest.raises(IntegrityError), any_db.transaction() as tx:
        execute_on_driver(tx.connection, _COUNTERS_INSERT, _counter("twice"))
        execute_on_driver(tx.connection, _COUNTERS_INSERT, _counter("twice"))
        tx.commit()
    assert _names(any_db) == []
    for n in range(3):
        with any_db.transaction() as tx:
            execute_on_driver(tx.connection, _COUNTERS_INSERT, _counter(f"next-{n}"))
            tx.commit()
    assert _names(any_db) == ["next-0", "next-1", "next-2"]


def test_driver_execution_refuses_what_only_sqlalchemy_would_fill(any_db: Database) -> None:
    """A column with a Python-side default left out would be sent NULL: refused before anything
    is sent, as are rows whose keys differ."""
    prescription = {
        "id": "P-DRIVER",
        "source": "paper",
        "patient_id": "x",
        "prescribed_on": date(2026, 1, 2),
        "prescriber_rpps": "10000000009",
        "content": "{}",
        "fetched_at": datetime.now(UTC),
    }  # no "version" (default=1)
    with any_db.transaction() as tx:
        with pytest.raises(ValueError, match="version"):
            execute_on_driver(tx.connection, insert(PrescriptionRow.__table__), prescription)
        with pytest.raises(ValueError, match="one shape"):
            short = {k: v for k, v in _counter("b").items() if k != "token_prefix"}
            execute_on_driver(tx.connection, _COUNTERS_INSERT, [_counter("a"), short])


@pytest.mark.postgres
def test_driver_execution_on_a_lost_connection_invalidates_it(pg_url: str) -> None:
    """PostgreSQL went away mid-transaction: SQLAlchemy's OperationalError, saying the connection
    was invalidated; leaving the block raises nothing else and the next transaction gets a new
    connection that works."""
    db = Database(pg_url)
    admin = Database(pg_url)
    migrate.upgrade(db)
    try:
        with pytest.raises(OperationalError) as lost, db.transaction() as tx:
            backend = tx.connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
            with admin.transaction() as kill:
                kill.connection.execute(text("SELECT pg_terminate_backend(:p)"), {"p": backend})
            execute_on_driver(tx.connection, _COUNTERS_INSERT, _counter("lost"))
        assert lost.value.connection_invalidated
        with db.transaction() as tx:
            execute_on_driver(tx.connection, _COUNTERS_INSERT, _counter("after"))
            tx.commit()
        assert _names(db) == ["after"]
    finally:
        db.dispose()
        admin.dispose()


def test_driver_values_are_what_sqlalchemy_constructs(
    any_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The values a dispensation's statements send, from their plan decided once per shape, are
    those SQLAlchemy's ``construct_params`` (and its bind processors) builds on every call."""
    from lgo.store import db as store_db
    from tests.bench.measure_dispensing import dispense_many

    planned, compared = store_db._DriverSQL.values, []

    def checked(driver: Any, row: Any) -> dict[str, Any]:
        values = planned(driver, row)
        if driver.plan is not None:
            assert values == driver.constructed(row)
            compared.append(driver.compiled.string)
        return values

    # SQLite's values are a list in the order of the SQL's ``?``, built from the plan at once.
    bound, listed = store_db._DriverSQL.bound, []

    def checked_bound(driver: Any, row: Any) -> tuple[str, Any]:
        sql, values = bound(driver, row)
        if driver.positional is not None:
            constructed = driver.constructed(row)
            assert values == [constructed[name] for name in driver.compiled.positiontup]
            listed.append(sql)
        return sql, values

    monkeypatch.setattr(store_db._DriverSQL, "values", checked)
    monkeypatch.setattr(store_db._DriverSQL, "bound", checked_bound)
    dispense_many(any_db, 1, "plan")  # a paper e-prescription with a list I line
    if any_db.dialect == "sqlite":
        compared = listed  # the plan's list, not its dict
    assert len(compared) >= 5  # the key, the prescription, the dispensation, its lines…
    assert any("ordonnancier" in sql for sql in compared) or any_db.dialect == "postgresql"


def test_driver_values_of_literals_callables_and_required_binds(any_db: Database) -> None:
    from lgo.store.db import _driver_sql

    dialect = any_db.engine.dialect
    when = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    literal_where = (
        select(_COUNTERS.c.name)
        .where(_COUNTERS.c.name == "x'; --")
        .where(_COUNTERS.c.created_at < bindparam("before"))
    )
    driver = _driver_sql(dialect, literal_where, ("before",))
    assert driver.plan is not None
    assert driver.values({"before": when}) == driver.constructed({"before": when})
    assert "x'; --" in driver.values({"before": when}).values()
    if driver.positional is not None:  # SQLite: the list in the order of its ``?``
        constructed = driver.constructed({"before": when})
        expected = [constructed[name] for name in driver.compiled.positiontup]
        assert driver.bound({"before": when}) == (driver.compiled.string, expected)
        assert "x'; --" in expected
    computed = select(_COUNTERS.c.name).where(
        _COUNTERS.c.name == bindparam("n", callable_=lambda: "computed")
    )
    assert _driver_sql(dialect, computed, ()).plan is None  # computed per call, as before
    assert _driver_sql(dialect, computed, ()).values({}) == {"n": "computed"}
