"""The dashboard section of the counter page in Debian's Chromium (Playwright) against the daemon's
app served by uvicorn on 127.0.0.1: the table shows the figures of ``/v1/stats``, one chart per
service is drawn, the CSV button downloads exactly the API's export, and the section follows the
page's language switch."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from lgo.bootstrap.container import Container
from lgo.core.settings import load_settings
from lgo.services.counters import add_counter
from lgo.services.stats import today_local
from lgo.store import migrate
from lgo.store.models import StatsNationalCall, StatsSession
from tests.e2e.browser import chromium_context
from tests.fixtures.api import served_on_socket

pytestmark = [pytest.mark.integration, pytest.mark.browser]

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect


@dataclass
class Served:
    url: str
    token: str


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    settings = load_settings(
        state_dir=tmp_path / "state", hardware={"pcsc_enabled": False}, api={"port": port}
    )
    container = Container(settings)
    migrate.upgrade(container.db)
    _, token = add_counter(container.db, "comptoir-tableau")
    now = datetime.now(UTC)
    with container.db.uow() as uow:
        uow.session.add_all(
            [
                StatsNationalCall(
                    at=now, service="insi", action="x", status="200", attempts=1, duration_ms=3
                ),
                StatsNationalCall(
                    at=now, service="dmp", action="x", status="503", attempts=3, duration_ms=9
                ),
                StatsSession(
                    id="s-1", kind="ecps", opened_at=now, closed_at=now, close_reason="logout"
                ),
            ]
        )
        uow.commit()
    with served_on_socket(container, sock):
        yield Served(f"http://127.0.0.1:{port}", token)


@pytest.fixture
def page() -> Iterator[Any]:
    # An en-US browser: a native date field would show mm/dd/yyyy; the page stays French.
    with chromium_context(
        prefix="lgo-stats-chromium-",
        viewport={"width": 1366, "height": 768},
        timeout_ms=15_000,
        locale="en-US",
    ) as context:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.lgo_errors = errors
        yield page


def test_dashboard_table_charts_csv_and_language(page: Any, served: Served) -> None:
    page.goto(f"{served.url}/#token={served.token}")
    page.locator("#dashboard > summary").click()
    figures = page.get_by_test_id("dash-figures")
    today = today_local()
    expect(page.locator("#dash-to")).to_have_value(today.strftime("%d/%m/%Y"))
    expect(page.locator("#dash-from")).to_have_value(today.replace(day=1).strftime("%d/%m/%Y"))
    expect(figures.locator("thead th").last).to_have_text("Total")
    calls = figures.locator('tr[data-figure="national.calls"]')
    expect(calls.locator("th")).to_have_text("appels aux services nationaux")
    expect(calls.locator("td.total")).to_have_text("2")
    expect(figures.locator('tr[data-figure="national.failed"] td.total')).to_have_text("1")
    expect(figures.locator('tr[data-figure="signins.ecps"] td.total')).to_have_text("1")
    assert today.strftime("%d/%m/%Y") in figures.locator("thead").inner_text()
    expect(page.locator("#dash-charts figure.dash-chart")).to_have_count(9)
    national = page.locator('#dash-charts figure[data-service="Services nationaux"]')
    expect(national.locator("rect.failed")).to_have_count(1)
    expect(page.locator("#dash-failures")).to_contain_text("dmp:503")

    with page.expect_download() as download_info:
        page.locator("#dash-csv").click()
    downloaded = Path(download_info.value.path()).read_bytes()
    params = {"from": today.replace(day=1).isoformat(), "to": today.isoformat(), "by": "day"}
    api_csv = httpx.get(
        f"{served.url}/v1/stats/export.csv",
        params=params,
        timeout=5,
        headers={"Authorization": f"Bearer {served.token}"},
    )
    assert downloaded == api_csv.content

    page.locator("#dash-from").fill("31/02/2026")  # no such day: said in French, nothing loaded
    page.locator("#dashboard button[type=submit]").click()
    expect(page.locator("#dash-status")).to_have_text(
        "Date « 31/02/2026 » invalide : saisir une date réelle au format jj/mm/aaaa."
    )

    page.locator("#lang-toggle").click()
    expect(calls.locator("th")).to_have_text("national service calls")
    expect(page.locator("#dashboard > summary h2")).to_have_text("National services dashboard")
    assert page.lgo_errors == []
