"""Hostile HTTP against the daemon on loopback (real uvicorn, real sockets).

DNS rebinding (a foreign ``Host``), cross-origin requests (foreign ``Origin``, CORS preflight,
"simple" text/plain and form posts that a web page can send without a preflight), missing or wrong
tokens, oversize and malformed bodies, and scanner garbage through ``POST /v1/scans``. Each is
refused with a problem+json answer, no CORS header ever grants a foreign origin, memory stays
bounded, and no business row is written.
"""

from __future__ import annotations

import json
import socket
import tracemalloc
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest

from lgo.core.settings import load_settings
from tests.fixtures.dispensing import LIST_I_PRODUCT, PRESCRIBER_RPPS, make_patient
from tests.hostile.test_api_schema import business_rows
from tests.load.harness import LiveDaemon, free_port, live_daemon

pytestmark = pytest.mark.integration

CIP = LIST_I_PRODUCT.packs[0].cip13
BIG = 64 * 1024 * 1024
PATIENT = "00000000-0000-4000-8000-00000000f1c7"


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveDaemon]:
    tmp = tmp_path_factory.mktemp("http-hostile")
    settings = load_settings(
        state_dir=tmp / "state", hardware={"pcsc_enabled": False}, api={"port": free_port()}
    )
    with live_daemon(settings) as live:
        make_patient(live.container.db, PATIENT)
        yield live


@pytest.fixture
def http(daemon: LiveDaemon) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=daemon.url, timeout=30) as client:
        yield client


def dispensation(patient_id: str) -> dict[str, Any]:
    return {
        "patient_id": patient_id,
        "patient_address": "1 rue Fictive, 75000 Paris",
        "paper": {
            "prescribed_on": date.today().isoformat(),
            "prescriber_rpps": PRESCRIBER_RPPS,
            "prescriber_name": "DOCTEUR FICTIF",
            "lines": [
                {
                    "designation": "FICTIVOL 10 mg cp",
                    "cip13": CIP,
                    "regulatory_list": "list_i",
                    "units_per_day": "1",
                    "duration_days": 30,
                }
            ],
        },
        "lines": [{"line_no": 1, "intervention": "unchanged", "days": 30, "cip13": CIP}],
        "prescriber_acknowledged": True,  # no Annuaire Santé here: the warning is acknowledged
    }


def assert_problem(response: httpx.Response, status: int, slug: str | None = None) -> None:
    assert response.status_code == status, response.text[:300]
    assert response.headers["content-type"].startswith("application/problem+json")
    if slug:
        assert response.json()["type"] == f"urn:lgo:problem:{slug}"
    assert "access-control-allow-origin" not in response.headers


@pytest.fixture
def unchanged(daemon: LiveDaemon) -> Iterator[None]:
    before = business_rows(daemon.container.db)
    yield
    assert business_rows(daemon.container.db) == before


@pytest.mark.parametrize(
    "host",
    [
        "attacker.example",
        "attacker.example:8700",
        "127.0.0.1.nip.io",
        "localhost.attacker.example",
        "0.0.0.0",
        "[::ffff:7f00:1]",
        "",
    ],
)
def test_dns_rebinding_host_is_refused(
    daemon: LiveDaemon, http: httpx.Client, host: str, unchanged: None
) -> None:
    patient = PATIENT
    headers = {**daemon.headers(), "Host": host, "Idempotency-Key": "rebinding-0001"}
    answer = http.post("/v1/dispensations", json=dispensation(patient), headers=headers)
    assert_problem(answer, 400, "forbidden-host")
    assert_problem(http.get("/v1/health", headers={**daemon.headers(), "Host": host}), 400)


@pytest.mark.parametrize(
    "origin",
    [
        "http://attacker.example",
        "null",
        "http://127.0.0.1:1",
        "https://127.0.0.1",
        "http://localhost.attacker.example",
    ],
)
def test_cross_origin_is_refused(
    daemon: LiveDaemon, http: httpx.Client, origin: str, unchanged: None
) -> None:
    patient = PATIENT
    headers = {**daemon.headers(), "Origin": origin, "Idempotency-Key": "cross-origin-1"}
    assert_problem(
        http.post("/v1/dispensations", json=dispensation(patient), headers=headers),
        403,
        "forbidden-origin",
    )
    preflight = http.options(
        "/v1/dispensations",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    assert_problem(preflight, 403, "forbidden-origin")


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"],
)
def test_simple_requests_without_token_are_refused(
    daemon: LiveDaemon, http: httpx.Client, content_type: str, unchanged: None
) -> None:
    """What a hostile page can send without a preflight: no Authorization header (no cookies)."""
    import json

    patient = PATIENT
    body = json.dumps(dispensation(patient))
    answer = http.post(
        "/v1/dispensations",
        content=body,
        headers={"Content-Type": content_type, "Idempotency-Key": "simple-req-1"},
    )
    assert_problem(answer, 401, "unauthorized")
    # Even with a stolen token, a non-JSON body is not taken as a dispensation.
    answer = http.post(
        "/v1/dispensations",
        content=body,
        headers={
            **daemon.headers(),
            "Content-Type": content_type,
            "Idempotency-Key": "simple-req-2",
        },
    )
    assert 400 <= answer.status_code < 500
    assert answer.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize(
    "authorization",
    [
        "",
        "Bearer",
        "Basic dXNlcjpwYXNz",
        "Bearer lgo_forged_token_0000000000000000000000",
        "Bearer " + "A" * 10_000,
    ],
)
def test_missing_or_forged_token_is_refused(
    http: httpx.Client, authorization: str, unchanged: None
) -> None:
    answer = http.get("/v1/dispensations", headers={"Authorization": authorization})
    assert answer.status_code in (401, 431), answer.text[:200]
    if answer.status_code == 401:
        assert_problem(answer, 401, "unauthorized")


@pytest.mark.parametrize(
    "body",
    [
        b"{",
        b"[]",
        b"null",
        b'{"patient_id": ' + b"[" * 100_000,
        b'{"a": "\xff\xfe"}',
        b"\x00" * 1000,
        b'{"patient_id": "' + b"x" * 500_000 + b'"}',
    ],
)
def test_malformed_json_is_a_problem(
    daemon: LiveDaemon, http: httpx.Client, body: bytes, unchanged: None
) -> None:
    answer = http.post(
        "/v1/dispensations",
        content=body,
        headers={
            **daemon.headers(),
            "Content-Type": "application/json",
            "Idempotency-Key": "malformed-1",
        },
    )
    assert 400 <= answer.status_code < 500, answer.status_code
    assert answer.headers["content-type"].startswith("application/problem+json")


def _post_raw(daemon: LiveDaemon, head: bytes, chunks: Iterator[bytes]) -> bytes:
    """Send a request by hand (so that nothing in the client buffers the body); return the
    first bytes of the answer."""
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=30) as sock:
        sock.sendall(head)
        try:
            for chunk in chunks:
                sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the daemon answered and closed before the end: that is the point
        return sock.recv(4096)


@pytest.mark.timeout(120)
def test_oversize_body_is_refused_in_bounded_memory(daemon: LiveDaemon, unchanged: None) -> None:
    token = daemon.tokens[0]
    common = (
        f"POST /v1/dispensations HTTP/1.1\r\nHost: 127.0.0.1:{daemon.port}\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
        "Idempotency-Key: oversize-0001\r\n"
    )
    chunk = b"[" * (1024 * 1024)
    tracemalloc.start()
    try:
        declared = _post_raw(
            daemon,
            (common + f"Content-Length: {BIG}\r\n\r\n").encode(),
            iter([chunk] * (BIG // len(chunk))),
        )

        def chunked() -> Iterator[bytes]:
            for _ in range(BIG // len(chunk)):
                yield f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
            yield b"0\r\n\r\n"

        streamed = _post_raw(
            daemon, (common + "Transfer-Encoding: chunked\r\n\r\n").encode(), chunked()
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    for answer in (declared, streamed):
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
        assert b"application/problem+json" in answer
    assert peak < 16 * 1024 * 1024, f"daemon buffered {peak} B"


@pytest.mark.parametrize("framing", ["declared", "chunked", "short"])
def test_a_body_within_the_cap_reaches_the_route_whole(
    daemon: LiveDaemon, framing: str, unchanged: None
) -> None:
    """A body within the cap reaches the route as sent, whether its length is declared (handed
    over as the server reads it) or chunked (counted, then replayed); one cut short by the client
    is never answered as if whole."""
    body = json.dumps({"payload": "A" * 600}).encode()
    head = (
        f"POST /v1/scans HTTP/1.1\r\nHost: 127.0.0.1:{daemon.port}\r\n"
        f"Authorization: Bearer {daemon.tokens[0]}\r\nContent-Type: application/json\r\n"
        "Connection: close\r\n"
    )
    if framing == "chunked":
        pieces = [body[i : i + 100] for i in range(0, len(body), 100)]
        sent = [f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in pieces] + [b"0\r\n\r\n"]
        head += "Transfer-Encoding: chunked\r\n\r\n"
    else:
        sent = [body]
        head += f"Content-Length: {len(body) + (100 if framing == 'short' else 0)}\r\n\r\n"
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=30) as sock:
        sock.sendall(head.encode())
        for piece in sent:
            sock.sendall(piece)
        if framing == "short":
            sock.shutdown(socket.SHUT_WR)  # the body ends here, short of its length
        answer = b""
        while chunk := sock.recv(65536):  # Connection: close, the whole answer
            answer += chunk
    if framing == "short":
        assert not answer.startswith(b"HTTP/1.1 2"), answer[:200]
        return
    assert answer.startswith(b"HTTP/1.1 201"), answer[:300]
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["kind"] == "unknown"


@pytest.mark.parametrize(
    "payload",
    [
        "\x00\x01\x02",
        "]d2" + "\x1d" * 500,
        "DROP TABLE patients;--",
        "<script>alert(1)</script>",
        "IS01" + "0" * 22 + "garbage",
        "DC04" + "Z" * 200,
        "APCV" + "\x7f" * 20,
        "é" * 4096,
        "01034009" + "9" * 300,
        "\r\n" * 100,
    ],
)
def test_scanner_garbage_is_classified_unknown(
    daemon: LiveDaemon, http: httpx.Client, payload: str, unchanged: None
) -> None:
    answer = http.post("/v1/scans", json={"payload": payload}, headers=daemon.headers())
    assert answer.status_code in (201, 422), answer.text[:200]
    if answer.status_code == 201:
        assert answer.json()["kind"] == "unknown" and answer.json()["reason"]
    else:
        assert answer.headers["content-type"].startswith("application/problem+json")
    assert "<script>" not in answer.text


def test_oversize_scan_is_refused(daemon: LiveDaemon, http: httpx.Client, unchanged: None) -> None:
    answer = http.post("/v1/scans", json={"payload": "A" * 5000}, headers=daemon.headers())
    assert_problem(answer, 422)


def test_nothing_was_ever_dispensed(daemon: LiveDaemon, tmp_path: Path) -> None:
    assert business_rows(daemon.container.db)["dispensations"] == 0


@pytest.mark.timeout(120)
@pytest.mark.parametrize("flood", ["one endless header", "endless headers", "endless target"])
def test_endless_request_head_is_refused_in_bounded_memory(daemon: LiveDaemon, flood: str) -> None:
    """llhttp (httptools) keeps a request head without limit: lgo/api/server.py bounds it as h11
    did, so 8 MiB of head sent in pieces gets a 400 long before its end."""
    host = f"Host: 127.0.0.1:{daemon.port}\r\n".encode()
    head = b"GET /v1/health HTTP/1.1\r\n" + host
    first, piece = {
        "one endless header": (head + b"X-Junk: ", b"A" * 65536),
        "endless headers": (head, b"".join(b"X-%05d: v\r\n" % i for i in range(6000))),
        "endless target": (b"GET /v1/health?", b"a" * 65536),
    }[flood]
    pieces = iter([piece] * (8 * 1024 * 1024 // len(piece)))
    answer = _post_raw(daemon, first, pieces)
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
    with httpx.Client(base_url=daemon.url, timeout=30) as http:
        assert http.get("/v1/health", headers=daemon.headers()).status_code == 200


@pytest.mark.parametrize("order", ["foreign first", "foreign last", "both loopback"])
def test_two_host_headers_are_refused(daemon: LiveDaemon, order: str, unchanged: None) -> None:
    ours = f"127.0.0.1:{daemon.port}"
    hosts = {
        "foreign first": ("attacker.example", ours),
        "foreign last": (ours, "attacker.example"),
        "both loopback": (ours, ours),
    }[order]
    head = "GET /v1/health HTTP/1.1\r\n" + "".join(f"Host: {h}\r\n" for h in hosts)
    head += f"Authorization: Bearer {daemon.tokens[0]}\r\nConnection: close\r\n\r\n"
    answer = b""
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=30) as sock:
        sock.sendall(head.encode())
        while chunk := sock.recv(4096):  # Connection: close: the whole answer, then the end
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
    assert b"application/problem+json" in answer and b"forbidden-host" in answer
