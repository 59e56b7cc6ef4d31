"""Routes that check the counter's token before FastAPI's handler (lgo/api/direct.py, CounterRoute)
answer as FastAPI does.

The same requests go to two apps on their own SQLite databases: one as the daemon builds it, one
where FastAPI's own handler serves every request (any ``dependency_overrides`` entry turns the
shortcut off, as the daemon's code says). Status, headers and body are compared (ids and times
aside) on each layer: route matching (404, 405), the token (missing, empty, wrong scheme, unknown,
revoked), query and path parameters (422), a route's own answers, a body route (left to FastAPI).
Other tests prove the shortcut is taken and a ``CounterDep`` parameter gets the checked counter.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fastapi.routing
import pytest
from fastapi import APIRouter, Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import solve_dependencies

from lgo.api.deps import CounterDep, _authorization, require_counter
from lgo.api.direct import CounterRoute
from lgo.core.settings import load_settings
from lgo.services.counters import add_counter, revoke
from tests.fixtures.api import ApiHarness, running_api

pytestmark = pytest.mark.integration

_VARYING = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"  # ids
    r"|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?"  # times
)
_UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"


def _unused() -> None:
    """Never called: an override of it only makes FastAPI's handler serve every request."""


@pytest.fixture
def ours(tmp_path: Path) -> Iterator[ApiHarness]:
    with _app(tmp_path, "ours") as harness:
        yield harness


@pytest.fixture
def fastapis(tmp_path: Path) -> Iterator[ApiHarness]:
    with _app(tmp_path, "fastapi") as harness:
        harness.client.app.dependency_overrides[_unused] = _unused
        yield harness


def _app(tmp_path: Path, name: str) -> Any:
    settings = load_settings(
        mode="bench", state_dir=tmp_path / name, hardware={"pcsc_enabled": False}
    )
    return running_api(settings)


def _answer(response: Any) -> tuple[int, dict[str, str], str]:
    headers = {k: v for k, v in response.headers.items() if k in {"content-type", "allow"}}
    return response.status_code, headers, _VARYING.sub("~", response.text)


def _scenario(harness: ApiHarness) -> dict[str, tuple[int, dict[str, str], str]]:
    client, db = harness.client, harness.container.db
    seen: dict[str, tuple[int, dict[str, str], str]] = {}
    tokens = {
        "token": {},
        "no token": {"Authorization": ""},
        "empty bearer": {"Authorization": "Bearer "},
        "wrong scheme": {"Authorization": f"Basic {harness.token}"},
        "unknown token": {"Authorization": "Bearer x"},
    }
    requests = {
        "stats": ("GET", "/v1/stats"),
        "stats, bad query": ("GET", "/v1/stats?from=hier"),
        "stats, csv": ("GET", "/v1/stats/export.csv?by=month"),
        "dispensation, bad path": ("GET", "/v1/dispensations/pas-un-id"),
        "dispensation, unknown": ("GET", f"/v1/dispensations/{_UNKNOWN_ID}"),
        "dispensations, bad limit": ("GET", "/v1/dispensations?limit=-1"),
        "ordonnancier verify": ("GET", "/v1/ordonnancier/verify"),
        "health": ("GET", "/v1/health"),
        "health, wrong method": ("POST", "/v1/health"),
        "outbox retry, unknown": ("POST", f"/v1/outbox/{_UNKNOWN_ID}/retry"),
        "wrong method": ("DELETE", "/v1/stats"),
        "unknown path": ("GET", "/v1/nothing-here"),
        "body route, bad json": ("POST", "/v1/patients"),
    }
    for who, headers in tokens.items():
        for what, (method, path) in requests.items():
            extra: dict[str, Any] = {}
            if what.startswith("body route"):
                extra = {"content": b"{not json", "headers": {"Content-Type": "application/json"}}
            extra["headers"] = {**headers, **extra.get("headers", {})}
            seen[f"{what}, {who}"] = _answer(client.request(method, path, **extra))
    _, revoked = add_counter(db, "comptoir-revoque")
    bearer = {"Authorization": f"Bearer {revoked}"}
    seen["before revocation"] = _answer(client.get("/v1/stats", headers=bearer))
    revoke(db, "comptoir-revoque")
    seen["after revocation"] = _answer(client.get("/v1/stats", headers=bearer))
    seen["another counter after"] = _answer(client.get("/v1/stats"))
    return seen


def test_counter_routes_answer_every_case_as_fastapi(
    ours: ApiHarness, fastapis: ApiHarness
) -> None:
    expected = _scenario(fastapis)
    answers = _scenario(ours)
    assert list(answers) == list(expected)
    for name, answer in answers.items():
        assert answer == expected[name], name
    statuses = {name: answer[0] for name, answer in answers.items()}
    # The scenario reaches each layer (so the comparison covers them all).
    assert statuses["stats, token"] == 200
    assert statuses["health, token"] == 200
    assert statuses["health, no token"] == 401
    assert statuses["health, wrong method, no token"] == 405
    assert statuses["stats, no token"] == statuses["stats, wrong scheme"] == 401
    assert statuses["stats, bad query, token"] == 422
    assert statuses["stats, bad query, unknown token"] == 401  # the token before the query
    assert statuses["dispensation, bad path, token"] == 422
    assert statuses["dispensation, unknown, token"] == 404
    assert statuses["wrong method, no token"] == 405  # route matching before the token
    assert statuses["unknown path, no token"] == 404
    assert statuses["body route, bad json, no token"] == 422  # FastAPI reads a body first
    assert statuses["before revocation"] == 200
    assert statuses["after revocation"] == 401
    assert statuses["another counter after"] == 200


def _solved_dependencies(monkeypatch: pytest.MonkeyPatch) -> list[list[Any]]:
    """The dependency callables of each dependant FastAPI solves, from now on."""
    solved: list[list[Any]] = []
    solve = solve_dependencies

    async def recording(**kwargs: Any) -> Any:
        dependant: Dependant = kwargs["dependant"]
        solved.append([sub.call for sub in dependant.dependencies])
        return await solve(**kwargs)

    monkeypatch.setattr(fastapi.routing, "solve_dependencies", recording)
    return solved


def test_the_daemon_checks_the_token_outside_fastapis_solving(
    ours: ApiHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    ours.client.get("/v1/stats")  # builds the router's handlers (FastAPI does at first use)
    solved = _solved_dependencies(monkeypatch)
    assert ours.client.get("/v1/stats").status_code == 200
    assert ours.client.get("/v1/stats", headers={"Authorization": ""}).status_code == 401
    assert len(solved) == 1  # the refused request never reached FastAPI's solving
    assert solved[0] and require_counter not in solved[0]
    # A body route: FastAPI solves the token as before.
    ours.client.post("/v1/patients", json={})
    assert solved[1][0] is require_counter


def test_health_checks_the_token_outside_fastapis_solving(
    ours: ApiHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    ours.client.get("/v1/health")  # builds the router's handlers
    solved = _solved_dependencies(monkeypatch)
    answer = ours.client.get("/v1/health")
    assert answer.status_code == 200
    assert answer.json()["counter"] == "test-counter"  # the CounterDep parameter's checked counter
    assert solved[0] and require_counter not in solved[0]


def _recording(cached: Any, checks: list[str]) -> Any:
    def recording(token: str) -> Any:
        checks.append(token)
        return cached(token)

    return recording


def test_a_counter_parameter_gets_the_counter_checked_once(
    ours: ApiHarness, fastapis: ApiHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    router = APIRouter(dependencies=[Depends(require_counter)], route_class=CounterRoute)

    @router.get("/v1/test-counter/{n}")
    async def who(n: int, counter: CounterDep, q: int = 0) -> dict[str, object]:
        return {"name": counter.name, "n": n, "q": q}

    checks: list[str] = []
    for harness in (ours, fastapis):
        app: Any = harness.client.app
        app.include_router(router)
        app.router.routes.insert(0, app.router.routes.pop())  # before the counter page's "/" mount
        monkeypatch.setattr(app.state.tokens, "cached", _recording(app.state.tokens.cached, checks))
    answers = []
    for harness in (ours, fastapis):
        checks.clear()
        client = harness.client
        answers.append(
            [
                _answer(client.get("/v1/test-counter/3?q=4")),
                _answer(client.get("/v1/test-counter/x")),
                _answer(client.get("/v1/test-counter/3", headers={"Authorization": "Bearer x"})),
            ]
        )
        assert len(checks) == 3  # one token check a request, the counter parameter included
    assert answers[0] == answers[1]
    assert answers[0][0] == (
        200,
        {"content-type": "application/json"},
        '{"name":"test-counter","n":3,"q":4}',
    )
    assert answers[0][1][0] == 422
    assert answers[0][2][0] == 401


@pytest.mark.parametrize(
    "headers",
    [
        [],
        [(b"authorization", b"Bearer abc")],
        [(b"host", b"x"), (b"authorization", b"Basic \xe9t\xe9")],
        [(b"authorization", b"Bearer first"), (b"authorization", b"Bearer second")],
        [(b"authorization", b"")],
    ],
)
def test_the_token_is_read_as_starlette_reads_the_header(
    headers: list[tuple[bytes, bytes]],
) -> None:
    request = Request({"type": "http", "headers": headers})
    assert _authorization(request) == request.headers.get("authorization", "")
