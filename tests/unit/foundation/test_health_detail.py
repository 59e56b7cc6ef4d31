"""/v1/health's database entry: a French hint for what the operator can fix, never a driver's
message (it may quote SQL and its parameters)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lgo.bootstrap.container import Container
from lgo.core.settings import Settings, load_settings


def test_unmigrated_database_says_which_revisions_are_missing(settings: Settings) -> None:
    container = Container(settings)
    try:
        health = container.health()["database"]
    finally:
        container.db.dispose()
    assert health.ok is False
    assert "révisions attendues manquantes" in health.detail


def test_broken_database_reports_the_error_type_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_settings(state_dir=tmp_path / "state", hardware={"pcsc_enabled": False})
    container = Container(settings)

    def broken(_: object) -> None:
        raise RuntimeError("SELECT * FROM patients WHERE nir = '" + "2" * 15 + "'")

    monkeypatch.setattr("lgo.store.migrate.check", broken)
    try:
        health = container.health()["database"]
    finally:
        container.db.dispose()
    assert health.ok is False
    assert health.detail == "RuntimeError"
