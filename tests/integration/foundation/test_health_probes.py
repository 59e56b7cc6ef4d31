"""/v1/health reuses a healthy database answer briefly, never a failed one: once the probe has seen a
failure, the next request shows it, and every request probes again until it is cured."""

from __future__ import annotations

import pytest

from lgo.api.routers import health as health_router
from lgo.core.lifecycle import ComponentHealth
from tests.fixtures.api import ApiHarness


class Switch:
    """A database probe whose answer the test sets, counting its calls."""

    def __init__(self) -> None:
        self.ok = True
        self.calls = 0

    def __call__(self) -> ComponentHealth:
        self.calls += 1
        return ComponentHealth(self.ok, "sqlite" if self.ok else "OperationalError")


@pytest.fixture
def switch(api: ApiHarness) -> Switch:
    probe = Switch()
    api.container.health_checks["database"] = probe
    return probe


def database(api: ApiHarness) -> dict[str, object]:
    body = api.client.get("/v1/health").json()
    return {"status": body["status"], **body["components"]["database"]}


def test_a_healthy_answer_is_reused_within_the_window(api: ApiHarness, switch: Switch) -> None:
    for _ in range(5):
        assert database(api)["ok"] is True
    assert switch.calls == 1


def test_a_failure_shows_on_the_next_request_once_probed(
    api: ApiHarness, switch: Switch, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(health_router, "REUSE_OK_S", 0.0)  # every request probes
    assert database(api)["ok"] is True
    switch.ok = False
    assert database(api) == {"status": "degraded", "ok": False, "detail": "OperationalError"}
    monkeypatch.setattr(health_router, "REUSE_OK_S", 3600.0)  # a failure is still never reused
    calls = switch.calls
    assert database(api)["ok"] is False
    switch.ok = True
    assert database(api) == {"status": "ok", "ok": True, "detail": "sqlite"}
    assert switch.calls == calls + 2


def test_in_memory_components_are_live(api: ApiHarness, switch: Switch) -> None:
    assert api.client.get("/v1/health").json()["components"]["outbox"]["ok"] is True
    api.container.health_checks["outbox"] = lambda: ComponentHealth(False, "queued")
    body = api.client.get("/v1/health").json()
    assert body["status"] == "degraded"
    assert body["components"]["outbox"] == {"ok": False, "detail": "queued"}
