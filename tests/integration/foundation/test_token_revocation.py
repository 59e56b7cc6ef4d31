"""Bearer tokens are checked in memory (lgo/services/counter_tokens.py), yet a revocation made by
another process takes effect on the very next request, on SQLite and on PostgreSQL, including when
the daemon's PostgreSQL listener has lost its connection."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from lgo.core.settings import Settings, load_settings
from lgo.services.counter_tokens import CounterTokens, _SqliteWatch, _wal_index
from lgo.services.counters import LISTENER_NAME, add_counter, revoke
from lgo.store.db import Database
from tests.fixtures.api import ApiHarness, running_api
from tests.fixtures.db import PgCluster

ROOT = Path(__file__).resolve().parents[3]
WAIT_S = 20.0
REVOKE = """
import sys
from lgo.services.counters import revoke
from lgo.store.db import Database
db = Database(sys.argv[1])
print(revoke(db, sys.argv[2]).unconfirmed)
db.dispose()
"""


def revoke_elsewhere(url: str, name: str) -> int:
    """Revoke in another process (as `lgo counters revoke` does); daemons that did not confirm."""
    done = subprocess.run(
        [sys.executable, "-c", REVOKE, url, name],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return int(done.stdout.split()[-1])


def _settings(tmp_path: Path, url: str | None) -> Settings:
    return load_settings(
        mode="bench",
        state_dir=tmp_path / "state",
        hardware={"pcsc_enabled": False},
        database={"url": url},
    )


@pytest.fixture
def pg_api(tmp_path: Path, pg_cluster: PgCluster) -> Iterator[ApiHarness]:
    with running_api(_settings(tmp_path, pg_cluster.new_database())) as harness:
        wait_listeners(harness.container.db, 1)
        yield harness


def listener_pids(db: Database) -> list[int]:
    with db.engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT pid FROM pg_stat_activity"
                " WHERE application_name = :name AND datname = current_database()"
            ),
            {"name": LISTENER_NAME},
        )
        return [int(row[0]) for row in rows]


def wait_listeners(db: Database, count: int) -> list[int]:
    deadline = time.monotonic() + WAIT_S
    while len(pids := listener_pids(db)) != count:
        assert time.monotonic() < deadline, f"expected {count} listener(s), found {pids}"
        time.sleep(0.05)
    return pids


def _revoked_at_once(api: ApiHarness, url: str) -> None:
    _, token = add_counter(api.container.db, "comptoir-2")
    headers = {"Authorization": f"Bearer {token}"}
    for _ in range(3):  # loaded into the daemon's memory, then served from it
        assert api.client.get("/v1/health", headers=headers).status_code == 200
    assert revoke_elsewhere(url, "comptoir-2") == 0
    assert api.client.get("/v1/health", headers=headers).status_code == 401
    assert api.client.get("/v1/health").status_code == 200  # the other counter is unaffected


def test_sqlite_revocation_from_another_process_is_seen_by_the_next_request(
    tmp_path: Path,
) -> None:
    settings = _settings(tmp_path, None)
    with running_api(settings) as api:
        _revoked_at_once(api, settings.database_url)


def test_sqlite_revocation_by_the_lgo_command(tmp_path: Path) -> None:
    settings = _settings(tmp_path, None)
    with running_api(settings) as api:
        _, token = add_counter(api.container.db, "comptoir-cli")
        headers = {"Authorization": f"Bearer {token}"}
        assert api.client.get("/v1/health", headers=headers).status_code == 200
        env = {k: v for k, v in os.environ.items() if not k.startswith("LGO_")}
        done = subprocess.run(
            [str(Path(sys.executable).with_name("lgo")), "counters", "revoke", "comptoir-cli"],
            env={**env, "LGO_STATE_DIR": str(settings.state_dir)},
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert "révoqué" in done.stdout
        assert api.client.get("/v1/health", headers=headers).status_code == 401


def test_sqlite_token_added_after_the_daemon_started_works_at_once(api: ApiHarness) -> None:
    assert api.client.get("/v1/health").status_code == 200  # the cache is loaded
    _, token = add_counter(api.container.db, "nouveau")
    headers = {"Authorization": f"Bearer {token}"}
    assert api.client.get("/v1/health", headers=headers).status_code == 200


def test_sqlite_other_writes_do_not_resurrect_or_drop_tokens(api: ApiHarness) -> None:
    """data_version moves on every commit: unrelated writes keep the same answers."""
    _, token = add_counter(api.container.db, "autre")
    add_counter(api.container.db, "encore-un")
    assert api.client.get("/v1/health", headers={"Authorization": f"Bearer {token}"}).is_success
    assert (
        api.client.get("/v1/health", headers={"Authorization": "Bearer lgo_x"}).status_code == 401
    )


@pytest.mark.postgres
def test_postgres_revocation_from_another_process_is_seen_by_the_next_request(
    pg_api: ApiHarness,
) -> None:
    _revoked_at_once(pg_api, pg_api.container.db.url)


@pytest.mark.postgres
def test_postgres_lost_listener_falls_back_to_the_database(pg_api: ApiHarness) -> None:
    db = pg_api.container.db
    _, token = add_counter(db, "comptoir-3")
    headers = {"Authorization": f"Bearer {token}"}
    assert pg_api.client.get("/v1/health", headers=headers).status_code == 200
    (pid,) = listener_pids(db)
    with db.engine.connect() as connection:
        connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    # The revoke finds no listener to wait for once the backend is gone; the daemon must not trust
    # its memory any more.
    assert revoke_elsewhere(db.url, "comptoir-3") == 0
    assert pg_api.client.get("/v1/health", headers=headers).status_code == 401
    assert pg_api.client.get("/v1/health").status_code == 200
    # It listens again by itself, and the next revocation is again seen at once.
    (new_pid,) = wait_listeners(db, 1)
    assert new_pid != pid
    _revoked_at_once_again(pg_api)


def _revoked_at_once_again(api: ApiHarness) -> None:
    _, token = add_counter(api.container.db, "comptoir-4")
    headers = {"Authorization": f"Bearer {token}"}
    assert api.client.get("/v1/health", headers=headers).status_code == 200
    assert revoke_elsewhere(api.container.db.url, "comptoir-4") == 0
    assert api.client.get("/v1/health", headers=headers).status_code == 401


@pytest.mark.postgres
def test_postgres_revoke_waits_for_every_listening_daemon(
    tmp_path: Path, pg_cluster: PgCluster
) -> None:
    """Two counter PCs sharing one database: both refuse the token when the revoke returns."""
    url = pg_cluster.new_database()
    with (
        running_api(_settings(tmp_path / "a", url), counter="comptoir-a") as first,
        running_api(_settings(tmp_path / "b", url), counter="comptoir-b") as second,
    ):
        wait_listeners(first.container.db, 2)
        headers = {"Authorization": f"Bearer {first.token}"}
        assert second.client.get("/v1/health", headers=headers).status_code == 200
        assert first.client.get("/v1/health").status_code == 200
        assert revoke_elsewhere(url, "comptoir-a") == 0
        assert first.client.get("/v1/health").status_code == 401
        assert second.client.get("/v1/health", headers=headers).status_code == 401
        assert second.client.get("/v1/health").status_code == 200


def test_sqlite_only_a_counters_change_reloads_the_tokens(sqlite_db: Database) -> None:
    """Every dispensation commits, which moves PRAGMA data_version: the cache then reads the
    one-row ``counter_generation`` (bumped by triggers on ``counters``), never the token hashes,
    and keeps answering from memory; a change to ``counters`` is seen by the very next check."""
    _, token = add_counter(sqlite_db, "comptoir-1")
    tokens = CounterTokens(sqlite_db)
    try:
        assert tokens.authenticate(token) is not None  # loads the hashes into memory
        statements: list[str] = []
        watch = tokens._watch
        assert isinstance(watch, _SqliteWatch) and watch._conn is not None
        watch._conn.set_trace_callback(statements.append)
        with sqlite_db.engine.begin() as connection:  # a write to another table, as a dispensation
            connection.execute(text(FICTITIOUS_PATIENT))
        assert tokens.cached(token) is not None
        assert any("counter_generation" in sql for sql in statements)
        assert not any("token_hash" in sql for sql in statements)
        rename = text("UPDATE counters SET name = 'comptoir-renomme' WHERE name = 'comptoir-1'")
        with sqlite_db.engine.begin() as connection:
            connection.execute(rename)
        assert tokens.cached(token) is None  # the counters moved: memory no longer answers
        found = tokens.authenticate(token)
        assert found is not None and found.name == "comptoir-renomme"
        revoke(sqlite_db, "comptoir-renomme")
        assert tokens.cached(token) is None
        assert tokens.authenticate(token) is None
    finally:
        asyncio.run(tokens.stop())


FICTITIOUS_PATIENT = """
INSERT INTO patients (id, created_at, updated_at, birth_name, given_names, birth_date_raw, source,
identity_status) VALUES ('p-test-1', '2026-01-01 00:00:00', '2026-01-01 00:00:00', 'FICTIF',
'Test', '19800101', 'manual', 'provisional')
"""


WRITE_ELSEWHERE = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("PRAGMA busy_timeout=5000")
conn.execute(sys.argv[2])
conn.close()
"""


def test_sqlite_reads_data_version_only_after_a_commit(sqlite_db: Database) -> None:
    """The checks between two commits compare the WAL-index header only (no SQLite call); a
    commit by another process, to any table, is seen by the next check, and a revocation there
    takes effect at once."""
    _, token = add_counter(sqlite_db, "comptoir-1")
    tokens = CounterTokens(sqlite_db)
    path = str(sqlite_db.engine.url.database)
    try:
        assert tokens.authenticate(token) is not None
        watch = tokens._watch
        assert isinstance(watch, _SqliteWatch) and watch._conn is not None
        statements: list[str] = []
        watch._conn.set_trace_callback(statements.append)
        for _ in range(5):
            assert tokens.cached(token) is not None
        assert statements == []
        subprocess.run(
            [sys.executable, "-c", WRITE_ELSEWHERE, path, FICTITIOUS_PATIENT],
            check=True,
            timeout=60,
        )
        assert tokens.cached(token) is not None
        assert any("data_version" in sql for sql in statements)
        statements.clear()
        assert tokens.cached(token) is not None and statements == []
        assert revoke_elsewhere(str(sqlite_db.engine.url), "comptoir-1") == 0
        assert tokens.cached(token) is None
        assert tokens.authenticate(token) is None
    finally:
        asyncio.run(tokens.stop())


def test_sqlite_without_wal_reads_data_version_at_every_check(tmp_path: Path) -> None:
    path = tmp_path / "rollback.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE t (x)")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert _wal_index(conn, str(path)) is None
    conn.execute("PRAGMA journal_mode=WAL")
    shm = _wal_index(conn, str(path))
    assert shm is not None
    before = shm[:]
    sqlite3.connect(path, isolation_level=None).execute("INSERT INTO t VALUES (1)")
    assert shm[:] != before  # a commit rewrites the header
    shm.close()
    conn.close()
