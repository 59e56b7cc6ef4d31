"""Property test: hostile execution requests never make the simulator fail (no 5xx, no crash)."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hwsim.national.app import create_app
from lgo.national.eprescription import (
    ExecutionReport,
    Intervention,
    LineExecution,
    execution_bundle,
)

PID = "EPTEST0000000000000043"
CLIENT = TestClient(create_app())
VALID = execution_bundle(
    ExecutionReport(
        prescription_id=PID,
        idempotency_key="hostile-sim-1",
        dispensed_at=datetime(2026, 1, 2, 10, 0, tzinfo=UTC),
        pharmacist_rpps="10999999997",
        lines=(
            LineExecution(
                line_id=f"{PID}-3",
                intervention=Intervention.NOT_DISPENSED,
                quantity=0,
                complete=False,
                reason="test",
            ),
        ),
    )
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3)
    ),
    max_leaves=12,
)


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += paths(value, (*prefix, index))
    return found


def swapped(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    result = copy.deepcopy(VALID)
    node: Any = result
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return result


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(paths(VALID)), json_values, st.text(min_size=1, max_size=20))
def test_hostile_execution_bundles_get_a_4xx_or_are_recorded(
    path: tuple[Any, ...], value: Any, key: str
) -> None:
    body = json.dumps(swapped(path, value)).encode()
    headers = {"Idempotency-Key": "k-" + key.encode("ascii", "replace").decode()}
    response = CLIENT.post("/eprescription/fhir", content=body, headers=headers)
    assert response.status_code < 500
    assert response.headers["content-type"].startswith("application/fhir+json")


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_are_refused_cleanly(body: bytes) -> None:
    response = CLIENT.post("/eprescription/fhir", content=body, headers={"Idempotency-Key": "x"})
    assert response.status_code in (400, 422)
