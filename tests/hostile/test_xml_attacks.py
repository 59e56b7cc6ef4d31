"""XML attacks on every XML entry point of the daemon.

The daemon reads XML from outside in three places: INSi replies (SOAP), DMP replies (SOAP/XDS) and
CDA documents (retrieved from the DMP, then validated and rendered). A hostile server on 127.0.0.1
answers each attack; the daemon must refuse it with a typed error, in bounded memory, without
fetching anything (XXE) and without writing anything. ``pytest-timeout`` catches a hang; no timing
is asserted.
"""

from __future__ import annotations

import contextlib
import threading
import tracemalloc
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from lgo.core.safe_xml import XmlRejectedError, parse_xml
from lgo.core.settings import load_settings
from lgo.documents.render import render_html
from lgo.documents.validate import schema_errors
from lgo.national.dmp import DmpClient
from lgo.national.errors import NationalServiceError
from lgo.national.insi import InsiClient, InsiConfig
from lgo.national.transport import NationalHttpClient
from tests.hostile.test_api_schema import business_rows
from tests.load.harness import free_port, live_daemon

pytestmark = pytest.mark.integration

SOAP_NS = "http://www.w3.org/2003/05/soap-envelope"
MEMORY_CAP = 32 * 1024 * 1024  # Python-side peak while refusing; a 3 MB body must not balloon


def _laughs() -> bytes:
    entities = ['<!ENTITY l0 "lol">'] + [
        f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10)
    ]
    return (
        f'<?xml version="1.0"?><!DOCTYPE s:Envelope [{"".join(entities)}]>'
        f'<s:Envelope xmlns:s="{SOAP_NS}"><s:Body>&l9;</s:Body></s:Envelope>'
    ).encode()


def _envelope(inner: str) -> bytes:
    return f'<s:Envelope xmlns:s="{SOAP_NS}"><s:Body>{inner}</s:Body></s:Envelope>'.encode()


ATTACKS: dict[str, bytes] = {
    "billion_laughs": _laughs(),
    "quadratic_blowup": (
        f'<?xml version="1.0"?><!DOCTYPE s [<!ENTITY a "{"x" * 50_000}">]>'
        f'<s:Envelope xmlns:s="{SOAP_NS}"><s:Body>{"&a;" * 2000}</s:Body>'
        "</s:Envelope>"
    ).encode(),
    "xxe_file": (
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        + _envelope("&x;")
    ),
    "xxe_network": (
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM '
        b'"http://127.0.0.1:9/steal">]>' + _envelope("&x;")
    ),
    "parameter_entity": (
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY % p SYSTEM '
        b'"file:///etc/hostname"> %p;]>' + _envelope("")
    ),
    "external_dtd": b'<?xml version="1.0"?><!DOCTYPE r SYSTEM "http://127.0.0.1:9/a.dtd">'
    + _envelope(""),
    "utf16_hidden_doctype": (
        '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE r [<!ENTITY x '
        '"y">]>' + _envelope("&x;").decode()
    ).encode("utf-16"),
    "deep_nesting": _envelope("<a>" * 50_000 + "</a>" * 50_000),
    "oversize": _envelope("<x>" + "A" * (6 * 1024 * 1024) + "</x>"),
    "not_xml": b"\x00\xff garbage \x89PNG",
    "truncated": _envelope("<unclosed>")[:-20],
}


class Hostile:
    """A loopback HTTP server answering every request with ``body`` (SOAP content type)."""

    def __init__(self) -> None:
        self.body = b""
        self.requests = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                owner.requests += 1
                length = int(self.headers.get("content-length", 0))
                self.rfile.read(length)
                self.send_response(200)
                self.send_header("Content-Type", "application/soap+xml; charset=utf-8")
                self.send_header("Content-Length", str(len(owner.body)))
                self.end_headers()
                # The client may stop reading at its size cap: that is the point.
                with contextlib.suppress(ConnectionError):
                    self.wfile.write(owner.body)

            do_GET = do_POST

            def log_message(self, *_: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def hostile() -> Iterator[Hostile]:
    server = Hostile()
    yield server
    server.close()


def refused_in_bounded_memory(call: Any, errors: tuple[type[BaseException], ...]) -> Any:
    tracemalloc.start()
    try:
        with pytest.raises(errors) as info:
            call()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < MEMORY_CAP, f"peak {peak} B"
    return info.value


@pytest.mark.parametrize("attack", sorted(ATTACKS))
@pytest.mark.timeout(30)
def test_parser_refuses(attack: str) -> None:
    error = refused_in_bounded_memory(lambda: parse_xml(ATTACKS[attack]), (XmlRejectedError,))
    assert error.reason in ("oversize", "encoding", "doctype", "malformed", "too_deep")


@pytest.mark.parametrize("attack", sorted(ATTACKS))
@pytest.mark.timeout(30)
def test_cda_validation_and_rendering_refuse(attack: str) -> None:
    for entry in (schema_errors, render_html):
        refused_in_bounded_memory(lambda e=entry: e(ATTACKS[attack]), (XmlRejectedError,))


@pytest.mark.parametrize("attack", sorted(ATTACKS))
@pytest.mark.timeout(30)
def test_insi_reply_refused_over_http(attack: str, hostile: Hostile) -> None:
    from lgo.domain.identity import Traits

    hostile.body = ATTACKS[attack]
    config = InsiConfig(idam="TEST")
    http = NationalHttpClient(
        "insi", hostile.url, timeout_s=5, max_body_bytes=config.max_reply_bytes
    )
    client = InsiClient(http, config)  # what build_insi_client builds, with a handle we can close
    traits = Traits.of("Testseul", "Dominique", "M", "19620101")
    try:
        refused_in_bounded_memory(
            lambda: client.search_by_traits(traits, author_rpps=None), (NationalServiceError,)
        )
    finally:
        http.close()


@pytest.mark.parametrize("attack", sorted(ATTACKS))
@pytest.mark.timeout(30)
def test_dmp_reply_refused_over_http(attack: str, hostile: Hostile) -> None:
    hostile.body = ATTACKS[attack]
    with DmpClient.over_http(
        hostile.url, finess="750000000", timeout_s=5, connect_timeout_s=2
    ) as client:
        refused_in_bounded_memory(
            lambda: client.find_documents(
                "1" * 13, "1.2.250.1.213.1.4.8", author_rpps="10000000009"
            ),
            (NationalServiceError,),
        )


@pytest.mark.timeout(120)
def test_daemon_ins_lookup_with_hostile_insi_changes_nothing(
    tmp_path: Path, hostile: Hostile
) -> None:
    """End to end: POST /v1/patients/{id}/ins while INSi answers each attack → a typed 502/503
    problem, the patient untouched, no row written."""
    import httpx

    from lgo.domain.identity import with_key

    settings = load_settings(
        state_dir=tmp_path / "state",
        hardware={"pcsc_enabled": False},
        api={"port": free_port()},
        national={"base_url": hostile.url, "timeout_s": 5.0},
    )
    with (
        live_daemon(settings) as daemon,
        httpx.Client(base_url=daemon.url, headers=daemon.headers(), timeout=30) as http,
    ):
        created = http.post(
            "/v1/patients",
            json={
                "birth_name": "Testnom",
                "given_names": "Camille",
                "birth_date": "19991231",
                "sex": "F",
                "nir": with_key("2991275056999"),
                "source": "vitale",
            },
        )
        assert created.status_code == 201, created.text
        patient = created.json()
        before = business_rows(daemon.container.db)
        for attack, payload in sorted(ATTACKS.items()):
            hostile.body = payload
            answer = http.post(f"/v1/patients/{patient['id']}/ins", json={"mode": "retrieve"})
            assert answer.status_code in (502, 503), (attack, answer.status_code, answer.text)
            assert answer.headers["content-type"].startswith("application/problem+json")
            assert answer.json()["type"] != "urn:lgo:problem:internal-error"
            assert business_rows(daemon.container.db) == before, attack
        after = http.get(f"/v1/patients/{patient['id']}").json()
        assert {k: after[k] for k in patient} == patient  # no INS, same status, same traits
