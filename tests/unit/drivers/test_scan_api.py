"""``/v1/scans`` through the real API (no hardware): classification, recent list, event privacy."""

from __future__ import annotations

import json

from tests.fixtures.secrets import without_random_ids

GS = "\x1d"
INS_DM = (
    "]d1IS010000000000000000000000S1299127505699943S21.2.250.1.213.1.4.10S3CAMILLE"
    f"{GS}S4TESTNOM{GS}S5FS631-12-1999S775056"
)


def test_post_scan_classifies_and_publishes(api) -> None:  # type: ignore[no-untyped-def]
    payload = f"]d201034009999999911727123110TESTLOT1{GS}21SIMSERIAL0000001\r\n"
    response = api.client.post("/v1/scans", json={"payload": payload})
    assert response.status_code == 201
    body = response.json()
    assert body["kind"] == "gs1_datamatrix" and body["aim_id"] == "]d2"
    assert body["fields"]["cip13"] == "3400999999991"
    assert body["source"] == "api:test-counter"
    events = [e for e in api.container.events.recent() if e.type == "scan.received"]
    assert events[-1].data["id"] == body["id"]
    assert events[-1].data["fields"]["serial"] == "SIMSERIAL0000001"


def test_ins_datamatrix_and_apcv_stay_in_the_daemon(api) -> None:  # type: ignore[no-untyped-def]
    ins = api.client.post("/v1/scans", json={"payload": INS_DM})
    token = "APCVTEST-3f2a9c0e11d24b6f8a7e5c3d2b1a0f9e"
    apcv = api.client.post("/v1/scans", json={"payload": token})
    assert ins.json()["kind"] == "ins_datamatrix" and ins.json()["fields"] == {}
    assert apcv.json()["kind"] == "apcv" and apcv.json()["fields"] == {}
    # The token stays usable inside the daemon (the apCV exchange reads it by scan id).
    kept = api.container.hardware.scans.get(apcv.json()["id"])
    assert kept is not None and kept.classification.fields["token"] == token
    answers = [
        ins.text,
        apcv.text,
        api.client.get("/v1/scans").text,
        api.client.get(f"/v1/scans/{ins.json()['id']}").text,
        api.client.get(f"/v1/scans/{apcv.json()['id']}").text,
    ]
    published = json.dumps([e.data for e in api.container.events.recent()])
    for secret in ("299127505699943", "CAMILLE", "TESTNOM", "31-12-1999", token, "APCVTEST"):
        assert secret not in published
        for answer in answers:
            assert secret not in answer


def test_unknown_and_recent_and_errors(api) -> None:  # type: ignore[no-untyped-def]
    unknown = api.client.post("/v1/scans", json={"payload": "3400935955839"}).json()
    assert unknown["kind"] == "unknown" and unknown["reason"] == "ean13_bad_check_digit"
    recent = api.client.get("/v1/scans").json()
    assert recent[0]["id"] == unknown["id"]
    assert api.client.post("/v1/scans", json={"payload": "x" * 5000}).status_code == 422
    missing = api.client.get("/v1/scans/nope")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    assert len(api.container.hardware.scans.recent()) == 1


def test_scans_need_a_counter_token(api) -> None:  # type: ignore[no-untyped-def]
    response = api.client.get("/v1/scans", headers={"Authorization": ""})
    assert response.status_code == 401


def test_readers_and_session_without_hardware(api) -> None:  # type: ignore[no-untyped-def]
    readers = api.client.get("/v1/readers").json()
    assert readers == {"degraded": "disabled", "readers": []}
    session = api.client.get("/v1/cps/session").json()
    assert session == {"kind": None, "session": None, "cps_readers": []}
    login = api.client.post("/v1/cps/session", json={"kind": "cps", "pin": "1234"})
    assert login.status_code == 404
    assert login.json()["type"] == "urn:lgo:problem:cps-card-missing"
    assert "1234" not in without_random_ids(login.text)


def test_an_unrecognised_code_says_why_in_french(api) -> None:  # type: ignore[no-untyped-def]
    """The pharmacist reads ``reason_label`` (the page shows it); ``reason`` stays the stable code."""
    wrong_key = "01034009999999921727123110TESTLOT1"  # GTIN check digit wrong
    for payload in (wrong_key, "]d2" + wrong_key):  # with or without the AIM prefix
        body = api.client.post("/v1/scans", json={"payload": payload}).json()
        assert body["reason"] == "gs1_invalid:GTIN check digit is wrong"
        assert body["reason_label"] == "DataMatrix GS1 invalide : clé de contrôle du GTIN fausse"
    cases = {
        "3400935955839": "code-barres EAN-13 à la clé de contrôle fausse",
        "01034009999999911727": "DataMatrix GS1 invalide : AI 17 tronqué",
        "010340099999999117271301": "DataMatrix GS1 invalide : mois de péremption impossible",
        "340099999999": "code produit sans identifiant GS1",
        "]C1ABC": "DataMatrix GS1 invalide",
    }
    for payload, label in cases.items():
        body = api.client.post("/v1/scans", json={"payload": payload}).json()
        assert body["kind"] == "unknown" and body["reason_label"].startswith(label), body
    events = [e for e in api.container.events.recent() if e.type == "scan.received"]
    assert events[-1].data["reason_label"] == body["reason_label"]
    good = api.client.post("/v1/scans", json={"payload": "3400999999991"}).json()
    assert good["reason_label"] is None
