"""Failure modes 8 and 9 of anchors.md §(c), as scenarios against the running daemon (real uvicorn
on loopback, outbox worker thread running) and the national simulator on 127.0.0.1.

8. Exactly-once dispensing: the same e-prescription from two counters at once, a double click
   (same ``Idempotency-Key`` twice at once), the same key with another body.
9. National service faults while reporting: 503, timeout after the remote work was done, truncated
   reply, a proxy delivering the request twice, slowness: every dispensation is reported exactly
   once (the simulator's own count), and ends ``synced``.

Waiting is on the daemon's events (``outbox.delivered``), never on sleeps.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from hwsim.national.eprescription import store_of
from hwsim.national.faults import FaultKind, FaultSpec
from lgo.bootstrap.dispensing import part_of
from lgo.core.settings import load_settings
from lgo.domain.products import Pack, Product, RegulatoryList
from lgo.store.models.dispensing import DispensationRow, OutboxMessage
from tests.fixtures.dispensing import make_patient_for
from tests.fixtures.national import NationalSim
from tests.load.harness import LiveDaemon, free_port, live_daemon

pytestmark = pytest.mark.integration

TEMPLATE_RX = "01S2TBPZ2JCNZZYGHZ"  # simulator fixture: amoxicilline, list I, 2 boxes, 6 days
AMOX = "3400999999014"


class Events:
    """Collects the daemon's published events; ``wait`` blocks on a condition, no sleep."""

    def __init__(self, daemon: LiveDaemon) -> None:
        self.seen: list[tuple[str, dict[str, Any]]] = []
        self.changed = threading.Condition()
        bus = daemon.container.events
        original = bus.publish

        def publish(type_: str, data: dict[str, Any] | None = None) -> Any:
            event = original(type_, data)
            with self.changed:
                self.seen.append((type_, dict(data or {})))
                self.changed.notify_all()
            return event

        bus.publish = publish  # type: ignore[method-assign]

    def wait(self, type_: str, count: int = 1, timeout: float = 30.0) -> None:
        with self.changed:
            ok = self.changed.wait_for(
                lambda: sum(1 for t, _ in self.seen if t == type_) >= count, timeout
            )
        assert ok, f"{count} × {type_} expected; seen {[t for t, _ in self.seen]}"


@contextmanager
def running_daemon(tmp_path: Path, sim: NationalSim, db_url: str | None) -> Iterator[LiveDaemon]:
    settings = load_settings(
        state_dir=tmp_path / "state",
        hardware={"pcsc_enabled": False},
        api={"port": free_port()},
        national={"base_url": sim.base_url, "timeout_s": 1.0, "connect_timeout_s": 1.0},
        database={"url": db_url},
    )
    with live_daemon(settings, counters=2) as live:
        part_of(live.container).catalog.add(
            Product(
                AMOX,
                "AMOXICILLINE TEST 1 g cp B/6",
                RegulatoryList.LIST_I,
                molecule="amoxicilline",
                packs=(Pack(AMOX, 6, 250),),
            )
        )
        yield live


@pytest.fixture
def daemon(tmp_path: Path, national_sim: NationalSim) -> Iterator[LiveDaemon]:
    with running_daemon(tmp_path, national_sim, None) as live:
        yield live


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def any_daemon(
    request: pytest.FixtureRequest, tmp_path: Path, national_sim: NationalSim
) -> Iterator[LiveDaemon]:
    """The daemon on SQLite (BEGIN IMMEDIATE) and on PostgreSQL (row locks)."""
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else None
    with running_daemon(tmp_path, national_sim, url) as live:
        yield live


def new_prescription(sim: NationalSim, suffix: str) -> str:
    """A fresh copy of the amoxicilline e-prescription under a new id."""
    store = store_of(sim.state)
    pid = ("01FAULT" + suffix).ljust(18, "0")[:18]
    clone = copy.deepcopy(store.prescriptions[TEMPLATE_RX])
    clone.prescription_id = pid
    for n, line in enumerate(clone.lines, start=1):
        line.line_id = f"{pid}-{n}"
    store.prescriptions[pid] = clone
    return pid


def body(patient: str, pid: str, days: int = 6) -> dict[str, Any]:
    return {
        "patient_id": patient,
        "prescription_id": pid,
        "patient_address": "1 rue Fictive, 75000 Paris",
        "lines": [{"line_no": 1, "intervention": "unchanged", "days": days, "cip13": AMOX}],
    }


def post(daemon: LiveDaemon, counter: int, payload: dict[str, Any], key: str) -> httpx.Response:
    headers = {**daemon.headers(counter), "Idempotency-Key": key}
    return httpx.post(daemon.url + "/v1/dispensations", json=payload, headers=headers, timeout=30)


def at_once(calls: list[Any]) -> list[httpx.Response]:
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        results[i] = calls[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def counts(daemon: LiveDaemon) -> tuple[int, int]:
    with daemon.container.db.uow(readonly=True) as uow:
        s = uow.session
        return (
            int(s.scalar(select(func.count()).select_from(DispensationRow)) or 0),
            int(s.scalar(select(func.count()).select_from(OutboxMessage)) or 0),
        )


@pytest.mark.timeout(120)
def test_same_prescription_from_two_counters_at_once(
    any_daemon: LiveDaemon, national_sim: NationalSim
) -> None:
    daemon = any_daemon
    events = Events(daemon)
    pid = new_prescription(national_sim, "TWO")
    patient = make_patient_for(daemon.container.db, TEMPLATE_RX)
    for counter in (0, 1):  # both counters show the prescription
        loaded = httpx.get(f"{daemon.url}/v1/prescriptions/{pid}", headers=daemon.headers(counter))
        assert loaded.status_code == 200, loaded.text
    answers = at_once(
        [lambda c=c: post(daemon, c, body(patient, pid), f"two-counters-{c}") for c in (0, 1)]
    )
    statuses = sorted(a.status_code for a in answers)
    assert statuses in ([201, 409], [201, 422]), [a.text for a in answers]
    # The loser either collides on the line (UNIQUE) or, serialised after the winner's commit,
    # finds nothing left to dispense: both are typed refusals that write nothing.
    loser = next(a for a in answers if a.status_code != 201).json()
    assert loser["type"] in (
        "urn:lgo:problem:line-already-dispensed",
        "urn:lgo:problem:dispensing-refused",
    ), loser
    events.wait("outbox.delivered")
    assert counts(daemon) == (1, 1)
    assert store_of(national_sim.state).executions() == 1


@pytest.mark.timeout(120)
def test_double_click_and_reused_key(any_daemon: LiveDaemon, national_sim: NationalSim) -> None:
    daemon = any_daemon
    events = Events(daemon)
    pid = new_prescription(national_sim, "DBL")
    patient = make_patient_for(daemon.container.db, TEMPLATE_RX)
    assert (
        httpx.get(f"{daemon.url}/v1/prescriptions/{pid}", headers=daemon.headers()).status_code
        == 200
    )
    answers = at_once([lambda: post(daemon, 0, body(patient, pid), "double-click-1")] * 2)
    statuses = sorted(a.status_code for a in answers)
    assert statuses in ([201, 201], [201, 409]), [a.text for a in answers]
    ids = {a.json()["id"] for a in answers if a.status_code == 201}
    assert len(ids) == 1  # a replay answers the same dispensation
    other = post(daemon, 0, body(patient, pid, days=3), "double-click-1")
    assert other.status_code == 409
    assert other.json()["type"] == "urn:lgo:problem:idempotency-key-reused"
    events.wait("outbox.delivered")
    assert counts(daemon) == (1, 1)
    assert store_of(national_sim.state).executions() == 1


FAULTS = {
    "503": FaultSpec(service="eprescription", kind=FaultKind.ERROR, method="POST", times=2),
    "timeout_after_work": FaultSpec(
        service="eprescription", kind=FaultKind.TIMEOUT, method="POST", delay_s=3
    ),
    "truncated_reply": FaultSpec(service="eprescription", kind=FaultKind.MALFORMED, method="POST"),
    "proxy_duplicate": FaultSpec(service="eprescription", kind=FaultKind.DUPLICATE, method="POST"),
    "slow": FaultSpec(service="eprescription", kind=FaultKind.LATENCY, method="POST", delay_s=0.3),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
@pytest.mark.timeout(120)
def test_execution_reported_exactly_once_through_faults(
    daemon: LiveDaemon, national_sim: NationalSim, fault: str
) -> None:
    events = Events(daemon)
    pid = new_prescription(national_sim, fault.upper().replace("_", "")[:8])
    patient = make_patient_for(daemon.container.db, TEMPLATE_RX)
    assert (
        httpx.get(f"{daemon.url}/v1/prescriptions/{pid}", headers=daemon.headers()).status_code
        == 200
    )
    national_sim.faults.arm(FAULTS[fault])
    created = post(daemon, 0, body(patient, pid), f"fault-{fault}")
    assert created.status_code == 201, created.text  # the counter never waits on the service
    events.wait("outbox.delivered", timeout=60)
    assert store_of(national_sim.state).executions() == 1
    posts = [e for e in national_sim.recorder.entries("eprescription") if e.method == "POST"]
    assert len({p.idempotency_key for p in posts}) == 1  # every attempt carried the same key
    assert any(p.fault for p in posts), "the fault was never hit"
    dispensation = httpx.get(
        f"{daemon.url}/v1/dispensations/{created.json()['id']}", headers=daemon.headers()
    ).json()
    assert dispensation["sync_status"] == "synced"
    assert counts(daemon) == (1, 1)
