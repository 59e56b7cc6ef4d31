"""Simulator building blocks: fault board, recorder, middleware routing (no network)."""

from __future__ import annotations

from hwsim.national.app import SERVICES
from hwsim.national.faults import FaultBoard, FaultKind, FaultSpec
from hwsim.national.middleware import RecorderFaultMiddleware
from hwsim.national.recorder import public_headers


def test_fault_applies_to_its_service_for_the_given_number_of_calls() -> None:
    board = FaultBoard()
    board.arm(FaultSpec(service="apcv", kind=FaultKind.ERROR, method="POST", times=2))
    assert board.take("eprescription", "POST", "/x") is None
    assert board.take("apcv", "GET", "/apcv/x") is None
    taken = [board.take("apcv", "POST", "/apcv/v1/exchange") for _ in range(3)]
    assert [t.kind if t else None for t in taken] == [FaultKind.ERROR, FaultKind.ERROR, None]
    assert board.list() == []


def test_path_filter_and_clear_by_service() -> None:
    board = FaultBoard()
    board.arm(FaultSpec(service="dmp", kind=FaultKind.LATENCY, path_contains="/query", times=None))
    board.arm(FaultSpec(service="apcv", kind=FaultKind.ERROR, times=None))
    assert board.take("dmp", "POST", "/dmp/submit") is None
    assert board.take("dmp", "POST", "/dmp/query") is not None
    assert board.clear("dmp") == 1
    assert [f.spec.service for f in board.list()] == ["apcv"]


def test_secret_headers_are_not_recorded() -> None:
    kept = public_headers(
        [
            ("Authorization", "Bearer x"),
            ("X-Auth-Token", "y"),
            ("Cookie", "z"),
            ("Idempotency-Key", "k"),
            ("X-Request-ID", "r"),
            ("Content-Type", "application/json"),
        ]
    )
    assert kept == {"idempotency-key": "k", "x-request-id": "r", "content-type": "application/json"}


def test_requests_are_routed_to_the_longest_matching_prefix() -> None:
    prefixes = {"/dmp": "dmp", "/dmp/xds": "xds", "/apcv": "apcv"}
    middleware = RecorderFaultMiddleware(lambda *_: None, state=lambda: None, prefixes=prefixes)  # type: ignore[arg-type]
    assert middleware.service_for("/dmp/xds/query") == "xds"
    assert middleware.service_for("/dmp/other") == "dmp"
    assert middleware.service_for("/apcvx") is None
    assert middleware.service_for("/_sim/recorder") is None


def test_registry_has_distinct_names_and_prefixes() -> None:
    names = [s.name for s in SERVICES]
    prefixes = [s.prefix for s in SERVICES]
    assert len(set(names)) == len(names) and len(set(prefixes)) == len(prefixes)
    assert {"eprescription", "apcv"} <= set(names)


def test_outage_lasts_its_window_then_ends() -> None:
    now = [100.0]
    board = FaultBoard(monotonic=lambda: now[0])
    board.arm(FaultSpec(service="insi", kind=FaultKind.OUTAGE, duration_s=30))
    assert all(board.take("insi", "POST", "/insi") is not None for _ in range(5))
    now[0] += 29.9
    assert board.take("insi", "POST", "/insi") is not None
    now[0] += 0.2
    assert board.take("insi", "POST", "/insi") is None
    assert board.list() == []


def test_simulator_refuses_a_non_loopback_address() -> None:
    import pytest

    from hwsim.national.app import is_loopback, run

    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    with pytest.raises(ValueError):
        run(host="0.0.0.0")
