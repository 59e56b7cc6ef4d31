"""The active counters' token hashes, held in memory by the daemon (docs/api.md, "Authentification").

A request is authenticated against a dict of SHA-256 hashes, without a database round trip, as long
as a cheap change signal says the ``counters`` table has not changed since the dict was loaded:

- SQLite: ``PRAGMA data_version`` on a private connection (a few microseconds, no file read when
  nothing changed). It moves whenever any other connection, in any process, commits to the file,
  dispensations included; the one-row ``counter_generation`` table, bumped by triggers on any change
  to ``counters`` (migration branch ``counter_generation``), is then read (one integer) and the dict
  reloaded only if it moved. In WAL mode (lgo's) the PRAGMA itself runs only when the WAL-index
  header in the ``-shm`` file, which every commit rewrites, has changed since the last check: a
  request between two commits costs a 96-byte comparison.
- PostgreSQL: a connection that ``LISTEN``s on ``lgo_counters``; a revocation sends ``NOTIFY`` in
  its own transaction and waits until every listening daemon acknowledges (lgo.services.counters).
  Each request first drains whatever the listener's socket already holds (one ``poll`` with a zero
  timeout on the socket registered once), so a notification that has arrived is never skipped.
  While the listener is not connected (start, lost connection, retry) every request is checked in
  the database, as before.

A token missing from the dict is looked up in the database before being refused, so a counter
added a moment ago works at once; only revocation needs the signal, and it cannot be missed.
"""

from __future__ import annotations

import mmap
import os
import select
import sqlite3
import threading
from typing import TYPE_CHECKING, Any

from sqlalchemy import select as sql_select

from lgo.core.logs import get_logger
from lgo.services.counters import (
    ACK_CHANNEL,
    CHANGED_CHANNEL,
    LISTENER_NAME,
    CounterInfo,
    authenticate,
    hash_token,
    info_of,
    well_formed,
)
from lgo.store.db import Database
from lgo.store.models import Counter

if TYPE_CHECKING:
    import psycopg

log = get_logger(__name__)
RETRY_S = 2.0


class CounterTokens:
    """``authenticate(token)`` against the in-memory hashes; ``start``/``stop`` run the PostgreSQL
    listener (a no-op on SQLite)."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._lock = threading.Lock()
        self._by_hash: dict[str, CounterInfo] = {}
        self._watch: _SqliteWatch | _PgWatch = (
            _PgWatch(db, self._lock) if db.dialect == "postgresql" else _SqliteWatch(db)
        )
        self._seen: int | None = None  # the watch's generation the dict was loaded at

    async def start(self) -> None:
        self._watch.start()

    async def stop(self) -> None:
        self._watch.stop()

    def has_signal(self) -> bool:
        """Whether the change signal is trustworthy now (False: every request goes to the DB)."""
        with self._lock:
            return self._watch.generation() is not None

    def cached(self, token: str) -> CounterInfo | None:
        """The token's counter from memory (no database round trip, safe on the event loop);
        None when memory cannot answer: unknown token, no signal, or the counters changed since
        the load. Then :meth:`authenticate` decides."""
        if not well_formed(token):
            return None
        with self._lock:
            generation = self._watch.generation()
            if generation is None or generation != self._seen:
                return None
            return self._by_hash.get(hash_token(token))

    def authenticate(self, token: str) -> CounterInfo | None:
        """The token's active counter, or None (may read the database: call it off the loop)."""
        if not well_formed(token):
            return None
        digest = hash_token(token)
        with self._lock:
            generation = self._watch.generation()
            if generation is None:  # no trustworthy signal: the database decides
                return authenticate(self._db, token)
            if generation != self._seen:
                self._by_hash = self._load()
                self._seen = generation
            found = self._by_hash.get(digest)
        # Unknown here: perhaps a counter created after the load (adding needs no signal).
        return found if found is not None else authenticate(self._db, token)

    def _load(self) -> dict[str, CounterInfo]:
        with self._db.uow(readonly=True) as uow:
            rows = uow.session.scalars(sql_select(Counter).where(Counter.revoked_at.is_(None)))
            return {row.token_hash: info_of(row) for row in rows}


# The two copies of the WAL-index header at the start of the -shm file (sqlite.org/walformat.html):
# a writer rewrites them at every commit (``iChange`` counts transactions) and when the WAL
# restarts, before its COMMIT returns.
_WAL_INDEX_HEADERS = 96


class _SqliteWatch:
    """Generation = the ``counter_generation`` row, read only when ``PRAGMA data_version`` of a
    private connection says another connection committed (dispensations move data_version too, but
    only a change to ``counters`` moves the row).

    In WAL mode data_version moves only when the WAL-index header in the -shm file has changed, so
    the header's bytes are compared first (read from memory, no SQLite call) and the PRAGMA runs
    only when they differ. The private connection keeps the database in WAL mode meanwhile
    (SQLite refuses to leave WAL while another connection is open) and the -shm file in place."""

    def __init__(self, db: Database) -> None:
        self._path = db.engine.url.database
        self._conn: sqlite3.Connection | None = None
        self._version: int | None = None
        self._generation = 0
        self._shm: mmap.mmap | None = None
        self._header = b""  # the headers' bytes when data_version was last read

    def start(self) -> None:
        return None

    def stop(self) -> None:
        if self._shm is not None:
            self._shm.close()
            self._shm = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def generation(self) -> int | None:
        """Called under the cache's lock."""
        if not self._path or self._path == ":memory:":
            return None
        try:
            return self._check()
        except sqlite3.Error as exc:
            log.warning("token_watch_failed", error=type(exc).__name__)
            self.stop()
            return None

    def _check(self) -> int:
        assert self._path is not None
        if self._conn is None:
            # Autocommit, never writes: its data_version moves with every other connection's commit.
            self._conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            self._conn.execute("PRAGMA busy_timeout=5000")
            self._version = None
            self._shm = _wal_index(self._conn, self._path)
        header = b""
        if self._shm is not None:
            header = self._shm[:_WAL_INDEX_HEADERS]
            if header == self._header and self._version is not None:
                return self._generation  # no commit since data_version was read
        version = self._conn.execute("PRAGMA data_version").fetchone()[0]
        self._header = header  # taken before the PRAGMA: a commit in between shows next time
        if version != self._version:
            # fetchall: the statement completes, so no read transaction is left open.
            ((generation,),) = self._conn.execute(
                "SELECT generation FROM counter_generation WHERE id = 1"
            ).fetchall()
            self._version, self._generation = version, generation
        return self._generation


def _wal_index(conn: sqlite3.Connection, path: str) -> mmap.mmap | None:
    """The -shm file mapped read-only, or None (then data_version is read at every check): not
    in WAL mode, or the file is not there as SQLite sizes it."""
    if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        return None
    conn.execute("PRAGMA schema_version").fetchone()  # a read: SQLite opens the -shm file
    try:
        with open(f"{path}-shm", "rb") as shm:
            if os.fstat(shm.fileno()).st_size < _WAL_INDEX_HEADERS:
                return None
            return mmap.mmap(shm.fileno(), _WAL_INDEX_HEADERS, access=mmap.ACCESS_READ)
    except OSError:
        return None


class _PgWatch:
    """Generation = notifications received on ``lgo_counters``; None while not listening."""

    def __init__(self, db: Database, lock: threading.Lock) -> None:
        self._db = db
        self._lock = lock  # the cache's: the listener connection is only touched under it
        self._conn: psycopg.Connection[Any] | None = None
        self._generation = 0
        self._acks: list[str] = []
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._wake: tuple[int, int] | None = None  # a pipe: stop() wakes the listener's select
        # The listener's socket, registered once: a request's look costs one poll(2), no fd lists.
        self._readable: select.poll | None = None

    def start(self) -> None:
        self._stopping.clear()
        self._wake = os.pipe()
        self._thread = threading.Thread(target=self._run, name="counters-listener", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._wake is not None:
            os.write(self._wake[1], b"x")
        if self._thread is not None:
            self._thread.join(timeout=RETRY_S + 1)
            self._thread = None
        with self._lock:
            self._drop()
        if self._wake is not None:
            for fd in self._wake:
                os.close(fd)
            self._wake = None

    def generation(self) -> int | None:
        """Called under the lock: drain what the socket holds, then answer."""
        if self._conn is None or self._readable is None:
            return None
        try:
            if self._readable.poll(0):  # readable, or an error or hang-up the drain then raises
                self._drain()
        except Exception as exc:  # the connection is gone: back to the database per request
            log.warning("token_listener_lost", error=type(exc).__name__)
            self._drop()
            return None
        return self._generation

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._listen()
            except Exception as exc:
                log.warning("token_listener_lost", error=type(exc).__name__)
            with self._lock:
                self._drop()
            self._stopping.wait(RETRY_S)  # then connect and LISTEN again

    def _listen(self) -> None:
        import psycopg

        url = self._db.engine.url.set(drivername="postgresql")
        conn = psycopg.connect(
            url.render_as_string(hide_password=False),
            autocommit=True,
            application_name=LISTENER_NAME,
            connect_timeout=5,
            # A dead peer makes the socket readable with an error, then requests fall back.
            keepalives=1,
            keepalives_idle=10,
            keepalives_interval=5,
            keepalives_count=3,
        )
        conn.add_notify_handler(self._on_notify)
        conn.execute(f"LISTEN {CHANGED_CHANNEL}")
        watched = select.poll()
        watched.register(conn.fileno(), select.POLLIN)
        with self._lock:
            self._conn, self._readable = conn, watched
            self._generation += 1  # anything may have changed while nobody listened: reload
        log.info("token_listener_started")
        assert self._wake is not None
        while not self._stopping.is_set():
            readable = select.select([conn.fileno(), self._wake[0]], [], [], RETRY_S)[0]
            if conn.fileno() in readable:
                with self._lock:
                    if self._conn is not conn:
                        return
                    if select.select([conn.fileno()], [], [], 0)[0]:  # a request may have drained
                        self._drain()

    def _drain(self) -> None:
        """Under the lock: read what arrived, count each notification, then acknowledge them."""
        from psycopg.pq import ConnStatus

        assert self._conn is not None
        pgconn = self._conn.pgconn
        pgconn.consume_input()
        if pgconn.status != ConnStatus.OK:  # e.g. the server's FATAL before it closes
            raise ConnectionError("listener connection closed")
        while (notify := pgconn.notifies()) is not None:
            self._generation += 1
            self._acks.append(notify.extra.decode())
        while self._acks:  # notifications arriving meanwhile reach _on_notify
            nonce = self._acks.pop()
            self._conn.execute("SELECT pg_notify(%s, %s)", (ACK_CHANNEL, nonce))

    def _on_notify(self, notify: psycopg.Notify) -> None:
        self._generation += 1
        self._acks.append(notify.payload)

    def _drop(self) -> None:
        self._readable = None
        if self._conn is not None:
            conn, self._conn = self._conn, None
            conn.close()
