"""Property tests: malformed or hostile bodies from a service never crash a client.

Whatever comes back (any JSON, any bytes, any status, a valid Bundle with one value swapped for
garbage), the clients return a typed DTO or raise a typed ``NationalServiceError``; nothing else.
"""

from __future__ import annotations

import contextlib
import copy
from datetime import UTC, datetime
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hwsim.national.context import SimClock, SimState
from hwsim.national.eprescription import search_bundle, setup
from lgo.national.apcv import ApcvClient, ApcvIdentity, identity_from_json
from lgo.national.eprescription import (
    EPrescriptionClient,
    ExecutionReport,
    Intervention,
    LineExecution,
    PrescriptionRecord,
    receipt_from_bundle,
    record_from_bundle,
)
from lgo.national.errors import NationalServiceError
from lgo.national.transport import RetryPolicy
from tests.fixtures.national import DEFAULT_FIXTURES_DIR

PID = "EPTEST0000000000000043"
SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)


def valid_bundle() -> dict[str, Any]:
    sim = SimState(fixtures_dir=DEFAULT_FIXTURES_DIR, clock=SimClock())
    setup(sim)
    return search_bundle(sim.stores["eprescription"].prescriptions[PID], sim.clock.today())


VALID = valid_bundle()


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += paths(value, (*prefix, index))
    return found


VALID_PATHS = paths(VALID)


def replaced(document: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    result = copy.deepcopy(document)
    node: Any = result
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return result


@SETTINGS
@given(json_values)
def test_any_json_as_a_prescription_bundle(data: Any) -> None:
    with contextlib.suppress(NationalServiceError):
        assert isinstance(record_from_bundle(data, PID), PrescriptionRecord)


@SETTINGS
@given(st.sampled_from(VALID_PATHS), json_values)
def test_a_valid_bundle_with_one_value_swapped(path: tuple[Any, ...], value: Any) -> None:
    try:
        record = record_from_bundle(replaced(VALID, path, value), PID)
    except NationalServiceError:
        return
    assert record.prescription_id == PID


@SETTINGS
@given(json_values)
def test_any_json_as_an_execution_receipt(data: Any) -> None:
    with contextlib.suppress(NationalServiceError):
        receipt_from_bundle(data, PID, replayed=False)


@SETTINGS
@given(json_values)
def test_any_json_as_an_apcv_identity(data: Any) -> None:
    with contextlib.suppress(NationalServiceError):
        assert isinstance(identity_from_json(data), ApcvIdentity)


wire = st.tuples(
    st.sampled_from([200, 201, 400, 404, 409, 410, 422, 500, 503]),
    st.sampled_from(["application/fhir+json", "application/json", "text/plain", ""]),
    st.binary(max_size=200) | json_values.map(lambda v: repr(v).encode()),
)

REPORT = ExecutionReport(
    prescription_id=PID,
    idempotency_key="hostile-key-1",
    dispensed_at=datetime(2026, 1, 2, 10, 0, tzinfo=UTC),
    pharmacist_rpps="10999999997",
    lines=(
        LineExecution(
            line_id=f"{PID}-1",
            intervention=Intervention.UNCHANGED,
            cip13="3400999999021",
            quantity=1,
            complete=True,
        ),
    ),
)


def transport(status: int, content_type: str, body: bytes) -> httpx.MockTransport:
    headers = {"content-type": content_type} if content_type else {}
    return httpx.MockTransport(lambda _: httpx.Response(status, content=body, headers=headers))


@SETTINGS
@given(wire)
def test_any_reply_on_the_wire_to_the_eprescription_client(reply: tuple[int, str, bytes]) -> None:
    client = EPrescriptionClient(
        "http://sim.invalid", transport=transport(*reply), retry=RetryPolicy(attempts=1)
    )
    for call in (
        lambda: client.fetch(PID, author_rpps="10999999997"),
        lambda: client.record_execution(REPORT),
    ):
        with contextlib.suppress(NationalServiceError):
            call()


@SETTINGS
@given(wire)
def test_any_reply_on_the_wire_to_the_apcv_client(reply: tuple[int, str, bytes]) -> None:
    client = ApcvClient(
        "http://sim.invalid", transport=transport(*reply), retry=RetryPolicy(attempts=1)
    )
    with contextlib.suppress(NationalServiceError):
        client.exchange("APCVTEST-" + "a" * 32, author_rpps="10999999997")
