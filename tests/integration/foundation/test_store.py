"""Migrations and transaction rules on SQLite and on a real PostgreSQL cluster."""

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import OperationalError

from lgo.core.errors import DatabaseNotMigrated
from lgo.store import migrate
from lgo.store.db import Database


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_migrations_up_down_up(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    url = (
        f"sqlite:///{tmp_path / 'm.sqlite3'}"
        if backend == "sqlite"
        else request.getfixturevalue("pg_cluster").new_database()
    )
    db = Database(url)
    try:
        with pytest.raises(DatabaseNotMigrated):
            migrate.check(db)
        migrate.upgrade(db)
        migrate.check(db)
        assert {"counters", "patients"} <= set(inspect(db.engine).get_table_names())
        migrate.downgrade(db, "base")
        assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
        migrate.upgrade(db)
        migrate.check(db)
        assert migrate.current_heads(db) == migrate.expected_heads()
    finally:
        db.dispose()


def test_sqlite_runs_wal_with_full_sync(sqlite_db: Database) -> None:
    with sqlite_db.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_sqlite_write_units_take_the_writer_lock_up_front(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    impatient = Database(sqlite_url, busy_timeout_ms=50)
    migrate.upgrade(db)
    try:
        with db.uow() as first:
            first.session.execute(text("SELECT 1"))  # a read only: still holds the lock
            with pytest.raises(OperationalError, match="locked"), impatient.uow() as second:
                second.session.execute(text("SELECT 1"))
            with impatient.uow(readonly=True) as reader:  # readers are never blocked
                assert reader.session.execute(text("SELECT count(*) FROM counters")).scalar() == 0
    finally:
        db.dispose()
        impatient.dispose()


def test_unit_of_work_rolls_back_without_commit(any_db: Database) -> None:
    insert = text(
        "INSERT INTO counters (name, token_hash, token_prefix, created_at) "
        "VALUES ('x', 'h', 'p', CURRENT_TIMESTAMP)"
    )
    with any_db.uow() as uow:
        uow.session.execute(insert)
    with any_db.uow(readonly=True) as uow:
        assert uow.session.execute(text("SELECT count(*) FROM counters")).scalar() == 0
    with any_db.uow() as uow:
        uow.session.execute(insert)
        uow.commit()
    with any_db.uow(readonly=True) as uow:
        assert uow.session.execute(text("SELECT count(*) FROM counters")).scalar() == 1


def test_committed_write_is_in_the_file_for_another_process(
    sqlite_db: Database, sqlite_url: str
) -> None:
    with sqlite_db.uow() as uow:
        uow.session.execute(
            text(
                "INSERT INTO counters (name, token_hash, token_prefix, created_at) "
                "VALUES ('y', 'h2', 'p', CURRENT_TIMESTAMP)"
            )
        )
        uow.commit()
    raw = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"))
    try:
        assert raw.execute("SELECT name FROM counters").fetchall() == [("y",)]
    finally:
        raw.close()


@pytest.mark.postgres
def test_concurrent_upgrades_on_postgresql_are_serialised(pg_url: str) -> None:
    import threading

    errors: list[BaseException] = []

    def counter() -> None:
        db = Database(pg_url)
        try:
            migrate.upgrade(db)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            db.dispose()

    threads = [threading.Thread(target=counter) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []  # without the lock two of them race on CREATE TABLE
    db = Database(pg_url)
    try:
        migrate.check(db)
    finally:
        db.dispose()
