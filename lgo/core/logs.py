"""Structured logs (structlog, JSON lines on stderr) that never carry secrets or health data.

The redaction processor is a last line of defence: code must not pass such values at all, but if a
key that names a secret or an identity trait slips into an event, its value is replaced.

Exceptions are rendered as their stack and type names only: an exception's message may quote the
data it choked on (a SQL error lists its parameters, a validation error the rejected value). The
standard library's loggers (uvicorn's "Exception in ASGI application", asyncio, ...) go through the
same processors, at WARNING and above.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
import traceback
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog

REDACTED = "[redacted]"
TAKEN_OVER_LOGGERS = (
    "uvicorn",
    "uvicorn.error",
    "uvicorn.access",
    "fastapi",
    "aiosmtpd",
    "mail.log",
)
SENSITIVE_KEYS = frozenset(
    {
        "pin",
        "user_pin",
        "so_pin",
        "password",
        "token",
        "access_token",
        "id_token",
        "refresh_token",
        "authorization",
        "secret",
        "nir",
        "ins",
        "matricule",
        "family_name",
        "given_name",
        "given_names",
        "birth_date",
        "birth_name",
        "first_name",
        "last_name",
        "name_patient",
        "body",
        "payload",
    }
)


# Values that hold no nested keys: most of an event's values, skipped without the (slower) ABC checks.
_FLAT = frozenset({str, int, float, bool, type(None)})


def _redacted(value: Any) -> Any:
    """``value`` with the sensitive keys of any nested mapping replaced (lists included)."""
    if isinstance(value, Mapping):
        return {
            key: REDACTED if str(key).lower() in SENSITIVE_KEYS else _redacted(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [_redacted(item) for item in value]
    return value


def redact(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in list(event_dict.items()):
        if key.lower() in SENSITIVE_KEYS:
            event_dict[key] = REDACTED
        elif type(value) not in _FLAT and isinstance(value, Mapping | list | tuple):
            event_dict[key] = _redacted(value)
    return event_dict


def format_exception_safely(exc: BaseException) -> str:
    """The traceback of ``exc`` and of the exceptions it came from, with no exception message."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not seen for seen in chain):
        chain.append(current)
        current = current.__cause__ or (
            None if current.__suppress_context__ else current.__context__
        )
    parts: list[str] = []
    for item in reversed(chain):
        if parts:
            parts.append("\nwhile handling the above, another exception occurred:\n\n")
        parts.append("Traceback (most recent call last):\n")
        parts.extend(traceback.format_tb(item.__traceback__))
        kind = type(item)
        parts.append(f"{kind.__module__}.{kind.__qualname__} (message withheld)\n")
    return "".join(parts)


def _exception_of(exc_info: Any) -> BaseException | None:
    if isinstance(exc_info, BaseException):
        return exc_info
    if isinstance(exc_info, tuple) and len(exc_info) == 3:
        return exc_info[1] if isinstance(exc_info[1], BaseException) else None
    return sys.exc_info()[1] if exc_info else None


def render_exc_info(
    _: Any, __: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Replace ``exc_info`` by ``exception``: the stack and type names, never the message."""
    exc = _exception_of(event_dict.pop("exc_info", None))
    if exc is not None:
        event_dict["exception"] = format_exception_safely(exc)
    return event_dict


# One encoder for every line (json.dumps with ``default=`` builds a new one per call); a value JSON
# cannot encode is written as its repr, as structlog's JSONRenderer does.
_JSON = json.JSONEncoder(default=repr)


def render_json(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> str:
    return _JSON.encode(event_dict)


_second: tuple[int, str] = (0, "1970-01-01T00:00:00")  # the last second written, as text


def iso_utc(ns: int) -> str:
    """``ns`` nanoseconds since the epoch as TimeStamper(fmt="iso", utc=True) writes the moment
    (``datetime.now(tz=UTC).isoformat()`` with ``Z``: microseconds floored, omitted when zero),
    with the date and time of day formatted once per second (a third of datetime's cost)."""
    global _second
    seconds, rest = divmod(ns, 1_000_000_000)
    last = _second  # one read: another thread may replace it meanwhile
    if last[0] != seconds:
        last = _second = (seconds, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)))
    micro = rest // 1000
    return f"{last[1]}.{micro:06d}Z" if micro else f"{last[1]}Z"


def finish_json(_: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> str:
    """The JSON line's processors after ``merge_contextvars`` in one step, with the same result:
    structlog's ``add_log_level`` and ``TimeStamper(fmt="iso", utc=True)``, then :func:`redact`,
    :func:`render_exc_info` and :func:`render_json` (one call a line instead of five; pinned by
    tests/unit/foundation/test_logging_safety.py)."""
    event_dict["level"] = (
        "warning"
        if method_name == "warn"
        else "error"
        if method_name == "exception"
        else method_name
    )
    event_dict["timestamp"] = iso_utc(time.time_ns())
    redact(None, method_name, event_dict)
    if "exc_info" in event_dict:  # render_exc_info finds nothing to do without the key
        render_exc_info(None, method_name, event_dict)
    return _JSON.encode(event_dict)


class _StderrLines:
    """structlog's output: each line written whole to the ``sys.stderr`` of the moment (a test runner
    may have swapped it since), under one lock. One instance serves every logger, where structlog's
    PrintLoggerFactory builds a PrintLogger for each log call of an uncached logger."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def msg(self, message: str) -> None:
        with self._lock:
            # No stderr (started with fd 2 closed): stdout, as structlog's PrintLogger would.
            stream = sys.stderr or sys.stdout
            if stream is None:
                return
            stream.write(message + "\n")
            stream.flush()

    log = debug = info = warn = warning = msg
    fatal = failure = err = error = critical = exception = msg


_STDERR_LINES = _StderrLines()


def _stderr_lines(*_: Any) -> _StderrLines:
    return _STDERR_LINES


# What configure_logging sets for JSON lines: the processors, compared element by element (a test's
# capture_logs edits the configured list in place), and the level's wrapper class.
_JSON_PROCESSORS = (structlog.contextvars.merge_contextvars, finish_json)
_json_wrapper: tuple[type[Any], int] | None = None  # (wrapper class, its level) when JSON


class HotLogger:
    """A logger for a line written on every request (the access line), at INFO.

    While structlog's configuration is the one :func:`configure_logging` set for JSON lines, a line
    is what structlog would write with it: the keywords then ``event`` (the logger binds no
    context), the context variables (``merge_contextvars``), :func:`finish_json`, the stderr writer
    (about 8 µs a line less than structlog's logger, which builds a bound logger for each call). Any
    other configuration (a test's, structlog's defaults after ``reset_defaults``, another level's
    wrapper) goes through structlog's own logger, as before.
    """

    def __init__(self, name: str) -> None:
        self._log = structlog.get_logger(name)

    def info(self, event: str, **kw: Any) -> None:
        config = structlog.get_config()
        json_wrapper = _json_wrapper
        processors = config["processors"]
        if (
            json_wrapper is None
            or config["wrapper_class"] is not json_wrapper[0]
            or config["logger_factory"] is not _stderr_lines
            or config["context_class"] is not dict
            or len(processors) != 2
            or processors[0] is not _JSON_PROCESSORS[0]
            or processors[1] is not _JSON_PROCESSORS[1]
        ):
            self._log.info(event, **kw)
            return
        if json_wrapper[1] > logging.INFO:
            return
        kw["event"] = event
        _STDERR_LINES.msg(finish_json(None, "info", _JSON_PROCESSORS[0](None, "info", kw)))


def configure_logging(level: str = "INFO", json_output: bool = True) -> None:
    global _json_wrapper
    renderer: Any = render_json if json_output else structlog.dev.ConsoleRenderer()
    shared: list[Any] = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact,
        render_exc_info,
    ]
    # JSON (the daemon's): the same steps fused in finish_json, cheaper for every line.
    steps = [finish_json] if json_output else [*shared, renderer]
    wrapper = structlog.make_filtering_bound_logger(logging.getLevelName(level))
    _json_wrapper = (wrapper, logging.getLevelName(level)) if json_output else None
    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars, *steps],
        wrapper_class=wrapper,
        logger_factory=_stderr_lines,
        # Not cached: a cached logger keeps the level of its first use, and tests reconfigure the
        # level and reset structlog; building one per call costs ~1 µs with the factory above.
        cache_logger_on_first_use=False,
    )
    _route_stdlib_logging(shared, renderer, max(logging.WARNING, logging.getLevelName(level)))


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to the ``sys.stderr`` of the moment (a test runner may have swapped it since)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def _route_stdlib_logging(shared: list[Any], renderer: Any, level: int) -> None:
    """Send the standard library's records through the same redaction and exception rendering.

    WARNING and above only (or the configured level if higher): libraries log request URLs at
    INFO (httpx), which may hold a query.
    """
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = _StderrHandler()
    handler.setFormatter(formatter)
    handler.set_name("lgo")
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "lgo"]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # A server or library may have given its loggers their own plain-text handlers (uvicorn's default
    # config does): those would print tracebacks unredacted. Route them through ours instead.
    for name in TAKEN_OVER_LOGGERS:
        taken = logging.getLogger(name)
        taken.handlers.clear()
        taken.propagate = True


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
