"""Both sides of the wire against the canonical exchanges of ``contracts/<service>/examples/``.

The client is tested against the files alone (its requests must equal the canonical requests, the
canonical answers must parse into its typed results); the simulator is tested against the files
alone (it accepts the canonical requests and answers in the canonical shape). Neither side is the
other's oracle. See docs/contracts.md.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from lxml import etree

from hwsim.national.app import create_app
from hwsim.national.psc import provider_of
from lgo.domain.identity import Traits, with_key
from lgo.national import apcv, eprescription, insi, psc, xds
from lgo.national.dmp import DmpClient
from lgo.national.errors import ApcvTokenUsed, PrescriptionCancelled, PrescriptionUnknown
from lgo.national.transport import NationalHttpClient, RetryPolicy

CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"
RPPS = "10999999997"
PRESCRIPTION = "EPTEST0000000000000042"
CANCELLED = "EPTEST0000000000000048"


def example(service: str, name: str) -> Any:
    return json.loads((CONTRACTS / service / "examples" / name).read_text(encoding="utf-8"))


def xml_example(service: str, name: str) -> bytes:
    return (CONTRACTS / service / "examples" / name).read_bytes()


def shape(value: object) -> object:
    """The structure of a JSON value: keys, list lengths and scalar types, not the values."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(item) for item in value]
    return type(value).__name__


Handler = Callable[[httpx.Request], httpx.Response]


def http(service: str, handler: Handler) -> NationalHttpClient:
    return NationalHttpClient(
        service,
        "http://contract.test",
        transport=httpx.MockTransport(handler),
        retry=RetryPolicy(attempts=1),
    )


def answering(
    status: int,
    body: object,
    sent: list[httpx.Request],
    content_type: str = "application/fhir+json",
) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(status, json=body, headers={"content-type": content_type})

    return handler


@pytest.fixture
def sim() -> Iterator[TestClient]:
    with TestClient(create_app()) as client:
        yield client


# -- e-prescription: the client -------------------------------------------------------------------


def canonical_report() -> eprescription.ExecutionReport:
    """The report whose execution Bundle is ``execution-request.json``."""
    return eprescription.ExecutionReport(
        prescription_id=PRESCRIPTION,
        idempotency_key="exec-canonical-0001",
        dispensed_at=datetime(2026, 1, 15, 10, 30, tzinfo=UTC),
        pharmacist_rpps=RPPS,
        pharmacy_finess="750000000",
        lines=(
            eprescription.LineExecution(
                line_id=f"{PRESCRIPTION}-1",
                intervention=eprescription.Intervention.UNCHANGED,
                cip13="3400999999991",
                quantity=2,
                complete=True,
                renewal_number=0,
            ),
        ),
    )


def test_the_client_reads_a_prescription_as_the_contract_says() -> None:
    sent: list[httpx.Request] = []
    response = example("eprescription", "read-response.json")
    client = eprescription.EPrescriptionClient(
        http=http("eprescription", answering(200, response, sent))
    )
    record = client.fetch(PRESCRIPTION, author_rpps=RPPS)
    canonical = example("eprescription", "read-request.json")
    (request,) = sent
    assert request.method == canonical["method"]
    assert request.url.path.endswith(canonical["path"])
    assert dict(request.url.params) == canonical["params"]
    requests = [
        e["resource"]
        for e in response["entry"]
        if e["resource"]["resourceType"] == "MedicationRequest"
    ]
    assert record.prescription_id == PRESCRIPTION
    assert [line.cip13 for line in record.lines] == [
        r["medicationCodeableConcept"]["coding"][0]["code"] for r in requests
    ]
    patient = next(
        e["resource"] for e in response["entry"] if e["resource"]["resourceType"] == "Patient"
    )
    assert record.patient.family_name == patient["name"][0]["family"]


def test_an_empty_searchset_is_an_unknown_prescription() -> None:
    unknown = example("eprescription", "read-response-unknown.json")
    handler = answering(unknown["status"], unknown["body"], [])
    client = eprescription.EPrescriptionClient(http=http("eprescription", handler))
    with pytest.raises(PrescriptionUnknown):
        client.fetch("EPTEST0000000000000099", author_rpps=RPPS)


def test_the_client_builds_the_canonical_execution_and_reads_its_receipt() -> None:
    sent: list[httpx.Request] = []
    handler = answering(200, example("eprescription", "execution-response.json"), sent)
    client = eprescription.EPrescriptionClient(http=http("eprescription", handler))
    receipt = client.record_execution(canonical_report())
    (request,) = sent
    assert json.loads(request.content) == example("eprescription", "execution-request.json")
    assert request.headers["Idempotency-Key"] == "exec-canonical-0001"
    assert receipt.prescription_id == PRESCRIPTION and not receipt.replayed


def test_a_canonical_refusal_is_the_clients_typed_error() -> None:
    refusal = example("eprescription", "refusal-prescription-cancelled.json")
    client = eprescription.EPrescriptionClient(
        http=http("eprescription", answering(refusal["status"], refusal["body"], []))
    )
    with pytest.raises(PrescriptionCancelled):
        client.record_execution(canonical_report())


# -- e-prescription: the simulator ----------------------------------------------------------------


def test_the_simulator_answers_the_canonical_read(sim: TestClient) -> None:
    canonical = example("eprescription", "read-request.json")
    answer = sim.get("/eprescription/fhir" + canonical["path"], params=canonical["params"])
    assert answer.status_code == 200
    expected = example("eprescription", "read-response.json")
    assert shape(answer.json()) == shape(expected)
    served = [e["resource"].get("id") for e in answer.json()["entry"]]
    assert served == [e["resource"].get("id") for e in expected["entry"]]
    params = {
        **canonical["params"],
        "group-identifier": canonical["params"]["group-identifier"][:-2] + "99",
    }
    unknown = sim.get("/eprescription/fhir" + canonical["path"], params=params)
    assert shape(unknown.json()) == shape(
        example("eprescription", "read-response-unknown.json")["body"]
    )


def test_the_simulator_accepts_the_canonical_execution(sim: TestClient) -> None:
    body = json.dumps(example("eprescription", "execution-request.json"))
    headers = {"Idempotency-Key": "exec-canonical-0001", "Content-Type": "application/fhir+json"}
    answer = sim.post("/eprescription/fhir/", content=body, headers=headers)
    assert answer.status_code in (200, 201)
    assert shape(answer.json()) == shape(example("eprescription", "execution-response.json"))
    refused = sim.post(
        "/eprescription/fhir/",
        content=body.replace(PRESCRIPTION, CANCELLED),
        headers={**headers, "Idempotency-Key": "exec-canonical-0002"},
    )
    assert {"status": refused.status_code, "body": refused.json()} == example(
        "eprescription", "refusal-prescription-cancelled.json"
    )


# -- apCV ----------------------------------------------------------------------------------------


def test_the_apcv_client_sends_the_canonical_exchange_and_reads_the_identity() -> None:
    sent: list[httpx.Request] = []
    response = example("apcv", "exchange-response.json")
    client = apcv.ApcvClient(http=http("apcv", answering(200, response, sent, "application/json")))
    token = example("apcv", "exchange-request.json")["token"]
    identity = client.exchange(token, author_rpps=RPPS)
    (request,) = sent
    assert request.url.path == "/v1/exchange"
    assert json.loads(request.content) == example("apcv", "exchange-request.json")
    assert [(b.family_name, b.given_name, b.nir, b.birth_date) for b in identity.beneficiaries] == [
        (b["family_name"], b["given_name"], b["nir"], b["birth_date"])
        for b in response["beneficiaries"]
    ]
    assert identity.coverage.caisse == response["coverage"]["caisse"]


def test_the_apcv_client_turns_the_canonical_refusal_into_its_error() -> None:
    refusal = example("apcv", "refusal-token-used.json")
    handler = answering(refusal["status"], refusal["body"], [], "application/problem+json")
    client = apcv.ApcvClient(http=http("apcv", handler))
    with pytest.raises(ApcvTokenUsed):
        client.exchange(example("apcv", "exchange-request.json")["token"], author_rpps=RPPS)


def test_the_apcv_simulator_answers_the_canonical_exchange(sim: TestClient) -> None:
    token = sim.post("/_sim/apcv/tokens", json={"identity": "camille"}).json()["token"]
    canonical = example("apcv", "exchange-request.json")
    assert set(canonical) == {"token"} and token.startswith("APCVTEST-")
    answer = sim.post("/apcv/v1/exchange", json={**canonical, "token": token})
    assert answer.status_code == 200
    expected = example("apcv", "exchange-response.json")
    assert shape(answer.json()) == shape(expected)
    assert {**answer.json(), "context_id": None} == {**expected, "context_id": None}
    again = sim.post("/apcv/v1/exchange", json={"token": token})
    assert {"status": again.status_code, "body": again.json()} == example(
        "apcv", "refusal-token-used.json"
    )


# -- INSi (SOAP) ---------------------------------------------------------------------------------

SOAP_TYPE = "application/soap+xml; charset=utf-8"
VOLATILE = {"Id", "Temps", "MessageID"}  # per-call ids and times: compared by presence, not value
TESTSEUL = Traits.of("Testseul", "Dominique", "M", "19620101")


VOLATILE_XDS = {"RelatesTo"}
# attributes that name the metadata (kept when only the shape of an XDS answer is compared)
NAMING = {
    "name",
    "classificationScheme",
    "identificationScheme",
    "objectType",
    "status",
    "mimeType",
    "nodeRepresentation",
}


def parse(data: bytes) -> etree._Element:
    parser = etree.XMLParser(remove_blank_text=True, resolve_entities=False, no_network=True)
    return etree.fromstring(data, parser)


def xml_tree(data: bytes, *, values: bool = True) -> object:
    """Tags, attributes and texts of a SOAP message, in order, without per-call values; with
    ``values=False`` only the tags and the naming attributes (ids, hashes and sizes vary)."""

    def walk(element: etree._Element) -> object:
        local = etree.QName(element).localname
        keep = values and local not in VOLATILE | VOLATILE_XDS
        text = (element.text or "").strip() if keep else None
        attributes = {
            k: v for k, v in element.attrib.items() if k != "messageID" and (values or k in NAMING)
        }
        return (element.tag, attributes, text, [walk(child) for child in element])

    return walk(parse(data))


def insi_client(handler: Handler) -> insi.InsiClient:
    return insi.InsiClient(
        http("insi", handler),
        insi.InsiConfig(idam="LGO-SIM-0001"),
        clock=lambda: datetime(2026, 1, 15, 10, 30, tzinfo=UTC),
    )


def soap_answer(status: int, body: bytes, sent: list[httpx.Request]) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(status, content=body, headers={"content-type": SOAP_TYPE})

    return handler


def test_the_insi_client_sends_the_canonical_search_and_reads_the_identity() -> None:
    sent: list[httpx.Request] = []
    client = insi_client(soap_answer(200, xml_example("insi", "traits-response.xml"), sent))
    found = client.search_by_traits(TESTSEUL, author_rpps=None)
    (request,) = sent
    assert xml_tree(request.content) == xml_tree(xml_example("insi", "traits-request.xml"))
    assert request.headers["content-type"].endswith(f'action="{insi.ACTION_TRAITS}"')
    assert found.ins.matricule == with_key("1620175112034")
    assert (found.birth_name, found.given_names, found.birthplace) == (
        "TESTSEUL",
        ("DOMINIQUE",),
        "75112",
    )


def test_the_insi_client_turns_the_canonical_fault_into_its_error() -> None:
    client = insi_client(soap_answer(500, xml_example("insi", "fault-siram_40.xml"), []))
    with pytest.raises(insi.InsiUnavailable):
        client.search_by_traits(TESTSEUL, author_rpps=None)


def test_the_insi_simulator_answers_the_canonical_search(sim: TestClient) -> None:
    action = f'{SOAP_TYPE}; action="{insi.ACTION_TRAITS}"'
    request = xml_example("insi", "traits-request.xml")
    answer = sim.post("/insi/lps", content=request, headers={"content-type": action})
    assert answer.status_code == 200
    assert xml_tree(answer.content) == xml_tree(xml_example("insi", "traits-response.xml"))
    sim.post("/_sim/insi/next", json={"fault": "siram_40", "count": 1, "delay_s": 0})
    fault = sim.post("/insi/lps", content=request, headers={"content-type": action})
    assert fault.status_code == 500
    assert xml_tree(fault.content) == xml_tree(xml_example("insi", "fault-siram_40.xml"))


# -- DMP (XDS.b stored query) ----------------------------------------------------------------------

CAMILLE_NIR = "299127505699943"
TEST_OID = "1.2.250.1.213.1.4.10"


def listed_documents(data: bytes) -> list[tuple[str, str]]:
    """(title, type code) of each DocumentEntry of an AdhocQueryResponse."""
    found = []
    for entry in parse(data).iterfind(".//rim:ExtrinsicObject", xds.NSMAP):
        title = entry.find("rim:Name/rim:LocalizedString", xds.NSMAP)
        kind = entry.find(
            f"rim:Classification[@classificationScheme='{xds.DE_TYPE_CODE}']", xds.NSMAP
        )
        assert title is not None and kind is not None
        found.append((title.get("value", ""), kind.get("nodeRepresentation", "")))
    return found


def test_the_dmp_client_sends_the_canonical_query_and_reads_the_entries() -> None:
    sent: list[httpx.Request] = []
    response = xml_example("dmp", "find-documents-response.xml")
    client = DmpClient(http("dmp", soap_answer(200, response, sent)), finess="750000000")
    entries = client.find_documents(CAMILLE_NIR, TEST_OID, author_rpps=RPPS)
    (request,) = sent
    assert xml_tree(request.content) == xml_tree(xml_example("dmp", "find-documents-request.xml"))
    assert request.headers["content-type"].endswith(f'action="{xds.ACTION_QUERY}"')
    assert [(e.title, e.type_code) for e in entries] == listed_documents(response)
    assert all(e.repository_id == "1.2.250.1.213.1.1.9" for e in entries)


def test_the_dmp_simulator_answers_the_canonical_query(sim: TestClient) -> None:
    action = f'application/soap+xml; charset=UTF-8; action="{xds.ACTION_QUERY}"'
    answer = sim.post(
        "/dmp/xds",
        content=xml_example("dmp", "find-documents-request.xml"),
        headers={"content-type": action},
    )
    assert answer.status_code == 200
    expected = xml_example("dmp", "find-documents-response.xml")
    assert xml_tree(answer.content, values=False) == xml_tree(expected, values=False)
    assert listed_documents(answer.content) == listed_documents(expected)


# -- Pro Santé Connect (userinfo) -----------------------------------------------------------------


def test_the_psc_client_reads_the_canonical_userinfo() -> None:
    claims = example("psc", "userinfo-response.json")
    professional = psc.professional_from_claims(claims)
    exercise = claims["SubjectRefPro"]["exercices"][0]
    assert professional.national_id == claims["SubjectNameID"] == "8" + professional.rpps
    assert (professional.family_name, professional.given_name) == (
        exercise["nomDexercice"],
        exercise["prenomDexercice"],
    )
    assert professional.profession_code == exercise["codeProfession"]
    assert professional.structure_id == exercise["activities"][0]["numeroFinessSite"]


def test_the_psc_simulator_answers_the_canonical_userinfo(sim: TestClient) -> None:
    """The token is planted in the simulator's state: the login flows are the integration tests'."""
    claims = example("psc", "userinfo-response.json")
    provider = provider_of(sim.app.state.sim)
    provider.state.access["canonical-access-token"] = provider.users[claims["SubjectNameID"]]
    answer = sim.get("/psc/userinfo", headers={"Authorization": "Bearer canonical-access-token"})
    assert answer.status_code == 200
    assert answer.json() == claims
