"""Structured logs (structlog, JSON lines on stderr) that never carry secrets or health data.

The redaction processor is a last line of defence: code must not pass such values at all, but if a
key that names a secret or an identity trait slips into an event, its value is replaced.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

REDACTED = "[redacted]"
SENSITIVE_KEYS = frozenset(
    {
        "pin", "user_pin", "so_pin", "password", "token", "access_token", "id_token", "refresh_token",
        "authorization", "secret", "nir", "ins", "matricule", "family_name", "given_name",
        "given_names", "birth_date", "birth_name", "first_name", "last_name", "name_patient",
        "body", "payload",
    }
)  # fmt: skip


def redact(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event_dict):
        if key.lower() in SENSITIVE_KEYS:
            event_dict[key] = REDACTED
    return event_dict


def configure_logging(level: str = "INFO", json_output: bool = True) -> None:
    renderer: Any = (
        structlog.processors.JSONRenderer() if json_output else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
