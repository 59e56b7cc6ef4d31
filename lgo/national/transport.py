"""Shared HTTP plumbing for the national-service clients.

One :class:`NationalHttpClient` per remote service. It gives every client the same guarantees:

- a timeout on every attempt (connect and read) and an overall deadline per call;
- retries only when the caller says the call is idempotent (GET, or a POST carrying an
  ``Idempotency-Key``), on timeouts, connection errors and 502/503/504, with a short backoff.
  A refused connection is retried even for non-idempotent calls: nothing reached the server;
- transport failures mapped to typed errors (:class:`ServiceTimeout`, :class:`ServiceUnavailable`);
- one trace line per call (``national_call``: service, action, author RPPS, local time, request id,
  status, attempts) and never the payload, a token or health data;
- bodies read with a size cap, JSON decoded into :class:`MalformedResponse` on any defect.

Usage (see ``lgo/national/eprescription.py`` for a full client)::

    http = NationalHttpClient("insi", settings.national.base_url + "/insi", timeout_s=5.0)
    response = http.request("search_ins", "POST", "/soap", author_rpps=rpps, idempotent=True,
                            content=envelope, headers={"Content-Type": "application/soap+xml"})
    root = parse_xml(read_body(response))   # each client interprets the status codes it knows

Tests inject ``transport=httpx.MockTransport(handler)`` and ``sleep=lambda _: None``.
"""

from __future__ import annotations

import functools
import json
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Self

import httpx
import structlog

from lgo.core.errors import LgoError
from lgo.national.errors import (
    MalformedResponse,
    RequestRejected,
    ServiceTimeout,
    ServiceUnavailable,
)

log = structlog.get_logger("lgo.national")

DEFAULT_MAX_BODY_BYTES = 2 * 1024 * 1024
RETRYABLE_STATUSES = frozenset({502, 503, 504})
# Receivers of every trace line's fields (the stats part keeps them in a table). A sink must be
# quick and must not raise; one that does is logged and skipped, never breaking the call.
TRACE_SINKS: list[Callable[[dict[str, Any]], None]] = []


@dataclass(frozen=True)
class RetryPolicy:
    """How many attempts an idempotent call may make, and the pause between them."""

    attempts: int = 3
    backoff_s: float = 0.2
    backoff_factor: float = 2.0
    retry_statuses: frozenset[int] = field(default=RETRYABLE_STATUSES)

    def pause(self, attempt: int) -> float:
        """Pause before attempt number ``attempt + 1`` (attempt counts from 1)."""
        return self.backoff_s * self.backoff_factor ** (attempt - 1)


@dataclass
class _Outcome:
    response: httpx.Response | None = None
    error: Exception | None = None
    not_sent: bool = False  # the connection was never made: retrying cannot duplicate anything


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """httpx's default verification context, built once per process: loading the CA bundle costs
    ~90 ms and a few MiB, and every national client would otherwise load its own at start."""
    return httpx.create_ssl_context()


class NationalHttpClient:
    """A small httpx wrapper shared by the national clients (thread-safe like ``httpx.Client``).

    The ``httpx.Client`` is built on first use (with the shared TLS context), not at the daemon's
    start: a counter that never calls a service never pays for it."""

    def __init__(
        self,
        service: str,
        base_url: str,
        *,
        timeout_s: float = 5.0,
        connect_timeout_s: float = 2.0,
        deadline_s: float | None = None,
        retry: RetryPolicy | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.service = service
        self.timeout_s = timeout_s
        self.connect_timeout_s = min(connect_timeout_s, timeout_s)
        self.retry = retry or RetryPolicy()
        # Default budget: every attempt may use its full timeout, plus the pauses between them.
        self.deadline_s = deadline_s or self._default_deadline()
        self.max_body_bytes = max_body_bytes
        self._sleep = sleep
        self._monotonic = monotonic
        self._base_url = base_url.rstrip("/")
        self._transport = transport
        self._built: httpx.Client | None = None
        self._build_lock = threading.Lock()

    @property
    def _client(self) -> httpx.Client:
        if self._built is None:
            with self._build_lock:
                if self._built is None:
                    self._built = httpx.Client(
                        base_url=self._base_url,
                        transport=self._transport,
                        follow_redirects=False,
                        verify=_tls_context(),
                    )
        return self._built

    def _default_deadline(self) -> float:
        pauses = sum(self.retry.pause(n) for n in range(1, self.retry.attempts))
        return self.timeout_s * self.retry.attempts + pauses

    def close(self) -> None:
        if self._built is not None:
            self._built.close()

    def __enter__(self) -> NationalHttpClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def request(
        self,
        action: str,
        method: str,
        path: str,
        *,
        author_rpps: str | None,
        idempotent: bool,
        json_body: Any = None,
        content: bytes | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send one call (with retries if idempotent) and return the final response, body read.

        Raises :class:`ServiceTimeout` / :class:`ServiceUnavailable` when no usable answer came;
        any other status is returned for the caller to interpret.
        """
        request_id = str(uuid.uuid4())
        all_headers = {"X-Request-ID": request_id, **(headers or {})}
        started = self._monotonic()
        attempts = 0
        outcome = _Outcome()
        while True:
            attempts += 1
            remaining = self.deadline_s - (self._monotonic() - started)
            outcome = self._attempt(
                method, path, all_headers, json_body, content, params, remaining
            )
            if not self._should_retry(outcome, idempotent, attempts, started):
                break
            self._sleep(self.retry.pause(attempts))
        self._trace(action, author_rpps, request_id, outcome, attempts, started)
        if outcome.error is not None:
            raise outcome.error
        assert outcome.response is not None
        if outcome.response.status_code in self.retry.retry_statuses:
            raise ServiceUnavailable(f"{self.service}: HTTP {outcome.response.status_code}")
        return outcome.response

    def _attempt(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str],
        json_body: Any,
        content: bytes | None,
        params: Mapping[str, str] | None,
        remaining_s: float,
    ) -> _Outcome:
        read_s = max(0.001, min(self.timeout_s, remaining_s))
        timeout = httpx.Timeout(read_s, connect=min(self.connect_timeout_s, read_s))
        try:
            request = self._client.build_request(
                method,
                path,
                json=json_body,
                content=content,
                params=params,
                headers=headers,
                timeout=timeout,
            )
            response = self._client.send(request, stream=True)
            try:
                body = self._read_capped(response)
            finally:
                response.close()
        except httpx.ConnectTimeout as exc:
            timeout_error = ServiceTimeout(f"{self.service}: {type(exc).__name__}")
            return _Outcome(error=timeout_error, not_sent=True)
        except httpx.ConnectError as exc:
            error = ServiceUnavailable(f"{self.service}: {type(exc).__name__}")
            return _Outcome(error=error, not_sent=True)
        except httpx.TimeoutException as exc:
            return _Outcome(error=ServiceTimeout(f"{self.service}: {type(exc).__name__}"))
        except (httpx.TransportError, httpx.DecodingError) as exc:
            return _Outcome(error=ServiceUnavailable(f"{self.service}: {type(exc).__name__}"))
        except MalformedResponse as exc:
            return _Outcome(error=exc)
        # Rebuild a plain, fully read response so callers never touch the network again.
        done = httpx.Response(
            response.status_code, headers=response.headers, content=body, request=request
        )
        return _Outcome(response=done)

    def _read_capped(self, response: httpx.Response) -> bytes:
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > self.max_body_bytes:
                raise MalformedResponse(f"{self.service}: body larger than {self.max_body_bytes} B")
            chunks.append(chunk)
        return b"".join(chunks)

    def _should_retry(
        self, outcome: _Outcome, idempotent: bool, attempts: int, started: float
    ) -> bool:
        if attempts >= self.retry.attempts:
            return False
        elapsed = self._monotonic() - started
        if elapsed + self.retry.pause(attempts) >= self.deadline_s:
            return False
        if outcome.not_sent:
            return True
        if not idempotent:
            return False
        if isinstance(outcome.error, ServiceUnavailable):  # includes ServiceTimeout
            return True
        return (
            outcome.response is not None
            and outcome.response.status_code in self.retry.retry_statuses
        )

    def _trace(
        self,
        action: str,
        author_rpps: str | None,
        request_id: str,
        outcome: _Outcome,
        attempts: int,
        started: float,
    ) -> None:
        if outcome.response is not None:
            status: str = str(outcome.response.status_code)
        else:
            status = getattr(outcome.error, "slug", "error")
        fields: dict[str, Any] = {
            "service": self.service,
            "action": action,
            "author_rpps": author_rpps,
            "local_time": datetime.now().astimezone().isoformat(timespec="milliseconds"),
            "request_id": request_id,
            "status": status,
            "attempts": attempts,
            "duration_ms": round((self._monotonic() - started) * 1000),
        }
        log.info("national_call", **fields)
        for sink in list(TRACE_SINKS):
            try:
                sink(fields)
            except Exception:
                log.exception("national_trace_sink_failed", service=self.service)


def decode_json(response: httpx.Response, service: str) -> Any:
    """The JSON body of ``response``; :class:`MalformedResponse` on anything that is not JSON."""
    content_type = response.headers.get("content-type", "")
    if "json" not in content_type:
        raise MalformedResponse(f"{service}: unexpected content type")
    try:
        return json.loads(response.content)
    except (ValueError, RecursionError) as exc:
        raise MalformedResponse(f"{service}: body is not JSON ({type(exc).__name__})") from None


def json_or_none(response: httpx.Response, service: str) -> Any:
    """The JSON body of an error answer, or ``None`` when it has none (empty, HTML, broken)."""
    try:
        return decode_json(response, service)
    except MalformedResponse:
        return None


def refusal_error(
    response: httpx.Response,
    known: type[LgoError] | None,
    detail: str,
    *,
    not_found: type[LgoError],
) -> LgoError:
    """The typed error of a non-success answer: the service's own code (``known``) first, then
    the status (404 → ``not_found``, 5xx → unavailable, anything else → rejected)."""
    if known is not None:
        return known(detail)
    if response.status_code == 404:
        return not_found(detail)
    if response.status_code >= 500:
        return ServiceUnavailable(detail)
    return RequestRejected(detail)


class ServiceClient:
    """Base of a national-service client: it owns its :class:`NationalHttpClient`, built from
    the service's URL and timeouts unless one is given (``http``)."""

    service: ClassVar[str]

    def __init__(
        self,
        base_url: str = "",
        *,
        timeout_s: float = 5.0,
        connect_timeout_s: float = 2.0,
        deadline_s: float | None = None,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        http: NationalHttpClient | None = None,
    ) -> None:
        self._http = http or NationalHttpClient(
            self.service,
            base_url,
            timeout_s=timeout_s,
            connect_timeout_s=connect_timeout_s,
            deadline_s=deadline_s,
            retry=retry,
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
