"""The ``identity`` Alembic branch builds, downgrades and rebuilds on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect

from lgo.store import migrate
from lgo.store.db import Database

pytestmark = pytest.mark.integration


def _columns(db: Database) -> set[str]:
    return {c["name"] for c in inspect(db.engine).get_columns("patients")}


def test_identity_branch_round_trip(any_db: Database) -> None:
    assert {"ins_matricule", "ins_oid", "on_work_list"} <= _columns(any_db)
    tables = set(inspect(any_db.engine).get_table_names())
    assert {"patient_identity_checks", "identity_work_list"} <= tables
    unique = [i for i in inspect(any_db.engine).get_indexes("patients") if i["unique"]]
    assert sorted(i["column_names"][0] for i in unique) == ["card_key", "ins_matricule"]

    migrate.downgrade(any_db, "identity@-2")  # both identity revisions
    assert "ins_matricule" not in _columns(any_db)
    assert "identity_work_list" not in set(inspect(any_db.engine).get_table_names())
    assert "patients" in set(inspect(any_db.engine).get_table_names())

    migrate.upgrade(any_db)
    migrate.check(any_db)
    assert "ins_matricule" in _columns(any_db)
