"""Periods and records on SQLite and PostgreSQL: local days of the pharmacy (midnight and the
daylight-saving change), months, distinct patients per period, range checks; the recorder (sessions,
national call traces) and the daemon's shutdown; ``lgo stats`` on the command line."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner, Result

from lgo.api.app import create_app
from lgo.bootstrap.container import Container
from lgo.bootstrap.stats import part_of
from lgo.cli.main import app as cli_app
from lgo.core.errors import InvalidInput
from lgo.core.settings import Settings
from lgo.national import transport as national_http
from lgo.national.transport import NationalHttpClient, RetryPolicy
from lgo.services.counters import add_counter
from lgo.services.sessions import ProfessionalIdentity, ProfessionalSession, SessionKind
from lgo.services.stats import StatsRecorder, StatsService, report_csv
from lgo.store import migrate
from lgo.store.db import Database
from lgo.store.models import DispensationRow, Patient, StatsNationalCall, StatsSession

pytestmark = pytest.mark.integration

# 2026-03-29 is the spring daylight-saving change in France (02:00 CET → 03:00 CEST).
BEFORE_MIDNIGHT_UTC = datetime(2026, 3, 28, 22, 59, tzinfo=UTC)  # 23:59 Paris, the 28th
AFTER_MIDNIGHT_UTC = datetime(2026, 3, 28, 23, 30, tzinfo=UTC)  # 00:30 Paris, the 29th
LATE_29_UTC = datetime(2026, 3, 29, 21, 59, tzinfo=UTC)  # 23:59 Paris (CEST), the 29th
START_30_UTC = datetime(2026, 3, 29, 22, 0, tzinfo=UTC)  # 00:00 Paris, the 30th
FEB_LOCAL_MARCH_UTC = datetime(2026, 2, 28, 23, 30, tzinfo=UTC)  # 1 March 00:30 Paris
IDENTITY = ProfessionalIdentity(
    national_id="810000000009",
    rpps="10000000009",
    family_name="PHARMACIEN",
    given_name="TEST",
    profession_code="21",
)


def add_call(db: Database, at: datetime, service: str = "insi", status: str = "200") -> None:
    with db.uow() as uow:
        uow.session.add(
            StatsNationalCall(
                at=at, service=service, action="x", status=status, attempts=1, duration_ms=5
            )
        )
        uow.commit()


def add_patient(db: Database, source: str, created_at: datetime) -> str:
    pid = str(uuid.uuid4())
    with db.uow() as uow:
        uow.session.add(
            Patient(
                id=pid,
                created_at=created_at,
                updated_at=created_at,
                birth_name="FICTIF",
                given_names="CAMILLE",
                birth_date_raw="19800101",
                source=source,
                identity_status="provisional",
            )
        )
        uow.commit()
    return pid


def add_dispensation(
    db: Database,
    patient_id: str,
    business_date: date,
    *,
    sync_status: str = "local_only",
    degraded: bool = False,
) -> None:
    created = datetime.combine(business_date, datetime.min.time(), UTC) + timedelta(hours=10)
    with db.uow() as uow:
        uow.session.add(
            DispensationRow(
                id=str(uuid.uuid4()),
                created_at=created,
                business_date=business_date,
                patient_id=patient_id,
                prescription_id="RX-" + uuid.uuid4().hex[:8],
                prescription_source="paper",
                sync_status=sync_status,
                degraded=degraded,
                pharmacist_national_id="810000000009",
                pharmacist_rpps="10000000009",
                session_kind="cps",
                session_id=str(uuid.uuid4()),
            )
        )
        uow.commit()


def test_local_days_across_midnight_and_daylight_saving(any_db: Database) -> None:
    for moment in (
        BEFORE_MIDNIGHT_UTC,
        AFTER_MIDNIGHT_UTC,
        LATE_29_UTC,
        START_30_UTC,
        FEB_LOCAL_MARCH_UTC,
    ):
        add_call(any_db, moment)
    add_call(any_db, START_30_UTC, status="insi-unavailable")
    service = StatsService(any_db)

    days = service.report(date(2026, 3, 28), date(2026, 3, 30), "day")
    calls = {b.period: b.figures["national.calls"] for b in days.buckets}
    assert calls == {"2026-03-28": 1, "2026-03-29": 2, "2026-03-30": 2}
    [failed] = [b for b in days.buckets if b.figures["national.failed"]]
    assert failed.period == "2026-03-30"
    assert [(f.source, f.error, f.count) for f in failed.failures] == [
        ("national", "insi:insi-unavailable", 1)
    ]

    months = service.report(date(2026, 2, 1), date(2026, 3, 31), "month")
    assert {b.period: b.figures["national.calls"] for b in months.buckets} == {
        "2026-02": 0,
        "2026-03": 6,
    }
    assert months.totals["national.calls"] == 6


def test_patients_count_once_per_period_and_by_card_source(any_db: Database) -> None:
    now = datetime(2026, 5, 4, 9, tzinfo=UTC)
    vitale = add_patient(any_db, "vitale", now)
    apcv = add_patient(any_db, "apcv", now)
    typed = add_patient(any_db, "manual", now)
    for patient, day in ((vitale, 4), (vitale, 4), (vitale, 5), (apcv, 5), (typed, 5)):
        add_dispensation(any_db, patient, date(2026, 5, day))
    add_dispensation(any_db, apcv, date(2026, 5, 5), sync_status="pending_sync", degraded=True)
    add_dispensation(any_db, typed, date(2026, 5, 5), sync_status="synced")
    service = StatsService(any_db)

    days = {b.period: b.figures for b in service.report(date(2026, 5, 4), date(2026, 5, 5)).buckets}
    assert [
        days["2026-05-04"][k]
        for k in ("patients.vitale", "patients.apcv", "patients.other", "paper.dispensed")
    ] == [1, 0, 0, 2]
    assert [
        days["2026-05-05"][k]
        for k in (
            "patients.vitale",
            "patients.apcv",
            "patients.other",
            "paper.dispensed",
            "eprescription.dispensed",
            "eprescription.degraded",
        )
    ] == [1, 1, 1, 3, 2, 1]
    assert days["2026-05-04"]["patients.new_vitale"] == 1
    assert days["2026-05-04"]["patients.new_apcv"] == 1
    [month] = service.report(date(2026, 5, 1), date(2026, 5, 31), "month").buckets
    assert month.figures["patients.vitale"] == 1  # the same patient twice in the month: once
    assert service.totals()["patients.vitale"] == 2  # all time: once per day served


def test_ranges_are_checked(sqlite_db: Database) -> None:
    service = StatsService(sqlite_db)
    with pytest.raises(InvalidInput):
        service.report(date(2026, 3, 2), date(2026, 3, 1))
    with pytest.raises(InvalidInput):
        service.report(date(2024, 1, 1), date(2026, 1, 1), "day")
    assert len(service.report(date(2024, 1, 1), date(2026, 1, 1), "month").buckets) == 25


def test_api_refuses_a_bad_range_with_a_problem(api: Any) -> None:
    bad = api.client.get("/v1/stats", params={"from": "2026-03-02", "to": "2026-03-01"})
    assert bad.status_code == 422
    assert bad.json()["type"] == "urn:lgo:problem:invalid-input"
    assert api.client.get("/v1/stats", params={"by": "week"}).status_code == 422
    assert api.client.get("/v1/stats", headers={"Authorization": ""}).status_code == 401


def test_recorder_keeps_sessions_and_call_traces(sqlite_db: Database) -> None:
    recorder = StatsRecorder(sqlite_db)
    opened = datetime(2026, 4, 1, 8, tzinfo=UTC)
    session = ProfessionalSession("s-1", SessionKind.ECPS, IDENTITY, opened, None)
    recorder.session_closed(session, "expired")
    recorder.session_closed(session, "expired")  # replayed: still one row
    recorder.national_call(
        {
            "service": "dmp",
            "action": "dmp_provide",
            "status": "503",
            "attempts": 3,
            "duration_ms": 40,
            "author_rpps": "10000000009",
        }
    )
    assert recorder.flush() == 1
    assert recorder.flush() == 0
    with sqlite_db.uow(readonly=True) as uow:
        [row] = uow.session.scalars(select(StatsSession)).all()
        assert (row.kind, row.opened_at, row.close_reason) == ("ecps", opened, "expired")
        [call] = uow.session.scalars(select(StatsNationalCall)).all()
        assert (call.service, call.status, call.attempts) == ("dmp", "503", 3)
    report = StatsService(sqlite_db).report(date(2026, 4, 1), date(2026, 4, 1))
    assert report.totals["signins.ecps"] == 1


def test_a_failing_trace_sink_never_breaks_the_national_call() -> None:
    def broken(_: dict[str, Any]) -> None:
        raise RuntimeError("sink down")

    seen: list[dict[str, Any]] = []
    transport = httpx.MockTransport(lambda _: httpx.Response(200, json={}))
    national_http.TRACE_SINKS.extend([broken, seen.append])
    try:
        with NationalHttpClient(
            "apcv", "http://127.0.0.1:9", transport=transport, retry=RetryPolicy(attempts=1)
        ) as client:
            assert (
                client.request(
                    "exchange", "POST", "/x", author_rpps=None, idempotent=False
                ).status_code
                == 200
            )
    finally:
        national_http.TRACE_SINKS.remove(broken)
        national_http.TRACE_SINKS.remove(seen.append)
    assert [(s["service"], s["action"], s["status"]) for s in seen] == [("apcv", "exchange", "200")]


def test_daemon_counts_sessions_and_keeps_the_open_one_at_shutdown(settings: Settings) -> None:
    container = Container(settings)
    migrate.upgrade(container.db)
    _, token = add_counter(container.db, "comptoir-stats")
    app = create_app(settings, container)
    with TestClient(
        app,
        base_url=f"http://127.0.0.1:{settings.api.port}",
        headers={"Authorization": f"Bearer {token}"},
    ) as client:
        container.sessions.open(SessionKind.CPS, IDENTITY)
        container.sessions.close("card_removed")
        container.sessions.open(SessionKind.ECPS, IDENTITY, ttl=timedelta(minutes=30))
        figures = client.get("/v1/stats").json()["totals"]
        assert (figures["signins.cps"], figures["signins.ecps"]) == (1, 1)  # e-CPS: still open
        sink = part_of(container).recorder.national_call
        assert sink in national_http.TRACE_SINKS
    assert sink not in national_http.TRACE_SINKS
    db = Database(settings.database_url)
    try:
        with db.uow(readonly=True) as uow:
            reasons = {r.kind: r.close_reason for r in uow.session.scalars(select(StatsSession))}
        assert reasons == {"cps": "card_removed", "ecps": "daemon_stopped"}
    finally:
        db.dispose()


def lgo_cli(*args: str, db_path: Path, tmp_path: Path) -> Result:
    env = {
        "LGO_DATABASE__URL": f"sqlite:///{db_path}",
        "LGO_STATE_DIR": str(tmp_path / "state"),
        "LGO_LOGGING__JSON": "false",
        "COLUMNS": "200",
    }
    try:
        return CliRunner().invoke(cli_app, list(args), env=env)
    finally:
        structlog.reset_defaults()  # the command logged to the runner's closed stderr


def test_cli_table_and_csv(tmp_path: Path) -> None:
    db_path = tmp_path / "cli.sqlite3"
    db = Database(f"sqlite:///{db_path}")
    migrate.upgrade(db)
    add_call(db, AFTER_MIDNIGHT_UTC, service="insi", status="200")
    add_call(db, AFTER_MIDNIGHT_UTC, service="dmp", status="service-timeout")
    expected_csv = report_csv(StatsService(db).report(date(2026, 3, 29), date(2026, 3, 29)))
    db.dispose()

    shown = lgo_cli(
        "stats", "--from", "2026-03-29", "--to", "2026-03-29", db_path=db_path, tmp_path=tmp_path
    )
    assert shown.exit_code == 0, shown.output
    assert "29/03" in shown.output and "2026-03-29" in shown.output  # column, title
    assert "dmp:service-timeout" in shown.output
    line = next(x for x in shown.output.splitlines() if "appels aux services nationaux en" in x)
    assert line.replace("│", " ").split()[-2:] == ["1", "1"]  # that day, and the total

    out = tmp_path / "stats.csv"
    written = lgo_cli(
        "stats",
        "--from",
        "2026-03-29",
        "--to",
        "2026-03-29",
        "--csv",
        str(out),
        db_path=db_path,
        tmp_path=tmp_path,
    )
    assert written.exit_code == 0, written.output
    assert out.read_bytes() == expected_csv.encode("utf-8")
    rows = list(csv.DictReader(io.StringIO(expected_csv)))
    assert {(r["period"], r["figure"], r["count"]) for r in rows} >= {
        ("2026-03-29", "national.calls", "2"),
        ("total", "failure:national:dmp:service-timeout", "1"),
    }

    bad = lgo_cli("stats", "--by", "week", db_path=db_path, tmp_path=tmp_path)
    assert bad.exit_code == 2


def test_cli_tables_fit_the_terminal_and_show_every_period(sqlite_db: Database) -> None:
    from rich.console import Console

    from lgo.cli.stats import figures_tables

    add_call(sqlite_db, AFTER_MIDNIGHT_UTC)
    report = StatsService(sqlite_db).report(date(2026, 3, 23), date(2026, 3, 29))
    console = Console(width=80, record=True, file=io.StringIO())
    tables = figures_tables(report, console.width)
    for table in tables:
        console.print(table)
    text = console.export_text()
    assert len(tables) > 1
    assert max(len(line) for line in text.splitlines()) <= 80
    assert [text.count(f"{day}/03") for day in range(23, 30)] == [1] * 7
    assert text.count("Total") == 1
    rows = [
        x.replace("│", " ").split()
        for x in text.splitlines()
        if "appels aux services nationaux " in x and "échec" not in x
    ]
    assert [row[-1] for row in rows[:-1]] == ["0"] * (len(tables) - 1)  # 23rd to 28th: none
    assert rows[-1][-2:] == ["1", "1"]  # the 29th, then the total


def test_recorder_failures_never_reach_the_session_nor_grow_without_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lgo.core.events import EventBus
    from lgo.services import stats
    from lgo.services.sessions import SessionRegistry

    unmigrated = Database(f"sqlite:///{tmp_path / 'empty.sqlite3'}")  # no stats tables
    recorder = StatsRecorder(unmigrated)
    registry = SessionRegistry(EventBus())
    closed: list[str] = []
    registry.on_close(recorder.session_closed)
    registry.on_close(lambda session, reason: closed.append(reason))
    registry.open(SessionKind.CPS, IDENTITY)
    assert registry.close("card_removed") is not None
    assert closed == ["card_removed"]  # the listener after the failing one still ran

    monkeypatch.setattr(stats, "MAX_QUEUED_CALLS", 3)
    for n in range(5):
        recorder.national_call({"service": "insi", "action": str(n), "status": "200"})
    assert recorder.flush() == 0  # refused: kept for later, the newest three only
    migrate.upgrade(unmigrated)
    assert recorder.flush() == 3
    with unmigrated.uow(readonly=True) as uow:
        kept = uow.session.scalars(select(StatsNationalCall.action)).all()
    assert sorted(kept) == ["2", "3", "4"]
    unmigrated.dispose()
