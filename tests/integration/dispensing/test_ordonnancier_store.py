"""Ordonnancier in the database: gapless chained numbers, UPDATE/DELETE refused by triggers on
SQLite and PostgreSQL, and `lgo ordonnancier verify` catching an entry altered in the file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import structlog
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner, Result

from lgo.cli.main import app
from lgo.services import ordonnancier
from lgo.services.prescriptions import InMemoryCatalog
from lgo.store.db import Database
from tests.fixtures.dispensing import (
    dispensation_input,
    dispensing_service,
    make_patient,
    paper,
    pharmacist,
)

pytestmark = pytest.mark.integration


def fill(db: Database, catalog: InMemoryCatalog, n: int) -> None:
    service = dispensing_service(db, catalog)
    for i in range(n):
        patient = make_patient(db)
        rx = paper(f"CHAIN{i:010d}")
        service.dispense(
            f"chain-key-{i}", dispensation_input(patient, rx), pharmacist(), degraded=False
        )


def test_numbers_are_gapless_and_chained(any_db: Database, catalog: InMemoryCatalog) -> None:
    fill(any_db, catalog, 4)
    entries = ordonnancier.query(any_db, ordonnancier.Query())
    assert [e["number"] for e in entries] == [1, 2, 3, 4]
    report = ordonnancier.verify(any_db)
    assert (report.ok, report.checked) == (True, 4)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE ordonnancier_entries SET quantity_units = 999 WHERE number = 1",
        "DELETE FROM ordonnancier_entries WHERE number = 1",
    ],
)
def test_update_and_delete_refused_by_the_database(
    any_db: Database, catalog: InMemoryCatalog, statement: str
) -> None:
    fill(any_db, catalog, 1)
    with pytest.raises(DBAPIError) as refused, any_db.engine.begin() as connection:
        connection.execute(text(statement))
    assert "append-only" in str(refused.value)
    assert ordonnancier.query(any_db, ordonnancier.Query())[0]["quantity_units"] == 30


def lgo_cli(*args: str, db_path: Path, tmp_path: Path) -> Result:
    """The real ``lgo`` command (typer app), run in-process on the database file."""
    env = {
        "LGO_DATABASE__URL": f"sqlite:///{db_path}",
        "LGO_STATE_DIR": str(tmp_path / "state"),
        "LGO_LOGGING__JSON": "false",
    }
    try:
        return CliRunner().invoke(app, list(args), env=env)
    finally:
        # The command configured structlog to print to the runner's (now closed) stderr.
        structlog.reset_defaults()


def alter_bypassing_trigger(db_path: Path, number: int) -> None:
    """What a tamperer with the file would do: drop the trigger, alter, put the trigger back."""
    raw = sqlite3.connect(db_path)
    try:
        trigger_sql = raw.execute(
            "SELECT sql FROM sqlite_master WHERE name = 'ordonnancier_entries_no_update'"
        ).fetchone()[0]
        raw.execute("DROP TRIGGER ordonnancier_entries_no_update")
        raw.execute(
            "UPDATE ordonnancier_entries SET quantity_units = 60 WHERE number = ?", (number,)
        )
        raw.execute(trigger_sql)
        raw.commit()
    finally:
        raw.close()


def test_cli_verify_detects_an_entry_altered_in_the_file(
    sqlite_db: Database, catalog: InMemoryCatalog, tmp_path: Path
) -> None:
    fill(sqlite_db, catalog, 3)
    db_path = Path(sqlite_db.url.removeprefix("sqlite:///"))
    sqlite_db.dispose()
    ok = lgo_cli("ordonnancier", "verify", db_path=db_path, tmp_path=tmp_path)
    assert ok.exit_code == 0, ok.output
    assert "3 inscription(s)" in ok.output
    alter_bypassing_trigger(db_path, 2)
    broken = lgo_cli("ordonnancier", "verify", db_path=db_path, tmp_path=tmp_path)
    assert broken.exit_code == 1
    assert "n° 2" in broken.output and "content_altered" in broken.output


def test_cli_export_writes_csv_and_html(
    sqlite_db: Database, catalog: InMemoryCatalog, tmp_path: Path
) -> None:
    fill(sqlite_db, catalog, 2)
    db_path = Path(sqlite_db.url.removeprefix("sqlite:///"))
    for name in ("out.csv", "out.html"):
        done = lgo_cli(
            "ordonnancier",
            "export",
            str(tmp_path / name),
            "--order",
            "patient",
            db_path=db_path,
            tmp_path=tmp_path,
        )
        assert done.exit_code == 0, done.output
    assert len((tmp_path / "out.csv").read_text().splitlines()) == 3
    assert "Pharmacie de démonstration" in (tmp_path / "out.html").read_text()


def test_cli_fhir_export_one_bundle_per_dispensation(
    sqlite_db: Database, catalog: InMemoryCatalog, tmp_path: Path
) -> None:
    import json

    fill(sqlite_db, catalog, 2)
    db_path = Path(sqlite_db.url.removeprefix("sqlite:///"))
    out = tmp_path / "portability.ndjson"
    done = lgo_cli("dispensations", "export-fhir", str(out), db_path=db_path, tmp_path=tmp_path)
    assert done.exit_code == 0, done.output
    bundles = [json.loads(line) for line in out.read_text().splitlines()]
    assert [b["resourceType"] for b in bundles] == ["Bundle", "Bundle"]
    assert all(b["entry"][1]["resource"]["resourceType"] == "MedicationDispense" for b in bundles)


def test_cli_fhir_export_carries_the_qualified_ins_like_the_api(
    sqlite_db: Database, catalog: InMemoryCatalog, tmp_path: Path
) -> None:
    """The CLI builds the daemon's composition root: the identity part adds the INS."""
    import json

    from lgo.domain.identity import IdentityStatus, InsOid
    from tests.fixtures.documents import FICTIVE_NIR
    from tests.fixtures.missions import add_patient

    patient = add_patient(sqlite_db, IdentityStatus.QUAL)
    dispensing_service(sqlite_db, catalog).dispense(
        "ins-export-1",
        dispensation_input(patient, paper("INSEXPORT0001")),
        pharmacist(),
        degraded=False,
    )
    db_path = Path(sqlite_db.url.removeprefix("sqlite:///"))
    out = tmp_path / "portability.ndjson"
    done = lgo_cli("dispensations", "export-fhir", str(out), db_path=db_path, tmp_path=tmp_path)
    assert done.exit_code == 0, done.output
    [bundle] = [json.loads(line) for line in out.read_text().splitlines()]
    identifiers = bundle["entry"][0]["resource"]["identifier"]
    assert {"system": f"urn:oid:{InsOid.TEST.value}", "value": FICTIVE_NIR} in identifiers
