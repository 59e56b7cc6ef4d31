"""The typed contract of ``/v1/openapi.json`` (docs/api.md), read from the real app.

Front-end developers generate their clients from this schema: every JSON answer must be a named
schema, every operation must document its problem+json errors with the one ``Problem`` schema, and
no schema name may carry a module path. The last test generates a Python client with
datamodel-code-generator and validates real answers of the running API with it.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import shutil
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from fastapi.routing import APIRoute

from lgo.api.routers import ROUTERS
from lgo.core.errors import LgoError
from tests.fixtures.api import ApiHarness

PROBLEM = "application/problem+json"
PROBLEM_REF = "#/components/schemas/Problem"
SECURITY_TYPES = {
    "400": "urn:lgo:problem:forbidden-host",
    "403": "urn:lgo:problem:forbidden-origin",
    "401": "urn:lgo:problem:unauthorized",
}


@pytest.fixture
def spec(api: ApiHarness) -> dict[str, Any]:
    response = api.client.get("/v1/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def operations(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, items in spec["paths"].items():
        for method, operation in items.items():
            yield f"{method.upper()} {path}", operation


def _named(schema: dict[str, Any]) -> str | None:
    """The component a JSON answer refers to (directly or as the items of an array)."""
    if schema.get("type") == "array":
        schema = schema.get("items", {})
    ref = schema.get("$ref", "")
    return ref.rpartition("/")[2] if ref.startswith("#/components/schemas/") else None


def test_every_json_answer_is_a_named_schema_with_properties(spec: dict[str, Any]) -> None:
    components = spec["components"]["schemas"]
    untyped = []
    for name, operation in operations(spec):
        for status, response in operation["responses"].items():
            if not status.startswith("2"):
                continue
            for media, content in response.get("content", {}).items():
                if not media.endswith("json"):
                    continue
                target = _named(content.get("schema", {}))
                component = components.get(target or "", {})
                # A free-form object (no properties, or only additionalProperties) is no contract.
                if not component.get("properties"):
                    untyped.append(f"{name} {status} {media}")
    assert untyped == []


def test_every_operation_documents_its_problems(spec: dict[str, Any]) -> None:
    missing = []
    for name, operation in operations(spec):
        responses = operation["responses"]
        for status, type_uri in SECURITY_TYPES.items():
            examples = responses.get(status, {}).get("content", {}).get(PROBLEM, {})
            if type_uri not in [e["value"]["type"] for e in examples.get("examples", {}).values()]:
                missing.append(f"{name} {status} {type_uri}")
        for status, response in responses.items():
            if status[0] not in "45":
                continue
            content = response.get("content", {})
            assert list(content) == [PROBLEM], f"{name} {status}: {list(content)}"
            assert content[PROBLEM]["schema"] == {"$ref": PROBLEM_REF}, name
            for example in content[PROBLEM]["examples"].values():
                assert example["value"]["type"].startswith("urn:lgo:problem:"), name
                assert example["value"]["status"] == int(status), name
                assert example["value"]["type"] in response["description"], name
    assert missing == []


def test_routes_document_the_problems_their_services_raise(spec: dict[str, Any]) -> None:
    def types(path: str, method: str, status: str) -> set[str]:
        content = spec["paths"][path][method]["responses"].get(status, {}).get("content", {})
        return {e["value"]["type"] for e in content.get(PROBLEM, {}).get("examples", {}).values()}

    assert "urn:lgo:problem:dispensation-not-found" in types(
        "/v1/dispensations/{dispensation_id}", "get", "404"
    )
    commit = "/v1/dispensations"
    assert "urn:lgo:problem:idempotency-key-reused" in types(commit, "post", "409")
    assert "urn:lgo:problem:pharmacist-session-required" in types(commit, "post", "403")
    assert "urn:lgo:problem:invalid-input" in types(commit, "post", "422")
    assert "urn:lgo:problem:payload-too-large" in types(commit, "post", "413")
    assert "urn:lgo:problem:outbox-retry-refused" in types(
        "/v1/outbox/{message_id}/retry", "post", "409"
    )
    # A route without a body nor parameters cannot answer invalid-input.
    assert types("/v1/patients/work-list", "get", "422") == set()


def _raised_in(endpoint: Any) -> Iterator[type[LgoError]]:
    """The ``LgoError`` classes a route function raises itself (``raise X(...)``)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(endpoint)))
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
            func = node.exc.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            error = endpoint.__globals__.get(name)
            if isinstance(error, type) and issubclass(error, LgoError):
                yield error


def test_each_route_documents_the_problems_it_raises_itself(spec: dict[str, Any]) -> None:
    undocumented = []
    for router in ROUTERS:
        for route in router.routes:
            if not isinstance(route, APIRoute) or not route.include_in_schema:
                continue
            for method in route.methods:
                responses = spec["paths"][route.path][method.lower()]["responses"]
                for error in _raised_in(route.endpoint):
                    content = responses.get(str(error.status), {}).get("content", {})
                    if error.slug not in content.get(PROBLEM, {}).get("examples", {}):
                        undocumented.append(f"{method} {route.path} {error.slug}")
    assert undocumented == []


def test_schema_names_carry_no_module_path(spec: dict[str, Any]) -> None:
    names = list(spec["components"]["schemas"])
    assert [n for n in names if "__" in n or "." in n or n.startswith("lgo")] == []
    assert "HTTPValidationError" not in names  # lgo answers problem+json, never FastAPI's body


def test_problem_schema_is_rfc_9457_with_lgo_members(spec: dict[str, Any]) -> None:
    problem = spec["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail", "instance"} <= set(problem["properties"])
    assert set(problem["required"]) == {"type", "title", "status"}
    assert {"errors", "refusals", "missing", "tries_left"} <= set(problem["properties"])


# ------------------------------------------------------------------ a generated client


def _codegen() -> str:
    beside_python = Path(sys.executable).with_name("datamodel-codegen")
    tool = shutil.which("datamodel-codegen") or str(beside_python)
    if not Path(tool).is_file():
        pytest.skip("datamodel-code-generator is not installed (pip install -e '.[dev]')")
    return tool


def _client(spec: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """Pydantic v2 models generated from the served schema, imported as a module."""
    import json

    source, target = tmp_path / "openapi.json", tmp_path / "lgo_client.py"
    source.write_text(json.dumps(spec), encoding="utf-8")
    subprocess.run(
        [
            _codegen(),
            "--input",
            str(source),
            "--input-file-type",
            "openapi",
            "--output",
            str(target),
            "--output-model-type",
            "pydantic_v2.BaseModel",
            "--use-annotated",
            "--disable-timestamp",
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    loader = importlib.util.spec_from_file_location("lgo_client", target)
    assert loader is not None and loader.loader is not None
    module = importlib.util.module_from_spec(loader)
    monkeypatch.setitem(sys.modules, "lgo_client", module)  # pydantic resolves generics there
    loader.loader.exec_module(module)
    return module


def test_a_generated_python_client_reads_real_answers(
    api: ApiHarness, spec: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = _client(spec, tmp_path, monkeypatch)
    health = client.Health.model_validate(api.client.get("/v1/health").json())
    assert health.counter == "test-counter"

    outbox = client.OutboxList.model_validate(api.client.get("/v1/outbox").json())
    assert outbox.messages == []

    vaccines = api.client.get("/v1/vaccinations/vaccines").json()
    infos = [client.VaccineInfo.model_validate(v) for v in vaccines]
    assert "grippe" in {i.code for i in infos}

    stats = api.client.get("/v1/stats", params={"from": "2026-01-01", "to": "2026-01-31"})
    report = client.StatsReport.model_validate(stats.json())
    assert report.from_ == "2026-01-01"  # a Python keyword: the client aliases it

    missing = api.client.get(f"/v1/dispensations/{uuid.uuid4()}")
    assert missing.status_code == 404
    problem = client.Problem.model_validate(missing.json())
    assert problem.type == "urn:lgo:problem:dispensation-not-found"
    assert problem.status == 404

    refused = api.client.get("/v1/outbox", params={"limit": 0})
    invalid = client.Problem.model_validate(refused.json())
    assert invalid.type == "urn:lgo:problem:invalid-input"
    assert invalid.errors and invalid.errors[0].loc[-1] == "limit"
