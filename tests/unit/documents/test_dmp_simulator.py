"""The DMP simulator refuses inconsistent submissions (in-process ASGI, no server)."""

from __future__ import annotations

import base64
import re
from dataclasses import replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from lxml import etree

from hwsim.national.app import create_app
from hwsim.national.dmp import XdsError, _parse
from lgo.documents.cda import build_document
from lgo.documents.conformance import CisisKit
from lgo.domain.identity import with_key
from lgo.national import xds
from lgo.national.dmp import provide_request
from tests.fixtures.documents import make_header, make_patient, make_vaccination_note

SOAP = "application/soap+xml; charset=UTF-8"


@pytest.fixture(scope="module")
def sim() -> TestClient:
    return TestClient(create_app())


def _post(sim: TestClient, body: bytes) -> tuple[int, list[str], bytes]:
    response = sim.post("/dmp/xds", content=body, headers={"Content-Type": SOAP})
    codes = re.findall(rb'errorCode="([A-Za-z]+)"', response.content)
    return response.status_code, [c.decode() for c in codes], response.content


def _submitted(sim: TestClient) -> list[dict[str, object]]:
    return [d for d in sim.get("/_sim/dmp/documents").json() if not d.get("seeded")]


def _envelope() -> bytes:
    envelope, _ = provide_request(build_document(make_header(), make_vaccination_note()))
    return envelope


def _edit(envelope: bytes, change: str) -> bytes:
    root = etree.fromstring(envelope)
    entry = root.find(".//rim:ExtrinsicObject", xds.NSMAP)
    assert entry is not None
    if change == "hash":
        value = entry.find("rim:Slot[@name='hash']/rim:ValueList/rim:Value", xds.NSMAP)
        assert value is not None
        value.text = "0" * 40
    elif change == "patient":
        other = make_patient(nir=with_key("1850578006084"))
        document = build_document(make_header(other), make_vaccination_note())
        content = root.find(".//xdsb:Document", xds.NSMAP)
        assert content is not None
        content.text = base64.b64encode(document.xml).decode()
    elif change == "no-document":
        content = root.find(".//xdsb:Document", xds.NSMAP)
        assert content is not None
        content.getparent().remove(content)  # type: ignore[union-attr]
    return etree.tostring(root)


def test_a_consistent_submission_is_stored(sim: TestClient) -> None:
    sim.post("/_sim/reset")
    status, codes, content = _post(sim, _envelope())
    assert (status, codes) == (200, [])
    assert xds.STATUS_SUCCESS.encode() in content
    assert len(_submitted(sim)) == 1


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ("hash", "XDSRepositoryMetadataError"),
        ("patient", "XDSPatientIdDoesNotMatch"),
        ("no-document", "XDSMissingDocument"),
    ],
)
def test_inconsistent_submissions_are_refused(sim: TestClient, change: str, code: str) -> None:
    sim.post("/_sim/reset")
    status, codes, _ = _post(sim, _edit(_envelope(), change))
    assert (status, codes) == (200, [code])
    assert _submitted(sim) == []


def test_doctype_and_garbage_get_a_soap_fault(sim: TestClient) -> None:
    for body in (b'<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>', b"garbage"):
        status, _, content = _post(sim, body)
        assert status == 500 and b"Fault" in content


ENTITIES = '<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">'
WIDE = f'<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE r [{ENTITIES}]><r>&b;</r>'


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32"])
def test_dtd_hidden_in_a_wide_encoding_is_refused(sim: TestClient, encoding: str) -> None:
    body = WIDE.replace("UTF-16", encoding.upper()).encode(encoding)
    assert b"<!DOCTYPE" not in body  # the byte scan alone would miss it
    with pytest.raises(XdsError) as refused:
        _parse(body)
    assert refused.value.context == "request refused"  # not "malformed": refused before parsing
    status, _, content = _post(sim, body)
    assert status == 500 and b"Fault" in content and b"aaaa" not in content


def test_a_utf8_request_still_parses() -> None:
    assert _parse('<?xml version="1.0" encoding="UTF-8"?><r>é</r>'.encode()).text == "é"


def test_content_check_follows_the_conformance_control_and_reset(
    sim: TestClient, cisis_kit: CisisKit, tmp_path: Path
) -> None:
    """With a kit the simulator refuses a non-conformant CDA (one error per failed rule); a reset
    goes back to the start-up setting (no kit here); a folder that is not a kit is refused."""
    assert sim.post("/_sim/dmp/conformance", json={"kit_dir": str(tmp_path)}).status_code == 422
    on = sim.post("/_sim/dmp/conformance", json={"kit_dir": str(cisis_kit.kit_dir)})
    assert on.json() == {"ok": True, "checking": True}
    document = build_document(make_header(), make_vaccination_note())
    broken = replace(document, xml=document.xml.replace(b'extension="2023.01"', b""))
    status, codes, body = _post(sim, provide_request(broken)[0])
    assert status == 200 and codes and set(codes) == {"XDSRegistryMetadataError"}
    assert "Entete_VAC-NOTE" in body.decode()
    status, codes, _ = _post(sim, provide_request(document)[0])
    assert codes == []
    sim.post("/_sim/dmp/reset")
    status, codes, _ = _post(sim, provide_request(broken)[0])  # no kit any more: stored
    assert codes == []
