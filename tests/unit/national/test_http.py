"""NationalHttpClient: retries only where idempotent, typed errors, one trace line, size cap."""

from __future__ import annotations

import httpx
import pytest
from structlog.testing import capture_logs

from lgo.national.errors import MalformedResponse, ServiceTimeout, ServiceUnavailable
from lgo.national.transport import NationalHttpClient, RetryPolicy, decode_json


class Script:
    """A MockTransport handler that plays a list of answers and records what it received."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


def make(script: Script, **kwargs: object) -> NationalHttpClient:
    return NationalHttpClient(
        "test",
        "http://sim.invalid/base",
        transport=httpx.MockTransport(script),
        retry=RetryPolicy(attempts=3, backoff_s=0.0),
        sleep=lambda _: None,
        **kwargs,  # type: ignore[arg-type]
    )


def test_idempotent_call_is_retried_on_503_with_the_same_request_id() -> None:
    script = Script(httpx.Response(503), httpx.Response(503), httpx.Response(200, text="ok"))
    response = make(script).request("a", "GET", "/x", author_rpps=None, idempotent=True)
    assert response.status_code == 200 and response.text == "ok"
    ids = {r.headers["X-Request-ID"] for r in script.requests}
    assert len(script.requests) == 3 and len(ids) == 1


def test_non_idempotent_call_is_not_retried_after_sending() -> None:
    script = Script(httpx.Response(503))
    with pytest.raises(ServiceUnavailable):
        make(script).request("a", "POST", "/x", author_rpps=None, idempotent=False)
    assert len(script.requests) == 1


def test_read_timeout_is_typed_and_not_retried_when_not_idempotent() -> None:
    script = Script(httpx.ReadTimeout("slow"))
    with pytest.raises(ServiceTimeout):
        make(script).request("a", "POST", "/x", author_rpps=None, idempotent=False)
    assert len(script.requests) == 1


def test_connection_refused_is_retried_even_when_not_idempotent() -> None:
    script = Script(httpx.ConnectError("refused"), httpx.Response(200))
    response = make(script).request("a", "POST", "/x", author_rpps=None, idempotent=False)
    assert response.status_code == 200 and len(script.requests) == 2


def test_exhausted_retries_raise_the_last_typed_error() -> None:
    script = Script(httpx.ReadTimeout("slow"))
    with pytest.raises(ServiceTimeout):
        make(script).request("a", "GET", "/x", author_rpps=None, idempotent=True)
    assert len(script.requests) == 3


def test_4xx_is_returned_for_the_caller_to_interpret() -> None:
    script = Script(httpx.Response(404))
    response = make(script).request("a", "GET", "/x", author_rpps=None, idempotent=True)
    assert response.status_code == 404 and len(script.requests) == 1


def test_body_over_the_cap_is_malformed() -> None:
    script = Script(httpx.Response(200, content=b"x" * 2048))
    with pytest.raises(MalformedResponse):
        make(script, max_body_bytes=1024).request(
            "a", "GET", "/x", author_rpps=None, idempotent=True
        )


def test_one_trace_line_per_call_without_payload() -> None:
    script = Script(
        httpx.Response(503), httpx.Response(200, json={"secret": "NIR 299127505699943"})
    )
    with capture_logs() as logs:
        make(script).request(
            "eprescription.read",
            "GET",
            "/x",
            author_rpps="10999999997",
            idempotent=True,
            json_body={"token": "APCVTEST-abc"},
        )
    assert len(logs) == 1
    line = logs[0]
    assert line["event"] == "national_call"
    assert line["author_rpps"] == "10999999997" and line["action"] == "eprescription.read"
    assert line["status"] == "200" and line["attempts"] == 2
    assert line["request_id"] == script.requests[0].headers["X-Request-ID"]
    assert "local_time" in line
    flat = repr(line)
    assert "APCVTEST" not in flat and "299127505699943" not in flat


def test_failed_call_traces_the_error_slug() -> None:
    script = Script(httpx.ConnectError("refused"))
    with capture_logs() as logs, pytest.raises(ServiceUnavailable):
        make(script).request("a", "GET", "/x", author_rpps=None, idempotent=True)
    assert [entry["status"] for entry in logs] == ["national-service-unavailable"]


def test_deadline_bounds_the_retries() -> None:
    clock = [0.0]

    def slow(request: httpx.Request) -> httpx.Response:
        clock[0] += 0.6  # each attempt "takes" 0.6 s of a 1.0 s budget
        return script(request)

    script = Script(httpx.Response(503))
    client = NationalHttpClient(
        "test",
        "http://sim.invalid",
        transport=httpx.MockTransport(slow),
        retry=RetryPolicy(attempts=3, backoff_s=0.0),
        sleep=lambda _: None,
        timeout_s=1.0,
        deadline_s=1.0,
        monotonic=lambda: clock[0],
    )
    with pytest.raises(ServiceUnavailable):
        client.request("a", "GET", "/x", author_rpps=None, idempotent=True)
    assert len(script.requests) == 2  # the third would start past the deadline


@pytest.mark.parametrize(
    ("content_type", "body"),
    [("text/html", b"{}"), ("application/json", b"{"), ("application/json", b"[" * 100_000)],
)
def test_decode_json_only_raises_malformed(content_type: str, body: bytes) -> None:
    response = httpx.Response(200, content=body, headers={"content-type": content_type})
    with pytest.raises(MalformedResponse):
        decode_json(response, "test")
