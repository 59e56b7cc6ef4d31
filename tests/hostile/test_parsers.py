"""Hypothesis on every parser of outside data: whatever comes in, each returns its typed value or
raises its one documented error type; nothing else escapes (no IndexError, KeyError, RecursionError,
UnicodeError…).

- scanner payloads → ``Classifier.classify`` (never raises), GS1 → ``CodeFormatError``,
- Vitale TLV → ``TlvError``,
- FHIR (e-prescription bundles, apCV identities) → ``NationalServiceError``,
- SOAP (INSi replies, DMP/XDS replies) → ``NationalServiceError``,
- CDA (validation, rendering) → ``XmlRejectedError`` or a clean result.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from drivers.errors import CodeFormatError, TlvError
from drivers.scanners import gs1
from drivers.scanners.classify import MAX_PAYLOAD, Classifier, ScanKind
from drivers.vitale import tlv
from lgo.core.safe_xml import XmlRejectedError
from lgo.documents.render import render_html
from lgo.documents.validate import schema_errors
from lgo.national import dmp, insi
from lgo.national.apcv import identity_from_json
from lgo.national.eprescription import record_from_bundle
from lgo.national.errors import NationalServiceError

FAST = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
SLOW = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
TODAY = dt.date(2026, 11, 23)
SOAP = "http://www.w3.org/2003/05/soap-envelope"

# Scanner garbage: control characters, GS separators, AIM prefixes, near-miss real prefixes.
scanner_text = st.one_of(
    st.text(max_size=300),
    st.builds(
        lambda p, t: p + t,
        st.sampled_from(
            [
                "]d2",
                "]Q3",
                "]C1",
                "]E0",
                "]C0",
                "IS01",
                "DC02",
                "DC04",
                "APCV",
                "0103400",
                "01",
                "340",
            ]
        ),
        st.text(alphabet=st.characters(codec="latin-1"), max_size=200),
    ),
    st.binary(max_size=300),
    st.just("A" * (MAX_PAYLOAD + 10)),
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda kids: (
        st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=12), kids, max_size=4)
    ),
    max_leaves=25,
)


@st.composite
def xml_trees(draw: Any, root_ns: str = SOAP) -> bytes:
    """Well-formed XML with plausible and random names, attributes and text."""
    names = st.sampled_from(
        [
            f"{{{root_ns}}}Body",
            f"{{{root_ns}}}Fault",
            f"{{{root_ns}}}Code",
            "{urn:hl7-org:v3}title",
            "{urn:hl7-org:v3}section",
            "RESULTAT",
            "{urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0}ExtrinsicObject",
            "x",
            "Value",
            "Slot",
        ]
    )
    texts = st.text(alphabet=st.characters(blacklist_categories=["Cs", "Cc"]), max_size=30)

    def build(parent: Any, depth: int) -> None:
        for _ in range(draw(st.integers(0, 3 if depth < 4 else 0))):
            child = etree.SubElement(parent, draw(names))
            child.text = draw(texts)
            if draw(st.booleans()):
                child.set("value", draw(texts))
            build(child, depth + 1)

    root_tag = draw(
        st.sampled_from([f"{{{root_ns}}}Envelope", "{urn:hl7-org:v3}ClinicalDocument", "root"])
    )
    root = etree.Element(root_tag)
    build(root, 0)
    return bytes(etree.tostring(root))


def soap_response(content: bytes, status: int = 200) -> httpx.Response:
    request = httpx.Request("POST", "http://127.0.0.1/x")
    return httpx.Response(
        status, headers={"content-type": "application/soap+xml"}, content=content, request=request
    )


@FAST
@given(scanner_text)
def test_scanner_classifier_never_raises(payload: str | bytes) -> None:
    result = Classifier().classify(payload, TODAY)
    assert isinstance(result.kind, ScanKind)
    if result.kind is ScanKind.UNKNOWN:
        assert result.reason


@FAST
@given(st.one_of(st.text(max_size=120), st.builds(lambda t: "01" + t, st.text(max_size=80))))
def test_gs1_parses_or_refuses(data: str) -> None:
    try:
        parsed = gs1.parse_gs1(data)
    except CodeFormatError:
        return
    assert gs1.ean_is_valid(parsed.gtin)


@FAST
@given(st.binary(max_size=400), st.booleans())
def test_tlv_parses_or_refuses(data: bytes, padded: bool) -> None:
    with contextlib.suppress(TlvError):
        tlv.parse(data, padded=padded)


@FAST
@given(json_values)
def test_fhir_bundle_maps_or_refuses(data: Any) -> None:
    with contextlib.suppress(NationalServiceError):
        record_from_bundle(data, "01S2TBPZ2JCNZZYGHZ")


@FAST
@given(json_values)
def test_apcv_identity_maps_or_refuses(data: Any) -> None:
    with contextlib.suppress(NationalServiceError):
        identity_from_json(data)


@SLOW
@given(st.one_of(xml_trees(), st.binary(max_size=300)), st.sampled_from([200, 400, 500]))
def test_insi_reply_maps_or_refuses(content: bytes, status: int) -> None:
    with contextlib.suppress(NationalServiceError):
        insi._interpret(soap_response(content, status), max_bytes=1_000_000)


@SLOW
@given(st.one_of(xml_trees(), st.binary(max_size=300)), st.sampled_from([200, 500]))
def test_dmp_reply_maps_or_refuses(content: bytes, status: int) -> None:
    try:
        body = dmp._soap_body(soap_response(content, status))
    except NationalServiceError:
        return
    with contextlib.suppress(NationalServiceError):
        dmp._raise_registry_errors(body, frozenset())


@SLOW
@given(st.one_of(xml_trees(root_ns="urn:hl7-org:v3"), st.binary(max_size=300)))
def test_cda_validates_and_renders_or_refuses(content: bytes) -> None:
    try:
        errors = schema_errors(content)
        html = render_html(content)
    except XmlRejectedError:
        return
    assert isinstance(errors, list)
    assert html.startswith("<article") and "<script" not in html


@pytest.mark.parametrize("payload", ["\x00" * 50, "\x1b[31m", "é" * 5000, "]d2" + "\x1d" * 100])
def test_scanner_control_garbage_is_unknown(payload: str) -> None:
    assert Classifier().classify(payload, TODAY).kind is ScanKind.UNKNOWN
