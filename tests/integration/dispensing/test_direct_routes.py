"""The dispensation POST routes served directly (lgo/api/direct.py) answer as FastAPI does.

The same requests go to two apps on their own SQLite databases: one as the daemon builds it, one
with the direct calls unregistered (FastAPI's dependency solving for every request). Their answers
are compared status, headers and body (ids and times aside), in the same order: the errors of each
layer (token, session, Idempotency-Key, content type, body), a commit, its replay, the 409s and a
check. A third test proves the shortcut is really taken by the daemon's app.

The daemon's app serves those POSTs in the lane (``Lane``, below Starlette's stack): the same
scenario also runs against an app without the lane, and both must answer alike, write the same
rows, log the same access lines and count the same metrics; other tests prove the lane is taken
(the router never sees those requests) and that it hands the app what it must.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import fastapi.routing
import pytest
import structlog
from fastapi import Depends, FastAPI, Request
from fastapi.dependencies.utils import solve_dependencies
from fastapi.testclient import TestClient
from sqlalchemy import inspect, text

from lgo.api import app as app_module
from lgo.api import direct
from lgo.api.deps import get_dispensation_intake
from lgo.api.routers.dispensations import router
from lgo.bootstrap.dispensing import part_of
from lgo.core.settings import load_settings
from tests.fixtures.api import ApiHarness, running_api
from tests.fixtures.dispensing import (
    LIST_I_PRODUCT,
    PLAIN_PRODUCT,
    make_patient,
    open_assistant_session,
    open_pharmacist_session,
)
from tests.integration.dispensing.test_dispensing_api import CIP_LIST_I, paper_body

pytestmark = pytest.mark.integration

PATIENT_ID = "00000000-0000-4000-8000-00000000abcd"
_VARYING = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"  # ids
    r"|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?"  # times
    r"|[0-9a-f]{64}"  # hashes that chain on ids or times
)


@contextmanager
def _app(tmp_path: Path, name: str) -> Iterator[ApiHarness]:
    settings = load_settings(
        mode="bench", state_dir=tmp_path / name, hardware={"pcsc_enabled": False}
    )
    with running_api(settings) as harness:
        part_of(harness.container).catalog.add(LIST_I_PRODUCT)
        part_of(harness.container).catalog.add(PLAIN_PRODUCT)
        make_patient(harness.container.db, PATIENT_ID)
        yield harness


def _warmed(harness: ApiHarness) -> ApiHarness:
    """FastAPI builds an included route's handler at the app's first request to its router: the
    direct call registered then is the one the app keeps."""
    harness.client.get("/v1/dispensations/00000000-0000-4000-8000-000000000000")
    return harness


@pytest.fixture
def direct_app(tmp_path: Path) -> Iterator[ApiHarness]:
    with _app(tmp_path, "direct") as harness:
        yield _warmed(harness)


@pytest.fixture
def no_lane_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ApiHarness]:
    """The daemon's app with no path given to the lane (every request through the router)."""
    with ExitStack() as stack:
        with monkeypatch.context() as patch:
            patch.setattr(app_module, "lane_paths", lambda routers: frozenset())
            harness = stack.enter_context(_app(tmp_path, "no-lane"))
        yield _warmed(harness)


@pytest.fixture
def fastapi_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ApiHarness]:
    with _app(tmp_path, "fastapi") as harness:
        with monkeypatch.context() as patch:
            patch.setattr(direct, "_DIRECT", {})
            _warmed(harness)
        yield harness


def _answer(response: Any) -> tuple[int, dict[str, str], str]:
    headers = {
        k: v for k, v in response.headers.items() if k in {"content-type", "idempotent-replayed"}
    }
    return response.status_code, headers, _VARYING.sub("~", response.text)


def _scenario(
    harness: ApiHarness, routed: dict[str, bool] | None = None
) -> list[tuple[str, tuple[int, dict[str, str], str]]]:
    """Every case in order, each answer kept with its name (and in ``routed``, whether the app's
    router saw the request)."""
    client, container = harness.client, harness.container
    good = paper_body(PATIENT_ID)
    key = {"Idempotency-Key": "k-direct-0001"}
    seen: list[tuple[str, tuple[int, dict[str, str], str]]] = []
    entries = _count_routing(harness)

    def post(name: str, path: str = "/v1/dispensations", **kwargs: Any) -> None:
        before = len(entries)
        seen.append((name, _answer(client.post(path, **kwargs))))
        if routed is not None:
            routed[name] = len(entries) > before

    bad_bodies: dict[str, Any] = {
        "empty": b"",
        "not json": b"{not json",
        "a list": b"[]",
        "extra member": {**good, "extra": 1},
        "no lines": {**good, "lines": []},
        "bad cip13": paper_body(PATIENT_ID, cip13=CIP_LIST_I[:12] + "0"),
        "bad enum": paper_body(PATIENT_ID, intervention="dispensed"),
        "nan": b'{"patient_id": "p", "lines": [{"line_no": 1, "intervention": "unchanged", '
        b'"units_per_day": NaN}]}',
        "lone surrogate": b'{"patient_id": "\\ud800", "lines": []}',
        "invalid utf-8": b'{"patient_id": "\xff", "lines": []}',
        # Refused from its bytes, read by json.loads: FastAPI's answers, also past the body.
        "byte order mark": "\ufeff".encode() + json.dumps(good).encode(),
        "bad date": {**good, "paper": {**good["paper"], "prescribed_on": "1999-01-01"}},
    }

    def bodies(prefix: str, path: str, headers: dict[str, str]) -> None:
        for name, body in bad_bodies.items():
            if isinstance(body, bytes):
                kwargs: dict[str, Any] = {
                    "content": body,
                    "headers": {**headers, "Content-Type": "application/json"},
                }
            else:
                kwargs = {"json": body, "headers": headers}
            post(f"{prefix}: {name} at {path}", path, **kwargs)

    for path in ("/v1/dispensations", "/v1/dispensations/check"):
        post(f"no token at {path}", path, json=good, headers={**key, "Authorization": ""})
        post(f"bad token at {path}", path, json=good, headers={**key, "Authorization": "Bearer x"})
        bodies("bad token", path, {**key, "Authorization": "Bearer x"})
        post(f"no session at {path}", path, json=good, headers=key)
        bodies("no session", path, key)
    session = open_assistant_session(container)
    post("non-pharmacist session", json=good, headers=key)
    post("non-pharmacist session, check", "/v1/dispensations/check", json=good)
    container.sessions.close(session.id)  # type: ignore[attr-defined]
    open_pharmacist_session(container)
    for name, value in {
        "short": "short",
        "space": "k-direct 0001",
        "too long": "k" * 129,
        "empty": "",
        "accent": "k-d\xefrect-0001".encode("latin-1"),
    }.items():
        post(f"key {name}", json=good, headers={"Idempotency-Key": value})
    post("key missing", json=good)
    bodies("session", "/v1/dispensations", key)
    bodies("session", "/v1/dispensations/check", {})
    for content_type in ("text/plain", "application/json; charset=utf-8", "application/x+json"):
        post(
            f"content type {content_type}",
            content=client.build_request("POST", "/", json=good).content,
            headers={**key, "Content-Type": content_type},
        )
    post("check", "/v1/dispensations/check", json=good)
    post("refused", json=paper_body(PATIENT_ID, days=31), headers=key)
    post("commit", json=good, headers=key)
    post("replay", json=good, headers=key)
    post("same key, other body", json=paper_body(PATIENT_ID, days=10), headers=key)
    post("same body, other key", json=good, headers={"Idempotency-Key": "k-direct-0002"})
    post("check after", "/v1/dispensations/check", json=good)
    return seen


def _count_routing(harness: ApiHarness) -> list[str]:
    """The paths of the requests the app's router is entered for, from now on."""
    app: Any = harness.client.app
    router = app.router
    entries: list[str] = getattr(router, "lgo_test_entries", None) or []
    if not hasattr(router, "lgo_test_entries"):
        stack = router.middleware_stack

        async def counting(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                entries.append(scope["path"])
            await stack(scope, receive, send)

        router.middleware_stack = counting
        router.lgo_test_entries = entries
    return entries


def _count_solving(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths of the requests FastAPI solves dependencies for, from now on."""
    solved: list[str] = []
    solve = solve_dependencies

    async def counting(**kwargs: Any) -> Any:
        solved.append(kwargs["request"].url.path)
        return await solve(**kwargs)

    monkeypatch.setattr(fastapi.routing, "solve_dependencies", counting)
    return solved


def test_the_direct_routes_answer_every_case_as_fastapi(
    direct_app: ApiHarness, fastapi_app: ApiHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    solved = _count_solving(monkeypatch)
    ours = _scenario(direct_app)
    by_direct_app = len(solved)
    theirs = _scenario(fastapi_app)
    # FastAPI's app solves for the 16 requests the direct app serves itself (good body and key:
    # bad token 2 + 2, no session 2, non-pharmacist 2, key missing, the 2 checks, refused, commit,
    # replay and the two 409s) and for those both hand to FastAPI's parsing and solving.
    handed_back = by_direct_app
    assert handed_back > 0
    assert len(solved) - by_direct_app == handed_back + 16
    assert [name for name, _ in ours] == [name for name, _ in theirs]
    for (name, answer), (_, expected) in zip(ours, theirs, strict=True):
        assert answer == expected, name
    statuses = {name: answer[0] for name, answer in ours}
    # The scenario reaches each layer (so the comparison covers them all).
    assert statuses["no token at /v1/dispensations"] == 401
    assert statuses["no session at /v1/dispensations"] == 403
    assert statuses["key short"] == 422
    assert statuses["key missing"] == 400
    assert statuses["session: bad cip13 at /v1/dispensations/check"] == 422
    assert statuses["commit"] == 201
    assert statuses["replay"] == 201
    assert statuses["same key, other body"] == 409
    assert statuses["check"] == 200


def test_the_daemon_serves_both_routes_without_solving_dependencies(
    direct_app: ApiHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    solved = _count_solving(monkeypatch)
    open_pharmacist_session(direct_app.container)
    client, good = direct_app.client, paper_body(PATIENT_ID)
    assert client.post("/v1/dispensations/check", json=good).status_code == 200
    created = client.post("/v1/dispensations", json=good, headers={"Idempotency-Key": "k-0000001"})
    assert created.status_code == 201, created.text
    assert solved == []
    # What the shortcut does not take still goes through FastAPI.
    assert (
        client.post("/v1/dispensations", json=good, headers={"Idempotency-Key": "x"}).status_code
        == 422
    )
    assert solved == ["/v1/dispensations"]


def test_a_dependency_the_direct_call_does_not_solve_turns_the_shortcut_off() -> None:
    """An app that includes the router with one more dependency keeps FastAPI's handler (that
    dependency is never skipped)."""
    called: list[str] = []

    async def audit(request: Request) -> None:
        called.append(request.url.path)

    app = FastAPI()
    app.include_router(router, dependencies=[Depends(audit)])
    with TestClient(app, raise_server_exceptions=False) as client:
        answer = client.post("/v1/dispensations/check", json=paper_body(PATIENT_ID))
    assert answer.status_code == 500  # no daemon state behind this bare app
    assert called == ["/v1/dispensations/check"]


def _rows(harness: ApiHarness) -> dict[str, int]:
    """How many rows each table holds."""
    engine = harness.container.db.engine
    with engine.connect() as connection:
        return {
            table: connection.execute(text(f'SELECT count(*) FROM "{table}"')).scalar_one()
            for table in inspect(engine).get_table_names()
        }


def _requests_counted(harness: ApiHarness) -> dict[tuple[str, ...], float]:
    """The request counter and the latency histogram's count, by their labels."""
    app: Any = harness.client.app
    registry = app.state.metrics.registry
    return {
        (sample.name, *sample.labels.values()): sample.value
        for metric in registry.collect()
        for sample in metric.samples
        if sample.name in {"lgo_http_requests_total", "lgo_http_request_duration_seconds_count"}
    }


def _access_lines(scenario: Any) -> tuple[Any, list[tuple[Any, ...]]]:
    """What ``scenario()`` returns, and the fields of its access lines (duration aside)."""
    with structlog.testing.capture_logs() as logs:
        result = scenario()
    lines = [
        (line["method"], line["route"], line["status"], "request_id" in line)
        for line in logs
        if line.get("event") == "http_request"
    ]
    return result, lines


def test_the_lane_answers_writes_logs_and_counts_as_the_app(
    direct_app: ApiHarness, no_lane_app: ApiHarness
) -> None:
    routed: dict[str, bool] = {}
    ours, our_lines = _access_lines(lambda: _scenario(direct_app, routed))
    theirs, their_lines = _access_lines(lambda: _scenario(no_lane_app))
    assert [name for name, _ in ours] == [name for name, _ in theirs]
    for (name, answer), (_, expected) in zip(ours, theirs, strict=True):
        assert answer == expected, name
    assert _rows(direct_app) == _rows(no_lane_app)
    assert our_lines == their_lines
    assert len(our_lines) == len(ours)
    assert _requests_counted(direct_app) == _requests_counted(no_lane_app)
    # The lane served what the direct call takes (after the first request to each path, which
    # goes through the app), and handed the app the rest.
    taken = [name for name, entered in routed.items() if not entered]
    for name in ("commit", "replay", "same key, other body", "check", "refused", "key missing"):
        assert name in taken
    for name in (
        "no token at /v1/dispensations",  # the first at each path: learned from the app
        "no token at /v1/dispensations/check",
        "key short",  # declined by the direct call
        "content type text/plain",
        "session: not json at /v1/dispensations",
    ):
        assert routed[name], name


def _elsewhere(harness: ApiHarness) -> tuple[list[Any], list[str]]:
    """Requests near the lane's (other methods, path variants, overridden dependencies): their
    answers, and the paths the router saw."""
    client = harness.client
    good = paper_body(PATIENT_ID)
    open_pharmacist_session(harness.container)
    for path in ("/v1/dispensations/check", "/v1/dispensations"):  # the lane learns both paths
        client.post(path, json=good, headers={"Idempotency-Key": "k-lane-learn"})
    entries = _count_routing(harness)
    entries.clear()
    answers: list[Any] = []
    for method, path in [
        ("POST", "/v1/dispensations/"),
        ("POST", "/v1/dispensations/check/"),
        ("POST", "/v1//dispensations"),
        ("POST", "/V1/dispensations"),
        ("HEAD", "/v1/dispensations"),
        ("OPTIONS", "/v1/dispensations"),
        ("PUT", "/v1/dispensations"),
        ("GET", "/v1/dispensations/check"),
        ("DELETE", "/v1/dispensations/check"),
    ]:
        response = client.request(
            method,
            path,
            json=good,
            headers={"Idempotency-Key": "k-lane-0002"},
            follow_redirects=False,
        )
        kept = {"location", "allow", "content-type"}
        answers.append(
            (
                method,
                path,
                response.status_code,
                {k: v for k, v in response.headers.items() if k in kept},
                response.text,
            )
        )
    app: Any = client.app
    app.dependency_overrides[get_dispensation_intake] = get_dispensation_intake
    try:
        answers.append(_answer(client.post("/v1/dispensations/check", json=good)))
    finally:
        app.dependency_overrides.clear()
    return answers, list(entries)


def test_the_lane_hands_the_app_what_it_must_answer(
    direct_app: ApiHarness, no_lane_app: ApiHarness
) -> None:
    ours, routed = _elsewhere(direct_app)
    theirs, _ = _elsewhere(no_lane_app)
    assert ours == theirs
    assert len(routed) == len(ours)  # each went through the router
    statuses = [answer[2] for answer in ours[:-1]]
    # Path variants end in the counter page's mount (405), GET .../check in the read route (422).
    assert statuses == [405, 405, 405, 405, 404, 405, 405, 422, 405]
    assert ours[-1][0] == 200  # the overridden dependency ran (FastAPI solved it)


def test_the_lane_skips_the_router(direct_app: ApiHarness) -> None:
    """After the first request to a path, a dispensation POST never enters Starlette's router
    (nor the middleware in front of it) and is logged with its route."""
    client, good = direct_app.client, paper_body(PATIENT_ID)
    open_pharmacist_session(direct_app.container)
    entries = _count_routing(direct_app)
    assert client.post("/v1/dispensations/check", json=good).status_code == 200
    assert entries == ["/v1/dispensations/check"]  # learned from the app
    headers = {"Idempotency-Key": "k-lane-0001", "X-Request-ID": "lane-1"}
    with structlog.testing.capture_logs() as logs:
        assert client.post("/v1/dispensations/check", json=good).status_code == 200
        created = client.post("/v1/dispensations", json=good, headers=headers)
    assert created.status_code == 201, created.text
    assert created.headers["x-request-id"] == "lane-1"
    assert entries == ["/v1/dispensations/check", "/v1/dispensations"]
    assert client.post("/v1/dispensations", json=good, headers=headers).status_code == 201
    assert entries == ["/v1/dispensations/check", "/v1/dispensations"]
    access = [(line["route"], line["status"]) for line in logs if line["event"] == "http_request"]
    assert access == [("/v1/dispensations/check", 200), ("/v1/dispensations", 201)]


def test_the_direct_call_sees_in_the_lane_the_scope_the_app_gives_it(
    direct_app: ApiHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the router, the middleware and FastAPI put in the scope for the route (the app, the
    router, the route, the endpoint, FastAPI's entries, the exception handlers) is there, the same,
    when the lane serves the request; only the per-request exit stacks the direct call never reads
    are missing."""
    seen: list[dict[str, Any]] = []
    answer = direct._Server.answer

    async def spying(server: Any, request: Request, body: Any) -> Any:
        seen.append(dict(request.scope))
        return await answer(server, request, body)

    monkeypatch.setattr(direct._Server, "answer", spying)
    client, good = direct_app.client, paper_body(PATIENT_ID)
    open_pharmacist_session(direct_app.container)
    for _ in range(2):  # the first through the app, the second in the lane
        assert client.post("/v1/dispensations/check", json=good).status_code == 200
    by_app, in_lane = seen
    stacks = {"fastapi_middleware_astack", "fastapi_inner_astack", "fastapi_function_astack"}
    assert set(by_app) - set(in_lane) == stacks | {"lgo.direct"}
    assert set(in_lane) <= set(by_app)
    varying = {"state", "headers", *stacks, "lgo.direct"}
    for key in set(in_lane) - varying:
        assert in_lane[key] == by_app[key], key
    for key in ("app", "router", "route", "endpoint"):
        assert in_lane[key] is by_app[key], key
    assert in_lane["fastapi"] is not by_app["fastapi"]  # a request's own copy
