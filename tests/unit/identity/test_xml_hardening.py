"""lgo.core.safe_xml: untrusted XML is refused early and cheaply; ordinary SOAP parses."""

from __future__ import annotations

import asyncio
import tracemalloc
from collections.abc import AsyncIterator, Iterator

import pytest

from lgo.core.errors import LgoError
from lgo.core.safe_xml import XmlRejectedError, aread_capped, parse_xml, read_capped

SOAP = (
    b'<?xml version="1.0" encoding="UTF-8"?>'
    b'<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope">'
    b"<soap:Body><r>caf\xc3\xa9 &amp; th\xc3\xa9</r></soap:Body></soap:Envelope>"
)

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<lolz>&lol9;</lolz>"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>"""


def test_plain_soap_parses_with_text_intact() -> None:
    root = parse_xml(SOAP)
    assert root.tag == "{http://www.w3.org/2003/05/soap-envelope}Envelope"
    assert root[0][0].text == "café & thé"


def test_error_is_typed_lgo_error() -> None:
    with pytest.raises(XmlRejectedError) as info:
        parse_xml(b"<a>")
    assert isinstance(info.value, LgoError)
    assert info.value.reason == "malformed"
    assert info.value.problem()["type"] == "urn:lgo:problem:xml-rejected"


@pytest.mark.parametrize(
    "payload", [BILLION_LAUGHS, XXE, b'<!DOCTYPE r SYSTEM "http://127.0.0.1:9/x.dtd"><r/>']
)
def test_dtd_refused_before_parsing_without_memory_blowup(payload: bytes) -> None:
    tracemalloc.start()
    try:
        with pytest.raises(XmlRejectedError) as info:
            parse_xml(payload)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.value.reason == "doctype"
    assert peak < 1_000_000  # billion laughs would need gigabytes if expanded


def test_entity_declared_without_doctype_keyword_refused() -> None:
    with pytest.raises(XmlRejectedError) as info:
        parse_xml(b"<r><!ENTITY x 'y'></r>")
    assert info.value.reason == "doctype"


def test_undeclared_entity_reference_is_malformed_not_expanded() -> None:
    with pytest.raises(XmlRejectedError) as info:
        parse_xml(b"<r>&x;</r>")
    assert info.value.reason == "malformed"


def test_oversize_refused_by_length_alone() -> None:
    with pytest.raises(XmlRejectedError) as info:
        parse_xml(b"<r>" + b"a" * 2000 + b"</r>", max_bytes=1000)
    assert info.value.reason == "oversize"


@pytest.mark.parametrize("depth", [70, 300, 5000])
def test_deep_nesting_refused(depth: int) -> None:
    payload = b"<a>" * depth + b"</a>" * depth
    with pytest.raises(XmlRejectedError) as info:
        parse_xml(payload)
    assert info.value.reason == "too_deep"


def test_depth_limit_is_configurable() -> None:
    payload = b"<a>" * 10 + b"</a>" * 10
    assert parse_xml(payload, max_depth=10).tag == "a"
    with pytest.raises(XmlRejectedError):
        parse_xml(payload, max_depth=9)


@pytest.mark.parametrize(
    "payload",
    [
        "<!DOCTYPE r><r/>".encode("utf-16"),
        "<r/>".encode("utf-16-be"),
        b"<r>\x00</r>",
    ],
)
def test_wide_encodings_refused(payload: bytes) -> None:
    with pytest.raises(XmlRejectedError) as info:
        parse_xml(payload)
    assert info.value.reason == "encoding"


def test_not_xml_refused() -> None:
    with pytest.raises(XmlRejectedError) as info:
        parse_xml(b"HTTP 500 Internal Server Error")
    assert info.value.reason == "malformed"


def test_utf8_bom_accepted() -> None:
    assert parse_xml(b"\xef\xbb\xbf<r/>").tag == "r"


def test_processing_instructions_dropped() -> None:
    root = parse_xml(b"<r><?evil payload?><c/></r>")
    assert [child.tag for child in root] == ["c"]


def _endless() -> Iterator[bytes]:
    while True:
        yield b"x" * 4096


async def _aendless() -> AsyncIterator[bytes]:
    while True:
        yield b"x" * 4096


def test_read_capped_stops_an_endless_body() -> None:
    with pytest.raises(XmlRejectedError) as info:
        read_capped(_endless(), max_bytes=100_000)
    assert info.value.reason == "oversize"
    assert read_capped([b"<r>", b"</r>"], max_bytes=7) == b"<r></r>"


def test_aread_capped_stops_an_endless_body() -> None:
    with pytest.raises(XmlRejectedError):
        asyncio.run(aread_capped(_aendless(), max_bytes=100_000))
