"""One mapping of a service's refusal to a typed error, shared by the apCV and e-prescription
clients (and open to the others)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from lgo.core.errors import LgoError
from lgo.national.apcv import ApcvClient
from lgo.national.eprescription import EPrescriptionClient
from lgo.national.errors import (
    ApcvTokenExpired,
    ApcvTokenUnknown,
    NationalServiceError,
    PrescriptionCancelled,
    PrescriptionUnknown,
    RequestRejected,
    ServiceUnavailable,
)
from lgo.national.transport import RetryPolicy, json_or_none, refusal_error

RPPS = "10999999997"


def _answer(status: int, **kwargs: Any) -> httpx.Response:
    return httpx.Response(status, request=httpx.Request("GET", "http://sim/x"), **kwargs)


@pytest.mark.parametrize(
    ("status", "known", "expected"),
    [
        (409, PrescriptionCancelled, PrescriptionCancelled),  # the service's own code wins
        (404, None, PrescriptionUnknown),
        (500, None, ServiceUnavailable),
        (400, None, RequestRejected),
        (422, None, RequestRejected),
    ],
)
def test_refusal_error_by_code_then_status(
    status: int, known: type[LgoError] | None, expected: type[LgoError]
) -> None:
    error = refusal_error(_answer(status), known, "ordonnance X", not_found=PrescriptionUnknown)
    assert type(error) is expected
    assert error.detail == "ordonnance X"


def test_json_or_none_tolerates_any_error_body() -> None:
    assert json_or_none(_answer(502, text="<html>bad gateway</html>"), "svc") is None
    assert (
        json_or_none(
            _answer(400, content=b"{", headers={"content-type": "application/json"}), "svc"
        )
        is None
    )
    assert json_or_none(_answer(400, json={"code": "x"}), "svc") == {"code": "x"}


def _transport(status: int, body: object) -> httpx.MockTransport:
    return httpx.MockTransport(lambda _: httpx.Response(status, json=body))


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (410, {"code": "token-expired"}, ApcvTokenExpired),
        (404, {}, ApcvTokenUnknown),
        (503, None, ServiceUnavailable),
        (400, {"code": "other"}, RequestRejected),
    ],
)
def test_apcv_client_refusals(
    status: int, body: object, expected: type[NationalServiceError]
) -> None:
    no_retry = RetryPolicy(attempts=1)
    client = ApcvClient("http://sim", transport=_transport(status, body), retry=no_retry)
    with client, pytest.raises(expected):
        client.exchange("TOKEN-1", author_rpps=RPPS)


@pytest.mark.parametrize(
    ("status", "expected"), [(404, PrescriptionUnknown), (503, ServiceUnavailable)]
)
def test_eprescription_client_refusals(status: int, expected: type[NationalServiceError]) -> None:
    no_retry = RetryPolicy(attempts=1)
    transport = _transport(status, {"resourceType": "OperationOutcome", "issue": []})
    client = EPrescriptionClient("http://sim", transport=transport, retry=no_retry)
    with client, pytest.raises(expected):
        client.fetch("0123456789AB", author_rpps=RPPS)


def test_clients_build_their_http_client_from_url_and_timeouts() -> None:
    with ApcvClient("http://sim/apcv", timeout_s=1.5, connect_timeout_s=0.5) as apcv:
        assert apcv._http.service == "apcv"
        assert (apcv._http.timeout_s, apcv._http.connect_timeout_s) == (1.5, 0.5)
    deadline = EPrescriptionClient("http://sim/fhir", deadline_s=3.0)
    with deadline:
        assert deadline._http.service == "eprescription" and deadline._http.deadline_s == 3.0
    with EPrescriptionClient(http=apcv._http) as shared:
        assert shared._http is apcv._http
