"""Engines and the unit of work.

SQLite (embedded default): WAL journal, ``synchronous=FULL`` (an acknowledged commit survives a power
cut), foreign keys on, and every write transaction opened with ``BEGIN IMMEDIATE`` so that the writer
lock is taken up front: a deferred ``BEGIN`` that reads then writes gets ``SQLITE_BUSY`` without
waiting in WAL mode. Read-only units of work use a second engine with plain deferred ``BEGIN``, so
reads never queue behind the writer.

PostgreSQL: one engine, READ COMMITTED; services take row locks (``FOR UPDATE [SKIP LOCKED]``) where
they read-modify-write, and rely on constraints for exactly-once. Its pool keeps at most
``pool_size`` connections (``database.pool_size``), opened on first need and then kept, with no
overflow: a rush never opens or closes a connection (each one is a PostgreSQL backend process to
fork and authenticate); a request beyond the pool waits up to ``pool_timeout_s`` for a free one.
A connection is pinged before use only when it sat idle in the pool (``PING_AFTER_IDLE_S``), not on
every checkout.

Two kinds of transaction: :class:`UnitOfWork` (an ORM Session, for the services that load and change
mapped objects) and :class:`Transaction` (a Core Connection, for hot paths written as plain
statements: no Session to build, flush or close). A :class:`Transaction` on PostgreSQL can send the
last writes of its work with the COMMIT (:func:`write_with_commit`): they leave in one message, so a
row lock taken just before them is held for one round trip, not one per statement, and PostgreSQL
never waits for the daemon's next statement while holding it. That message is sent with the simple
query protocol (several statements in one message), where PostgreSQL would parse and plan every
statement each time: each statement is therefore prepared once per connection (``PREPARE lgo_…``,
one round trip the first time a connection sends it) and the message says ``EXECUTE lgo_…(values)``,
planned from the session's cache. A prepared statement belongs to the PostgreSQL session: it
outlives a ROLLBACK, is re-planned by the server after a table changes, and a new connection (pool
recycle, reconnect) prepares again (the names are remembered per driver connection). Statements
whose answers are needed but whose values do not depend on each other's answers go together in
one round trip (:func:`execute_together`, a psycopg pipeline, with the BEGIN psycopg opens the
transaction with).
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import TracebackType
from typing import Any, cast
from weakref import WeakKeyDictionary

from sqlalchemy import (
    Connection,
    Dialect,
    Engine,
    Insert,
    TextClause,
    Update,
    create_engine,
    event,
    text,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement, ReturnsRows


def normalise_url(url: str) -> str:
    """Pick psycopg 3 for PostgreSQL URLs given without a driver."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _sqlite_engine(url: str, *, immediate: bool, busy_timeout_ms: int) -> Engine:
    # LIFO: the connection that wrote last is taken again. SQLite drops a connection's page cache
    # when another connection has written since its last transaction, so a FIFO pool alternating
    # two connections re-read ~40 pages from the WAL per dispensation (strace: 4,000 pread64 for
    # 100 dispensations against 280 with LIFO); one writer at a time needs one warm connection.
    engine = create_engine(url, connect_args={"check_same_thread": False}, pool_use_lifo=True)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Hand transaction control to SQLAlchemy's "begin" hook (pysqlite's implicit BEGIN is off).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # On the driver's cursor, as the commit's statements (see execute_on_driver).
        _on_cursor(connection, "BEGIN IMMEDIATE" if immediate else "BEGIN", (), many=False)

    return engine


def _create_private(path: Path) -> None:
    """Create the SQLite file 0600 in a 0700 folder before SQLite does: its -wal and -shm files
    take the database file's mode, so they stay private whatever the caller's umask."""
    if path.exists():
        return
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))


# Kept in the pooled DBAPI connection's own ``info``: when it went back to the pool, and the
# statements a Transaction sends with its COMMIT.
_IDLE_SINCE = "lgo_idle_since"
_TRANSACTION = "lgo_transaction"
_WITH_COMMIT = "lgo_with_commit"
_AFTER_COMMIT = "lgo_after_commit"
# Same default as the ``database.pool_size`` setting (see there for how it is sized).
DEFAULT_POOL_SIZE = 8
# A pooled PostgreSQL connection idle longer than this is pinged before use (see below).
PING_AFTER_IDLE_S = 5.0


def _ping_after_idle(engine: Engine, idle_s: float) -> None:
    """SQLAlchemy's ``pool_pre_ping`` pings on every checkout: one more round trip and statement
    per transaction, on both sides' CPU, in a rush where connections come back within
    milliseconds. A connection that sat idle (PostgreSQL restarted, a firewall dropped it) is
    still pinged, and a dead one replaced before the transaction starts."""

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get(_IDLE_SINCE)  # None: a connection just opened
        if since is None or time.monotonic() - since < idle_s:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as exc:
            # The pool drops this connection and checks out another (a new one if need be).
            raise DisconnectionError() from exc


def _forget_prepared_on_rollback(engine: Engine) -> None:
    """psycopg answers a ROLLBACK by dropping every prepared statement of the session (``DEALLOCATE
    ALL``, when it had prepared statements of its own): the names :func:`write_with_commit`
    prepared on that connection are forgotten before it; the next one to need them asks the
    server which are left (one round trip) and prepares the others."""
    import psycopg

    idle = psycopg.pq.TransactionStatus.IDLE

    def forget(driver_connection: Any) -> None:
        if driver_connection.info.transaction_status != idle:  # a ROLLBACK will be sent
            _PREPARED.pop(driver_connection, None)

    @event.listens_for(engine, "rollback")
    def _on_rollback(connection: Connection) -> None:
        if not connection.invalidated:
            forget(connection.connection.driver_connection)

    @event.listens_for(engine, "reset")
    def _on_reset(dbapi_connection: Any, _record: Any, _state: Any) -> None:
        forget(dbapi_connection)


class Database:
    def __init__(
        self,
        url: str,
        *,
        busy_timeout_ms: int = 30_000,
        echo: bool = False,
        pool_size: int = DEFAULT_POOL_SIZE,
        pool_timeout_s: float = 30.0,
    ) -> None:
        self.url = normalise_url(url)
        parsed = make_url(self.url)
        self.dialect = parsed.get_backend_name()
        if self.dialect == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                _create_private(Path(parsed.database))
            self.engine = _sqlite_engine(self.url, immediate=True, busy_timeout_ms=busy_timeout_ms)
            self.read_engine = _sqlite_engine(
                self.url, immediate=False, busy_timeout_ms=busy_timeout_ms
            )
        else:
            self.engine = create_engine(
                self.url,
                echo=echo,
                pool_size=pool_size,
                max_overflow=0,  # an overflow connection is opened, then closed on return
                pool_timeout=pool_timeout_s,
                # The connection used last first: a counter's serial requests keep one backend
                # hot (its caches, its prepared statements) where FIFO rotated through all that
                # were ever opened; the others idle, and are pinged before use (below).
                pool_use_lifo=True,
            )
            _ping_after_idle(self.engine, PING_AFTER_IDLE_S)
            _forget_prepared_on_rollback(self.engine)
            self.read_engine = self.engine
        self._writer = sessionmaker(self.engine, expire_on_commit=False)
        self._reader = sessionmaker(self.read_engine, expire_on_commit=False)

    def uow(self, *, readonly: bool = False) -> UnitOfWork:
        return UnitOfWork(self._reader if readonly else self._writer)

    def transaction(self) -> Transaction:
        """A write transaction on a Core Connection (see :class:`Transaction`)."""
        return Transaction(self.engine)

    def ping(self) -> None:
        with self.read_engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()
        if self.read_engine is not self.engine:
            self.read_engine.dispose()

    @contextmanager
    def connection(self) -> Iterator[Any]:
        with self.engine.begin() as connection:
            yield connection


class UnitOfWork:
    """One database transaction. Leaving the block without ``commit()`` rolls everything back."""

    session: Session

    def __init__(self, factory: sessionmaker[Session]) -> None:
        self._factory = factory
        self.committed = False

    def __enter__(self) -> UnitOfWork:
        self.session = self._factory()
        self.session.begin()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if not self.committed:
                self.session.rollback()
        finally:
            self.session.close()

    def commit(self) -> None:
        self.session.commit()
        self.committed = True

    def rollback(self) -> None:
        self.session.rollback()


class Transaction:
    """One write transaction on a Core Connection: what :class:`UnitOfWork` does without the ORM
    Session, whose begin/commit/close cost more CPU than the statements of a short transaction.
    Leaving the block without ``commit()`` rolls everything back (SQLite: BEGIN IMMEDIATE, as for
    any write)."""

    connection: Connection

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self.committed = False

    def __enter__(self) -> Transaction:
        self.connection = self._engine.connect()
        try:
            self._root = self.connection.begin()
        except BaseException:
            self.connection.close()
            raise
        # The pooled DBAPI connection's own dict, looked up once (``Connection.info`` walks two
        # objects each time). It outlives the checkout; invalidating the connection clears it.
        self._info = self.connection.info
        self._info[_TRANSACTION] = True
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            # What this transaction left in ``info`` goes with it (commit() took the rest); a lost
            # connection's dict was cleared when it was invalidated.
            info = self._info
            info.pop(_TRANSACTION, None)
            if not self.committed:
                info.pop(_WITH_COMMIT, None)
                info.pop(_AFTER_COMMIT, None)
                self._root.rollback()
        finally:
            self.connection.close()

    def commit(self) -> None:
        """COMMIT, with the writes given to :func:`write_with_commit` in the same message; an error
        of any of them (a unique violation…) is raised here as SQLAlchemy's own type and nothing
        is committed (leaving the block rolls back)."""
        with_commit = self._info.pop(_WITH_COMMIT, None)
        callbacks = self._info.pop(_AFTER_COMMIT, [])
        first = None
        if with_commit:
            # One simple-protocol message: the writes, then COMMIT. If one of them fails,
            # PostgreSQL skips the rest, COMMIT included, and the transaction stays failed until
            # the rollback of __exit__. On success the driver sees no transaction left, so the
            # commit below sends nothing more.
            message = ";\n".join([*with_commit, "COMMIT"])
            try:
                first = _first_value(self.connection, message)
            except DBAPIError as exc:
                _forget_prepared(self.connection, exc)
                raise
        self._root.commit()
        self.committed = True
        for callback in callbacks:
            callback(first)


def after_commit(connection: Connection, callback: Callable[[Any], None]) -> None:
    """Call ``callback`` once the :class:`Transaction` of ``connection`` has committed, with the
    first value the commit's message returned (PostgreSQL: the first column of the first row of
    the first statement given to :func:`write_with_commit` that returns rows; None on SQLite or
    without one)."""
    if _TRANSACTION not in connection.info:
        raise RuntimeError("after_commit needs a Database.transaction()")
    connection.info.setdefault(_AFTER_COMMIT, []).append(callback)


def write_with_commit(
    connection: Connection,
    statement: Insert | Update | TextClause,
    rows: Mapping[str, Any] | Sequence[Mapping[str, Any]],
) -> None:
    """Write ``statement`` (an INSERT or UPDATE, one per row of ``rows``) as part of the COMMIT of
    this :class:`Transaction`: on PostgreSQL these writes and the COMMIT leave in one message, so
    a row lock taken just before is held for one round trip and no daemon work between
    statements; their errors are raised by ``commit()``. Values are bound by psycopg on the
    client side (its quoting, the simple query protocol allows several statements). SQLite
    (in-process, no round trip) runs it at once, on the driver (:func:`execute_on_driver`)."""
    many = [rows] if isinstance(rows, Mapping) else list(rows)
    if connection.dialect.name != "postgresql":
        execute_on_driver(connection, statement, many)
        return
    if _TRANSACTION not in connection.info:
        # Nothing else sends them: they would be lost without a word.
        raise RuntimeError("write_with_commit needs a Database.transaction()")
    import psycopg

    driver_connection = connection.connection.driver_connection
    cursor = psycopg.ClientCursor(driver_connection)  # type: ignore[arg-type]
    pending = connection.info.setdefault(_WITH_COMMIT, [])
    prepared = _prepared_on(connection, driver_connection) if many else set()
    for row in many:
        driver = _driver_sql(connection.dialect, statement, tuple(row))
        named = _named(driver.compiled.string)
        if named.name not in prepared:
            # Once per connection: PREPARE is not transactional (a rollback keeps it).
            _on_cursor(connection, named.prepare, None, many=False)
            prepared.add(named.name)
        values = {
            k: _array_text(v) if type(v) is list else v for k, v in driver.values(row).items()
        }
        pending.append(cursor.mogrify(named.execute, values))


def _array_text(items: list[Any]) -> Any:
    """A flat list of texts, integers and NULLs as PostgreSQL's array input text (``{"a",1,NULL}``),
    then quoted by psycopg as any text (the EXECUTE's parameter gives its type): psycopg's own
    list quoting costs several times more Python. Anything else is left to psycopg."""
    parts = []
    for item in items:
        if item is None:
            parts.append("NULL")
        elif type(item) is int:
            parts.append(str(item))
        elif type(item) is str:
            parts.append('"' + item.replace("\\", "\\\\").replace('"', '\\"') + '"')
        else:
            return items
    return "{" + ",".join(parts) + "}"


def _prepared_on(connection: Connection, driver_connection: Any) -> set[str]:
    """The lgo statements prepared in this connection's session: remembered, or asked of the
    server (a new connection, or after a ROLLBACK, which may or may not have dropped them)."""
    prepared = _PREPARED.get(driver_connection)
    if prepared is None:
        rows, _ = _on_cursor(connection, _PREPARED_NAMES, None, many=False)
        prepared = _PREPARED[driver_connection] = {name for (name,) in rows}
    return prepared


# PostgreSQL: the names prepared on each driver connection (absent: to be asked of the server).
_PREPARED: WeakKeyDictionary[Any, set[str]] = WeakKeyDictionary()
_PREPARED_NAMES = "SELECT name FROM pg_prepared_statements WHERE name LIKE 'lgo_%'"
# The driver's placeholders in SQLAlchemy's psycopg SQL: ``%(name)s``, and ``%%`` for ``%``.
_PYFORMAT = re.compile(r"%%|%\((\w+)\)s")
_EXECUTE = re.compile(r"EXECUTE (lgo_\w+)")
_WHAT = re.compile(r"^\s*(?:(INSERT) INTO|(UPDATE)|(SELECT))\s+(\w+)", re.IGNORECASE)
# name -> the SQL it stands for, for readers of the messages (unprepared).
_NAMED_SQL: dict[str, str] = {}


@dataclass(frozen=True, slots=True)
class _Named:
    name: str
    prepare: str  # PREPARE name AS <the statement, $1…>
    execute: str  # EXECUTE name(%(value)s, …), bound on the client side


@lru_cache(maxsize=64)
def _named(sql: str) -> _Named:
    """``sql`` (psycopg's pyformat) as a prepared statement: named by its text, so the same
    statement has the same name on every connection and in every process, and by what it does
    (``lgo_insert_dispensation_lines_…``, ``lgo_select_ordonnancier_append_…``) for whoever reads
    ``pg_stat_activity``."""
    order: dict[str, int] = {}

    def placeholder(match: re.Match[str]) -> str:
        if match.group(1) is None:
            return "%"
        return f"${order.setdefault(match.group(1), len(order) + 1)}"

    body = _PYFORMAT.sub(placeholder, sql)
    what = _WHAT.match(sql)
    verb = next(word for word in what.groups() if word) if what else "run"
    target = what.group(4) if what else "statement"
    digest = hashlib.sha256(sql.encode()).hexdigest()[:12]
    name = f"lgo_{verb.lower()}_{target[:36]}_{digest}"
    _NAMED_SQL[name] = sql
    values = ", ".join(f"%({key})s" for key in order)
    return _Named(
        name,
        f"PREPARE {name} AS {body}",
        f"EXECUTE {name}({values})" if order else f"EXECUTE {name}",
    )


def _forget_prepared(connection: Connection, exc: DBAPIError) -> None:
    """A name missing on the server (a ``DEALLOCATE ALL`` or ``DISCARD ALL`` sent by other code):
    this transaction fails; the connection's next one asks the server and prepares again."""
    if getattr(exc.orig, "sqlstate", None) == "26000":  # invalid_sql_statement_name
        _PREPARED.pop(connection.connection.driver_connection, None)


def unprepared(message: str) -> str:
    """``message`` with each ``EXECUTE lgo_…`` shown as the statement it runs (values left out):
    for what counts statements or looks for one (tests, bench)."""
    return _EXECUTE.sub(lambda match: _NAMED_SQL.get(match.group(1), match.group(0)), message)


@dataclass(frozen=True, slots=True)
class DriverResult:
    """What :func:`execute_on_driver` gives back: the rows (result-processed tuples) and the row
    count the driver reported."""

    rows: list[tuple[Any, ...]]
    rowcount: int


def execute_on_driver(
    connection: Connection,
    statement: ClauseElement,
    params: Mapping[str, Any] | Sequence[Mapping[str, Any]],
) -> DriverResult:
    """Run ``statement`` (Core: an INSERT, UPDATE or SELECT) on the DB-API cursor of
    ``connection``, once, or once per row given a list (``executemany``).

    Why: ``Connection.execute`` costs ~35-45 µs of Python per statement (compiled cache lookup,
    execution context, events, result object), this ~10 µs, the bare cursor ~5 µs (an INSERT on
    SQLite, measured), and a dispensation sends ~11 statements. For the hot statements of a short
    write transaction only.

    The contract: the SQL is SQLAlchemy's, compiled once per dialect, statement object and set of
    value names (:func:`_driver_sql`); values go through SQLAlchemy's bind processors and the rows
    through its result processors (dates on SQLite, booleans, ``UTCDateTime``…), exactly as
    ``Connection.execute`` would. A driver error is raised as SQLAlchemy's own type
    (``IntegrityError``…), a lost connection invalidated as SQLAlchemy does. It does not: run
    Python-side column defaults or ``onupdate`` (refused: give those values), fire SQLAlchemy's
    cursor events (``before_cursor_execute``: count statements at the driver instead), know the
    ORM, or read anything else than plain rows. Statements built once at import (their identity
    is the cache key): never one built per call."""
    many = [params] if type(params) is dict or isinstance(params, Mapping) else list(params)
    if not many:
        return DriverResult([], 0)
    driver = _driver_sql(connection.dialect, statement, tuple(many[0]))
    if len(many) > 1:
        if any(row.keys() != many[0].keys() for row in many) or driver.expanding:
            raise ValueError("execute_on_driver: rows of one shape (same keys, no IN list)")
        sql, values = driver.compiled.string, [driver.bound(row)[1] for row in many]
    else:
        sql, values = driver.bound(many[0])
    rows, rowcount = _on_cursor(connection, sql, values, many=len(many) > 1)
    return DriverResult(driver.processed(rows), rowcount)


def execute_together(
    connection: Connection, steps: Sequence[tuple[ClauseElement, Mapping[str, Any]]]
) -> list[DriverResult]:
    """Run ``steps`` (each a statement and its one row of values, as :func:`execute_on_driver`)
    in order, none of them needing another's answer: on PostgreSQL in one round trip (a psycopg
    pipeline: the statements, and the BEGIN psycopg sends to open the transaction, leave before
    any answer is read); SQLite (in-process, no round trip) runs them one after another. The
    first error is raised as SQLAlchemy's type (PostgreSQL then runs none of those after it)."""
    if connection.dialect.name != "postgresql":
        return [execute_on_driver(connection, statement, row) for statement, row in steps]
    drivers = [_driver_sql(connection.dialect, statement, tuple(row)) for statement, row in steps]
    bound = [driver.bound(row) for driver, (_, row) in zip(drivers, steps, strict=True)]
    cursors = [connection.connection.cursor() for _ in steps]
    try:
        with connection.connection.driver_connection.pipeline():  # type: ignore[union-attr]
            for cursor, (sql, values) in zip(cursors, bound, strict=True):
                cursor.execute(sql, values)
        return [
            DriverResult(
                driver.processed(cursor.fetchall() if cursor.description else []), cursor.rowcount
            )
            for driver, cursor in zip(drivers, cursors, strict=True)
        ]
    except connection.dialect.loaded_dbapi.Error as exc:
        sql = ";\n".join(sql for sql, _ in bound)
        raise _translated(connection, cursors[0], sql, [v for _, v in bound], exc) from exc
    finally:
        for cursor in cursors:
            cursor.close()


def _first_value(connection: Connection, message: str) -> Any:
    """Send ``message`` (several statements, values bound in its text) in one simple-protocol
    query on a cursor of the connection's DB-API connection: the first value of its first result
    with rows, or None. No parameters given: psycopg leaves every ``%`` as it is."""
    cursor = connection.connection.cursor()
    try:
        cursor.execute(message)
        while cursor.description is None:  # an INSERT or UPDATE: look at the next result
            if not cursor.nextset():
                return None
        row = cursor.fetchone()
        return None if row is None else row[0]
    except connection.dialect.loaded_dbapi.Error as exc:
        raise _translated(connection, cursor, message, None, exc) from exc
    finally:
        cursor.close()


def _on_cursor(connection: Connection, sql: str, values: Any, *, many: bool) -> tuple[Any, int]:
    """Run ``sql`` on a cursor of the connection's DB-API connection: its rows and row count."""
    cursor = connection.connection.cursor()
    try:
        if many:
            cursor.executemany(sql, values)
        else:
            cursor.execute(sql, values)
        rows = cursor.fetchall() if cursor.description is not None else []
        return rows, cursor.rowcount
    except connection.dialect.loaded_dbapi.Error as exc:
        raise _translated(connection, cursor, sql, values, exc) from exc
    finally:
        cursor.close()


def _translated(
    connection: Connection, cursor: Any, sql: str, values: Any, exc: Exception
) -> BaseException:
    """The driver's error as SQLAlchemy's type; the connection invalidated if it was lost."""
    dialect = connection.dialect
    lost = dialect.is_disconnect(cast(Any, exc), connection.connection.dbapi_connection, cursor)
    if lost:
        connection.invalidate(exc)
    return DBAPIError.instance(
        sql, values, exc, dialect.loaded_dbapi.Error, connection_invalidated=lost, dialect=dialect
    )


@lru_cache(maxsize=64)
def _driver_sql(dialect: Dialect, statement: ClauseElement, keys: tuple[str, ...]) -> _DriverSQL:
    """``statement`` compiled for the driver given values for ``keys``, once per shape."""
    compiled = statement.compile(dialect=dialect, column_keys=list(keys))
    assert isinstance(compiled, SQLCompiler)
    if compiled.insert_prefetch or compiled.update_prefetch:
        # SQLAlchemy's execution context would compute these; nothing here does.
        names = [c.name for c in [*compiled.insert_prefetch, *compiled.update_prefetch]]
        raise ValueError(f"values needed for the columns with Python defaults: {names}")
    processors: dict[str, Callable[[Any], Any]] = {}
    for bind, name in compiled.bind_names.items():
        processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if processor is not None:
            processors[name] = processor
    results: list[tuple[int, Callable[[Any], Any]]] = []
    if isinstance(statement, ReturnsRows):
        for index, column in enumerate(statement.exported_columns):
            result = column.type.dialect_impl(dialect).result_processor(dialect, None)
            if result is not None:
                results.append((index, result))
    expanding = "__[POSTCOMPILE_" in compiled.string
    plan = None if expanding else _plan(compiled, keys, processors)
    positional = None
    if plan is not None and compiled.positiontup is not None:
        sent = {bind.name: bind for bind in plan}
        if all(name in sent for name in compiled.positiontup):
            positional = tuple(sent[name] for name in compiled.positiontup)
    return _DriverSQL(compiled, processors, tuple(results), expanding, plan, positional)


@dataclass(frozen=True)
class _Bind:
    name: str  # as the driver gets it
    key: str | None  # the row's key giving the value; None: the statement's own ``value``
    value: Any
    processor: Callable[[Any], Any] | None


def _plan(
    compiled: SQLCompiler, keys: tuple[str, ...], processors: Mapping[str, Callable[[Any], Any]]
) -> tuple[_Bind, ...] | None:
    """What ``construct_params`` decides for every row of this shape, decided once (it looks each
    bind up in the row, then in the statement, on every call: a tenth of a dispensation's Python in
    the commit's thread). None where a value must be computed per call (a bind with a
    ``callable_``) or is missing (a required bind): ``construct_params`` then, as before."""
    given = set(keys)
    plan = []
    for bind, name in compiled.bind_names.items():
        if bind.key in given:
            key: str | None = bind.key
        elif name in given:
            key = name
        elif bind.callable or bind.required:
            return None
        else:
            key = None
        sent = compiled.escaped_bind_names.get(name, name)
        plan.append(_Bind(sent, key, bind.value if key is None else None, processors.get(name)))
    return tuple(plan)


@dataclass(frozen=True)
class _DriverSQL:
    compiled: SQLCompiler
    processors: dict[str, Callable[[Any], Any]]  # the conversions SQLAlchemy applies (booleans…)
    results: tuple[tuple[int, Callable[[Any], Any]], ...] = ()  # by column index
    expanding: bool = False  # an IN list, expanded per call
    plan: tuple[_Bind, ...] | None = None  # where each value comes from (see _plan)
    # The plan in the driver's order of values (SQLite's ``?``): the list it gets, built at once.
    positional: tuple[_Bind, ...] | None = None

    def values(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """Every value of the statement (the row's and its literals'), as SQLAlchemy sends them."""
        if self.plan is None:
            return self.constructed(row)
        values = {}
        for bind in self.plan:
            value = bind.value if bind.key is None else row[bind.key]
            values[bind.name] = value if bind.processor is None else bind.processor(value)
        return values

    def constructed(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """:meth:`values` as SQLAlchemy's ``construct_params`` builds them, bind by bind."""
        values = dict(self.compiled.construct_params(row) or {})
        for name, processor in self.processors.items():
            values[name] = processor(values[name])
        return values

    def bound(self, row: Mapping[str, Any]) -> tuple[str, Any]:
        """The SQL and its values in the driver's paramstyle (an ``IN`` list expanded)."""
        compiled = self.compiled
        if self.expanding:
            state = compiled.construct_expanded_state(row)
            values = dict(state.parameters)
            for name, processor in state.processors.items():
                if name in values:
                    values[name] = processor(values[name])
            if state.positiontup is None:
                return state.statement, values
            return state.statement, [values[name] for name in state.positiontup]
        if self.positional is not None:
            listed = []
            for bind in self.positional:
                value = bind.value if bind.key is None else row[bind.key]
                listed.append(value if bind.processor is None else bind.processor(value))
            return compiled.string, listed
        values = self.values(row)
        if compiled.positiontup is None:
            return compiled.string, values
        return compiled.string, [values[name] for name in compiled.positiontup]

    def processed(self, rows: Sequence[Any]) -> list[tuple[Any, ...]]:
        if not self.results:
            return [tuple(row) for row in rows]
        done = []
        for row in rows:
            values = list(row)
            for index, processor in self.results:
                values[index] = processor(values[index])
            done.append(tuple(values))
        return done
