"""Every injected fault maps to its typed error within the configured timeout (real HTTP)."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from hwsim.national.eprescription import store_of
from hwsim.national.faults import FaultKind, FaultSpec
from lgo.national.eprescription import (
    EPrescriptionClient,
    ExecutionReport,
    Intervention,
    LineExecution,
)
from lgo.national.errors import (
    MalformedResponse,
    NationalServiceError,
    ServiceTimeout,
    ServiceUnavailable,
)
from lgo.national.transport import RetryPolicy
from tests.fixtures.national import NationalSim

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

RPPS = "10999999997"
PID = "EPTEST0000000000000042"
# Wide margins on both sides: a loaded CI machine must not turn a normal answer into a timeout,
# and the hang must outlast the client's whole budget (ATTEMPTS x TIMEOUT_S) by far.
TIMEOUT_S = 1.5
ATTEMPTS = 2
HANG_S = 12.0


@pytest.fixture
def client(national_sim: NationalSim) -> Iterator[EPrescriptionClient]:
    retry = RetryPolicy(attempts=ATTEMPTS, backoff_s=0.01)
    url = national_sim.url("/eprescription/fhir")
    with EPrescriptionClient(url, timeout_s=TIMEOUT_S, retry=retry) as c:
        yield c


def arm(sim: NationalSim, kind: FaultKind, **extra: object) -> None:
    spec = {"service": "eprescription", "kind": kind, "times": None, **extra}
    # Through the control endpoint, as a technician or another process would.
    response = httpx.post(sim.url("/_sim/faults"), json=spec)
    assert response.status_code == 200, response.text


# (fault, its parameters, the typed error, attempts made: 500 and bad bodies are not retried)
FETCH_CASES = [
    (FaultKind.ERROR, {"status": 500}, ServiceUnavailable, 1),
    (FaultKind.ERROR, {"status": 503}, ServiceUnavailable, ATTEMPTS),
    (FaultKind.OUTAGE, {"duration_s": 30}, ServiceUnavailable, ATTEMPTS),
    (FaultKind.TIMEOUT, {"delay_s": HANG_S}, ServiceTimeout, ATTEMPTS),
    (FaultKind.LATENCY, {"delay_s": HANG_S}, ServiceTimeout, ATTEMPTS),
    (FaultKind.MALFORMED, {}, MalformedResponse, 1),
]


@pytest.mark.parametrize(("kind", "extra", "error", "attempts"), FETCH_CASES)
def test_fault_on_read_maps_to_typed_error(
    national_sim: NationalSim,
    client: EPrescriptionClient,
    kind: FaultKind,
    extra: dict[str, object],
    error: type[NationalServiceError],
    attempts: int,
) -> None:
    arm(national_sim, kind, **extra)
    started = time.monotonic()
    with pytest.raises(error):
        client.fetch(PID, author_rpps=RPPS)
    elapsed = time.monotonic() - started
    print(f"{kind.value}: typed error after {elapsed:.2f} s")
    # The client gave up on its own budget, not when the server finally answered.
    assert elapsed < HANG_S
    recorded = national_sim.recorder.entries("eprescription")
    assert len(recorded) == attempts
    assert {r.fault for r in recorded} == {kind.value}


def test_short_latency_within_the_timeout_still_answers(
    national_sim: NationalSim, client: EPrescriptionClient
) -> None:
    arm(national_sim, FaultKind.LATENCY, delay_s=0.05)
    assert client.fetch(PID, author_rpps=RPPS).prescription_id == PID


def test_a_single_5xx_is_retried_and_succeeds(
    national_sim: NationalSim, client: EPrescriptionClient
) -> None:
    national_sim.faults.arm(FaultSpec(service="eprescription", kind=FaultKind.ERROR, times=1))
    assert client.fetch(PID, author_rpps=RPPS).prescription_id == PID
    statuses = [e.status for e in national_sim.recorder.entries("eprescription")]
    assert statuses == [503, 200]


def test_duplicate_delivery_of_an_execution_records_once(
    national_sim: NationalSim, client: EPrescriptionClient
) -> None:
    arm(national_sim, FaultKind.DUPLICATE, method="POST")
    line = LineExecution(
        line_id=f"{PID}-1",
        intervention=Intervention.SUBSTITUTED,
        cip13="3400999999014",
        quantity=2,
        complete=True,
    )
    execution = ExecutionReport(
        prescription_id=PID,
        idempotency_key=f"dup-{uuid.uuid4()}",
        dispensed_at=datetime.now(UTC),
        pharmacist_rpps=RPPS,
        lines=(line,),
    )
    receipt = client.record_execution(execution)
    assert receipt.replayed is True  # the client saw the second delivery's answer
    assert store_of(national_sim.state).executions() == 1
    assert len(store_of(national_sim.state).prescriptions[PID].dispenses) == 1


def test_error_on_a_non_idempotent_call_is_not_retried(national_sim: NationalSim) -> None:
    from lgo.national.apcv import ApcvClient

    national_sim.faults.arm(FaultSpec(service="apcv", kind=FaultKind.ERROR, times=None))
    apcv = ApcvClient(national_sim.url("/apcv"), timeout_s=TIMEOUT_S)
    with apcv, pytest.raises(ServiceUnavailable):
        apcv.exchange("APCVTEST-" + "0" * 32, author_rpps=RPPS)
    assert len(national_sim.recorder.entries("apcv")) == 1


def test_unreachable_service_is_unavailable() -> None:
    with socket.socket() as sock:  # a loopback port with nothing listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/eprescription/fhir"
    client = EPrescriptionClient(url, timeout_s=TIMEOUT_S, retry=RetryPolicy(2, 0.01))
    with client, pytest.raises(ServiceUnavailable):
        client.fetch(PID, author_rpps=RPPS)


def test_faults_are_listed_and_cleared(national_sim: NationalSim) -> None:
    arm(national_sim, FaultKind.ERROR)
    listed = httpx.get(national_sim.url("/_sim/faults")).json()
    assert [f["spec"]["kind"] for f in listed] == ["error"]
    assert httpx.delete(national_sim.url("/_sim/faults")).json() == {"cleared": 1}
    assert httpx.get(national_sim.url("/_sim/faults")).json() == []
