"""The API's front door: token, Host and Origin rules, problem+json everywhere."""

import pytest

from lgo.services.counters import add_counter, revoke_counter
from tests.fixtures.api import ApiHarness

PROBLEM = "application/problem+json"


def test_health_answers_with_a_valid_token(api: ApiHarness) -> None:
    response = api.client.get("/v1/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["counter"] == "test-counter"
    assert body["components"]["database"]["ok"] is True
    assert response.headers["x-request-id"]


def test_no_token_is_401_problem(api: ApiHarness) -> None:
    response = api.client.get("/v1/health", headers={"Authorization": ""})
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["type"] == "urn:lgo:problem:unauthorized"


@pytest.mark.parametrize("value", ["Bearer lgo_wrong", "Basic abc", "Bearer ", "lgo_x"])
def test_wrong_or_malformed_token_is_401(api: ApiHarness, value: str) -> None:
    assert api.client.get("/v1/health", headers={"Authorization": value}).status_code == 401


def test_revoked_token_is_refused_at_once(api: ApiHarness) -> None:
    _, token = add_counter(api.container.db, "to-revoke")
    headers = {"Authorization": f"Bearer {token}"}
    assert api.client.get("/v1/health", headers=headers).status_code == 200
    revoke_counter(api.container.db, "to-revoke")
    response = api.client.get("/v1/health", headers=headers)
    assert response.status_code == 401
    assert api.client.get("/v1/health").status_code == 200  # other counters unaffected


@pytest.mark.parametrize(
    "host", ["attacker.example", "attacker.example:8700", "192.168.1.20", "0.0.0.0"]
)
def test_foreign_host_header_is_refused(api: ApiHarness, host: str) -> None:
    response = api.client.get("/v1/health", headers={"Host": host})
    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["type"] == "urn:lgo:problem:forbidden-host"


@pytest.mark.parametrize("host", ["localhost:8700", "127.0.0.1", "[::1]:8700"])
def test_loopback_host_names_are_accepted(api: ApiHarness, host: str) -> None:
    assert api.client.get("/v1/health", headers={"Host": host}).status_code == 200


def test_foreign_origin_is_refused_even_with_a_valid_token(api: ApiHarness) -> None:
    response = api.client.get("/v1/health", headers={"Origin": "http://evil.example"})
    assert response.status_code == 403
    assert response.json()["type"] == "urn:lgo:problem:forbidden-origin"
    assert "access-control-allow-origin" not in response.headers


def test_own_origin_is_accepted(api: ApiHarness) -> None:
    origin = f"http://127.0.0.1:{api.settings.api.port}"
    assert api.client.get("/v1/health", headers={"Origin": origin}).status_code == 200


def test_unknown_route_and_method_are_problems(api: ApiHarness) -> None:
    missing = api.client.get("/v1/nope")
    assert missing.status_code == 404 and missing.headers["content-type"] == PROBLEM
    wrong = api.client.delete("/v1/health")
    assert wrong.status_code == 405 and wrong.json()["type"] == "urn:lgo:problem:method-not-allowed"


def test_metrics_need_a_token_and_count_requests(api: ApiHarness) -> None:
    assert api.client.get("/metrics", headers={"Authorization": ""}).status_code == 401
    api.client.get("/v1/health")
    text = api.client.get("/metrics").text
    assert 'lgo_http_requests_total{method="GET",route="/v1/health",status="200"}' in text


def test_request_id_is_kept_when_sane_and_replaced_otherwise(api: ApiHarness) -> None:
    kept = api.client.get("/v1/health", headers={"X-Request-ID": "abc-123"})
    assert kept.headers["x-request-id"] == "abc-123"
    replaced = api.client.get("/v1/health", headers={"X-Request-ID": "bad id\twith spaces"})
    assert replaced.headers["x-request-id"] != "bad id\twith spaces"


def test_openapi_schema_is_served(api: ApiHarness) -> None:
    schema = api.client.get("/v1/openapi.json").json()
    assert "/v1/health" in schema["paths"]
