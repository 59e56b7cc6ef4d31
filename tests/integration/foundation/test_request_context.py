"""What every request leaves behind: its id (header and log lines), one access line, its metrics.

These pin what an operator and an integrator see of the request stack (lgo/api/security.py,
lgo/api/observability.py), so that making the stack cheaper changes none of it.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Iterator, MutableMapping
from typing import Any

import pytest
import structlog
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from opentelemetry import trace

from lgo.api import observability
from lgo.api.deps import require_counter
from lgo.api.observability import new_request_id
from lgo.core.logs import configure_logging, get_logger
from tests.fixtures.api import ApiHarness

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z$")
ACCESS_KEYS = [
    "method",
    "route",
    "status",
    "duration_ms",
    "event",
    "request_id",
    "level",
    "timestamp",
]


@pytest.fixture(autouse=True)
def _json_logs() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    configure_logging("INFO", json_output=True)  # as `lgo serve` does
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()


def _lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    err = capsys.readouterr().err
    return [json.loads(line) for line in err.splitlines() if line.startswith("{")]


def _access(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in lines if line.get("event") == "http_request"]


def test_access_line_fields_in_order(api: ApiHarness, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    response = api.client.get("/v1/health", headers={"X-Request-ID": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"
    (line,) = _access(_lines(capsys))
    assert list(line) == ACCESS_KEYS
    assert line["method"] == "GET" and line["route"] == "/v1/health" and line["status"] == 200
    assert line["request_id"] == "abc-123" and line["level"] == "info"
    assert isinstance(line["duration_ms"], float) and 0 <= line["duration_ms"] < 60_000
    assert round(line["duration_ms"], 2) == line["duration_ms"]
    assert TIMESTAMP.match(line["timestamp"]), line["timestamp"]


def test_a_new_request_id_is_a_uuid4_in_header_and_line(
    api: ApiHarness, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    ids = set()
    for value in (None, "bad id\twith spaces", "x" * 65, ""):
        headers = {} if value is None else {"X-Request-ID": value}
        response = api.client.get("/v1/health", headers=headers)
        request_id = response.headers["x-request-id"]
        assert UUID4.match(request_id), request_id
        (line,) = _access(_lines(capsys))
        assert line["request_id"] == request_id
        ids.add(request_id)
    assert len(ids) == 4


def test_refusals_and_unmatched_paths_in_the_access_line(
    api: ApiHarness, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    api.client.get("/v1/health", headers={"Authorization": ""})
    api.client.get("/v1/nope")
    api.client.delete("/v1/health")
    lines = _access(_lines(capsys))
    assert [(x["route"], x["status"]) for x in lines] == [
        ("/v1/health", 401),
        ("unmatched", 404),
        ("unmatched", 405),
    ]
    # Refused by the guard or the body cap: answered at once, no access line.
    api.client.get("/v1/health", headers={"Host": "attacker.example"})
    api.client.post("/v1/dispensations", content=b"x", headers={"Content-Length": "99999999"})
    assert _access(_lines(capsys)) == []


def _add_logging_routes(api: ApiHarness) -> None:
    app: Any = api.client.app
    inside = get_logger("test.inside")

    def plain() -> dict[str, bool]:  # run in the threadpool: the id goes with the context
        inside.info("inside_plain")
        return {"ok": True}

    async def awaited() -> dict[str, bool]:
        inside.info("inside_async")
        return {"ok": True}

    for path, route in (("/v1/test-plain", plain), ("/v1/test-async", awaited)):
        app.add_api_route(path, route, dependencies=[Depends(require_counter)])
        app.router.routes.insert(0, app.router.routes.pop())


def test_lines_logged_during_a_request_carry_its_id_and_only_then(
    api: ApiHarness, capsys: pytest.CaptureFixture[str]
) -> None:
    _add_logging_routes(api)
    capsys.readouterr()
    for path, event in (("/v1/test-plain", "inside_plain"), ("/v1/test-async", "inside_async")):
        response = api.client.get(path, headers={"X-Request-ID": f"id-{event}"})
        assert response.status_code == 200
        lines = _lines(capsys)
        (logged,) = [x for x in lines if x["event"] == event]
        assert logged["request_id"] == f"id-{event}"
        (access,) = _access(lines)
        assert access["route"] == path and access["request_id"] == f"id-{event}"
    get_logger("test.outside").info("after_requests")
    (after,) = _lines(capsys)
    assert "request_id" not in after


def test_each_request_is_counted_and_timed(api: ApiHarness) -> None:
    app: Any = api.client.app
    registry = app.state.metrics.registry

    def sample(name: str, **labels: str) -> float:
        value = registry.get_sample_value(name, labels)
        return 0.0 if value is None else float(value)

    counted = {"method": "GET", "route": "/v1/health", "status": "200"}
    timed = {"method": "GET", "route": "/v1/health"}
    before = sample("lgo_http_requests_total", **counted)
    observed = sample("lgo_http_request_duration_seconds_count", **timed)
    refused = sample("lgo_http_requests_total", method="GET", route="/v1/health", status="401")
    for _ in range(3):
        api.client.get("/v1/health")
    api.client.get("/v1/health", headers={"Authorization": ""})
    assert sample("lgo_http_requests_total", **counted) == before + 3
    assert sample("lgo_http_request_duration_seconds_count", **timed) == observed + 4
    assert sample("lgo_http_requests_total", **timed, status="401") == refused + 1
    assert sample("lgo_http_request_duration_seconds_sum", **timed) > 0


class _RecordingTracer(trace.NoOpTracer):
    def __init__(self, spans: list[str]) -> None:
        self.spans = spans

    def start_span(self, name: str, *args: Any, **kwargs: Any) -> trace.Span:
        self.spans.append(name)
        return super().start_span(name, *args, **kwargs)


class _RecordingProvider(trace.TracerProvider):
    def __init__(self) -> None:
        self.spans: list[str] = []

    def get_tracer(self, *args: Any, **kwargs: Any) -> trace.Tracer:
        return _RecordingTracer(self.spans)


def test_no_request_is_traced_even_with_a_global_tracer(
    api: ApiHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FastAPI traces every request when an OpenTelemetry provider is set; lgo's app never does
    (app.py: NO_TELEMETRY)."""
    provider = _RecordingProvider()
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)
    bare = FastAPI()
    bare.add_api_route("/noop", lambda: {"ok": True})
    with TestClient(bare) as client:
        assert client.get("/noop").status_code == 200
    assert "GET" in provider.spans  # the test sees a span when there is one
    provider.spans.clear()
    assert api.client.get("/v1/health").status_code == 200
    assert api.client.get("/v1/nope").status_code == 404
    assert provider.spans == []


def test_new_request_ids_are_uuid4_text() -> None:
    ids = {new_request_id() for _ in range(2000)}
    assert len(ids) == 2000
    for value in ids:
        parsed = uuid.UUID(value)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
        assert str(parsed) == value and UUID4.match(value)


def test_health_answer_shape_is_unchanged(api: ApiHarness) -> None:
    """/v1/health returns plain values validated by its response model: the same JSON, in the
    same order, as when it built the model itself."""
    body = json.loads(api.client.get("/v1/health").content)
    assert list(body) == ["status", "version", "counter", "components"]
    assert body["status"] == "ok" and body["counter"] == "test-counter"
    assert body["components"] and all(
        list(c) == ["ok", "detail"] for c in body["components"].values()
    )
    assert all(isinstance(c["ok"], bool) for c in body["components"].values())


def test_the_access_line_is_written_without_structlogs_logger_under_lgos_configuration(
    api: ApiHarness, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under configure_logging's JSON configuration the line is built and written directly
    (lgo.core.logs.HotLogger), the same line as structlog's logger writes (keys and values above)."""
    monkeypatch.setattr(observability.log, "_log", None)  # structlog's logger: unusable
    capsys.readouterr()
    assert api.client.get("/v1/health", headers={"X-Request-ID": "direct-1"}).status_code == 200
    (line,) = _access(_lines(capsys))
    assert list(line) == ACCESS_KEYS and line["request_id"] == "direct-1"


def test_the_access_line_follows_any_other_configuration(
    api: ApiHarness, capsys: pytest.CaptureFixture[str]
) -> None:
    """A configuration lgo did not set (a test's, a level above INFO, structlog's defaults, an
    added processor) gets the access line through structlog, as any other line."""
    with structlog.testing.capture_logs() as captured:
        api.client.get("/v1/health")
    (entry,) = [x for x in captured if x["event"] == "http_request"]
    assert entry["route"] == "/v1/health" and entry["status"] == 200
    assert entry["log_level"] == "info"

    configure_logging("WARNING", json_output=True)
    capsys.readouterr()
    api.client.get("/v1/health")
    get_logger("test").warning("still_written")
    assert [x["event"] for x in _lines(capsys)] == ["still_written"]

    def tagged(_: Any, __: str, event: MutableMapping[str, Any]) -> dict[str, Any]:
        return {**event, "tag": "added"}

    configure_logging("INFO", json_output=True)
    processors = structlog.get_config()["processors"]
    structlog.configure(processors=[processors[0], tagged, *processors[1:]])
    api.client.get("/v1/health")
    (line,) = _access(_lines(capsys))
    assert line["tag"] == "added" and line["route"] == "/v1/health"

    configure_logging("INFO", json_output=False)
    api.client.get("/v1/health")
    assert "http_request" in capsys.readouterr().err

    structlog.reset_defaults()
    api.client.get("/v1/health")
    assert "http_request" in capsys.readouterr().out  # structlog's default: stdout
