"""Log lines never carry an exception's message: it may quote the data the code choked on."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
import structlog
import uvicorn
from fastapi import FastAPI

from lgo.api.problems import install_problem_handlers
from lgo.core import logs
from lgo.core.logs import configure_logging, get_logger

# Built at run time so that the source lines shown in a traceback never contain it.
SECRET = "-".join(["NIR", "2" + "850275" + "123456", "DUPONT"])


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()


def _lines(err: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in err.splitlines() if line.startswith("{")]


def _fail_with_data() -> None:
    try:
        raise KeyError(SECRET)
    except KeyError as exc:
        raise ValueError(f"could not store {SECRET}") from exc


def test_structlog_exception_keeps_stack_and_types_not_messages(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("INFO", json_output=True)
    try:
        _fail_with_data()
    except ValueError:
        get_logger("test").exception("store_failed")
    err = capsys.readouterr().err
    assert SECRET not in err
    (line,) = _lines(err)
    trace = str(line["exception"])
    assert "_fail_with_data" in trace
    assert "builtins.KeyError" in trace and "builtins.ValueError" in trace
    assert "message withheld" in trace


def test_stdlib_records_are_rendered_the_same_way(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", json_output=True)
    try:
        _fail_with_data()
    except ValueError:
        logging.getLogger("some.library").error("it broke", exc_info=True)
    logging.getLogger("httpx").info("HTTP Request: GET /search?name=%s", SECRET)
    err = capsys.readouterr().err
    assert SECRET not in err
    (line,) = _lines(err)  # the INFO line of a library is not printed at all
    assert line["event"] == "it broke" and line["level"] == "error"
    assert "builtins.ValueError" in str(line["exception"])


def test_configuring_twice_keeps_one_handler() -> None:
    configure_logging("INFO")
    configure_logging("DEBUG")
    ours = [h for h in logging.getLogger().handlers if h.get_name() == "lgo"]
    assert len(ours) == 1
    assert logging.getLogger().level == logging.WARNING  # never the libraries' INFO lines
    configure_logging("ERROR")
    assert logging.getLogger().level == logging.ERROR


def test_unhandled_api_error_under_uvicorn_leaks_nothing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Both our problem handler and uvicorn ("Exception in ASGI application") log the error."""
    configure_logging("INFO", json_output=True)
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/boom")
    def boom() -> None:
        _fail_with_data()

    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        port = _wait_for_port(server)
        response = httpx.get(f"http://127.0.0.1:{port}/boom", timeout=5)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    assert response.status_code == 500
    assert SECRET not in response.text
    err = capsys.readouterr().err
    assert SECRET not in err
    events = [str(line["event"]) for line in _lines(err)]
    assert "unhandled_error" in events
    assert any(event.startswith("Exception in ASGI application") for event in events)


def _wait_for_port(server: uvicorn.Server) -> int:
    started = threading.Event()
    for _ in range(500):  # bounded: 5 s
        if server.started:
            started.set()
            break
        started.wait(0.01)
    assert server.started, "uvicorn did not start"
    (listener,) = server.servers
    (sock,) = listener.sockets
    port: int = sock.getsockname()[1]
    return port


def test_sensitive_keys_are_redacted_at_any_depth(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", json_output=True)
    get_logger("test").info(
        "call_done",
        fields={"service": "insi", "patient": {"NIR": SECRET, "id": "p-1"}},
        items=[{"token": SECRET}, "plain"],
        pin=SECRET,
    )
    err = capsys.readouterr().err
    assert SECRET not in err
    (line,) = _lines(err)
    assert line["fields"] == {"service": "insi", "patient": {"NIR": "[redacted]", "id": "p-1"}}
    assert line["items"] == [{"token": "[redacted]"}, "plain"]
    assert line["pin"] == "[redacted]"


def test_loggers_configured_elsewhere_are_taken_over(capsys: pytest.CaptureFixture[str]) -> None:
    """uvicorn's default config gives its loggers a plain handler that prints raw tracebacks."""
    import logging.config

    logging.config.dictConfig(uvicorn.config.LOGGING_CONFIG)
    configure_logging("INFO", json_output=True)
    try:
        raise ValueError(SECRET)
    except ValueError:
        logging.getLogger("uvicorn.error").exception("Exception in ASGI application")
    err = capsys.readouterr().err
    assert SECRET not in err
    assert any(
        str(line["event"]).startswith("Exception in ASGI application") for line in _lines(err)
    )


@pytest.mark.parametrize(
    ("method", "event"),
    [
        ("info", {"event": "http_request", "method": "GET", "status": 200, "duration_ms": 0.41}),
        (
            "warning",
            {"event": "x", "Token": "secret", "nested": {"nir": "1", "ok": [1, {"pin": 2}]}},
        ),
        ("warn", {"event": "x", "value": object.__name__, "n": None, "f": 1.5, "b": True}),
        ("exception", {"event": "store_failed", "exc_info": True}),
        ("error", {"event": "store_failed", "exc_info": False, "body": "x"}),
        ("debug", {"event": "odd", "when": __import__("datetime").date(2026, 1, 2)}),
    ],
)
def test_the_fused_json_step_writes_what_the_separate_processors_wrote(
    method: str, event: dict[str, object]
) -> None:
    """finish_json (lgo.core.logs) is structlog's add_log_level and ISO UTC TimeStamper, then
    redact, render_exc_info and render_json, in one step: the same line but the time."""
    separate = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        logs.redact,
        logs.render_exc_info,
        logs.render_json,
    ]
    try:
        _fail_with_data()
    except ValueError:
        fused = json.loads(logs.finish_json(None, method, dict(event)))
        expected: object = dict(event)
        for processor in separate:
            expected = processor(None, method, expected)
    assert isinstance(expected, str)
    wanted = json.loads(expected)
    for line in (fused, wanted):
        assert re.fullmatch(
            r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z", str(line.pop("timestamp"))
        )
    assert list(fused.items()) == list(wanted.items())
    assert SECRET not in json.dumps(fused)


@pytest.mark.parametrize(
    "ns",
    [
        0,
        1_000,
        999_999_999,
        1_764_800_000_000_000_000,  # the same second twice: the text kept from the call before
        1_764_800_000_123_456_789,
        1_764_800_001_000_000_000,
        1_709_164_799_999_999_999,  # 2024-02-28 23:59:59.999999, then the leap day
        1_709_164_800_000_000_500,
        951_782_400_000_001_000,  # 2000-02-29, then back in time
        4_102_444_799_000_999_000,  # 2099-12-31
    ],
)
def test_iso_utc_writes_the_time_as_structlogs_timestamper(ns: int) -> None:
    """What TimeStamper(fmt="iso", utc=True) writes for that moment: datetime's isoformat of the
    UTC time, microseconds floored (as datetime.now does) and left out when zero, ``Z``."""
    seconds, rest = divmod(ns, 1_000_000_000)
    moment = datetime.fromtimestamp(seconds, UTC).replace(microsecond=rest // 1000)
    assert logs.iso_utc(ns) == moment.isoformat().replace("+00:00", "Z")


def test_iso_utc_is_now() -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    written = datetime.fromisoformat(logs.iso_utc(time.time_ns()).replace("Z", "+00:00"))
    assert before <= written <= datetime.now(UTC)
