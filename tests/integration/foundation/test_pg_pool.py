"""The PostgreSQL pool of a daemon: ``database.pool_size`` connections at most, kept through a rush
(no backend opened or closed while the counters fire), a request beyond the pool waits for one."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import TimeoutError as PoolTimeout

from lgo.bootstrap.container import Container
from lgo.core.settings import load_settings
from lgo.store.db import Database

pytestmark = [pytest.mark.integration, pytest.mark.postgres]


def _rush(db: Database, threads: int, rounds: int) -> set[int]:
    """``threads`` threads at once, each running ``rounds`` units of work; the backend pids used."""
    barrier = threading.Barrier(threads)
    seen: set[int] = set()
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            barrier.wait()
            for _ in range(rounds):
                with db.uow() as uow:
                    pid = uow.session.execute(text("SELECT pg_backend_pid()")).scalar_one()
                    uow.session.execute(text("SELECT pg_sleep(0.002)"))
                    seen.add(int(pid))
        except BaseException as exc:  # re-raised below
            errors.append(exc)

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if errors:
        raise errors[0]
    return seen


def test_a_rush_opens_no_connection_beyond_the_pool_and_closes_none(pg_url: str) -> None:
    db = Database(pg_url, pool_size=3)
    try:
        first = _rush(db, threads=8, rounds=10)
        assert len(first) <= 3  # 8 threads share 3 connections
        again = _rush(db, threads=8, rounds=10)
        assert again <= first  # the same backends: none was closed and reopened
        assert db.engine.pool.checkedin() == len(first)  # type: ignore[attr-defined]
    finally:
        db.dispose()


def test_a_request_beyond_the_pool_waits_for_a_connection_and_opens_none(pg_url: str) -> None:
    db = Database(pg_url, pool_size=1, pool_timeout_s=0.2)
    try:
        with db.uow() as held:
            held.session.execute(text("SELECT 1"))
            with pytest.raises(PoolTimeout), db.uow() as second:
                second.session.execute(text("SELECT 1"))
        with db.uow() as after:  # released: the one connection serves again
            assert after.session.execute(text("SELECT 1")).scalar_one() == 1
    finally:
        db.dispose()


def test_the_daemon_pool_follows_the_setting(pg_url: str, tmp_path: Path) -> None:
    settings = load_settings(
        state_dir=tmp_path / "state",
        database={"url": pg_url, "pool_size": 4},
        hardware={"pcsc_enabled": False},
    )
    container = Container(settings)
    try:
        assert container.db.engine.pool.size() == 4  # type: ignore[attr-defined]
    finally:
        container.db.dispose()
