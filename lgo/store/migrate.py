"""Apply and check Alembic migrations. Every part of lgo has its own branch; ``heads`` runs them all."""

from __future__ import annotations

import functools
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text

from lgo.core.errors import DatabaseNotMigrated
from lgo.store.db import Database

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


# Any constant: every lgo daemon sharing a PostgreSQL database takes the same lock.
MIGRATION_LOCK_ID = 0x6C676F  # "lgo"


def upgrade(db: Database, target: str = "heads") -> None:
    """Apply migrations. Several counters upgrading one PostgreSQL database at once are serialised by
    a transaction-scoped advisory lock (SQLite is already serialised by BEGIN IMMEDIATE)."""
    config = _config()
    with db.engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID})
        config.attributes["connection"] = connection
        command.upgrade(config, target)


def downgrade(db: Database, target: str = "base") -> None:
    config = _config()
    with db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, target)


@functools.cache
def _script_heads() -> frozenset[str]:
    # Parsing every script costs milliseconds and the scripts cannot change under a running process
    # (an upgrade installs a new release and restarts it); health checks and the watchdog ask often.
    return frozenset(ScriptDirectory.from_config(_config()).get_heads())


def expected_heads() -> set[str]:
    return set(_script_heads())


def current_heads(db: Database) -> set[str]:
    with db.read_engine.connect() as connection:
        return set(MigrationContext.configure(connection).get_current_heads())


def check(db: Database) -> None:
    """Raise DatabaseNotMigrated unless the database is exactly at the code's heads."""
    current, expected = current_heads(db), expected_heads()
    if current != expected:
        missing = ", ".join(sorted(expected - current)) or "-"
        raise DatabaseNotMigrated(f"révisions attendues manquantes : {missing}")
