"""The counter flow through the daemon's API with the national simulator on 127.0.0.1:
scan → GET /v1/prescriptions → POST /v1/dispensations → outbox worker thread reports it; then the
same with the e-prescription service down (degraded, flagged on /v1/health) and coming back."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from hwsim.national.eprescription import store_of
from hwsim.national.faults import FaultKind, FaultSpec
from lgo.api.app import create_app
from lgo.bootstrap.container import Container
from lgo.bootstrap.dispensing import part_of
from lgo.core.settings import load_settings
from lgo.domain.products import Pack, Product, RegulatoryList
from lgo.services.counters import add_counter
from lgo.store import migrate
from tests.fixtures.dispensing import make_patient_for, open_pharmacist_session
from tests.fixtures.national import NationalSim

pytestmark = pytest.mark.integration
AMOX = "3400999999014"
PARA = "3400999999991"


class EventWaiter:
    """Sets a threading.Event when the container publishes a given event type."""

    def __init__(self, container: Container) -> None:
        self.seen: dict[str, threading.Event] = {}
        self.data: list[tuple[str, dict[str, Any]]] = []
        original = container.events.publish

        def publish(type: str, data: dict[str, Any] | None = None) -> Any:
            event = original(type, data)
            self.data.append((type, dict(data or {})))
            self.seen.setdefault(type, threading.Event()).set()
            return event

        container.events.publish = publish  # type: ignore[method-assign]

    def wait(self, type: str, timeout: float = 30) -> bool:
        return self.seen.setdefault(type, threading.Event()).wait(timeout)

    def reset(self, type: str) -> None:
        self.seen[type] = threading.Event()


@pytest.fixture
def daemon(tmp_path: Path, national_sim: NationalSim) -> Iterator[tuple[TestClient, Container]]:
    settings = load_settings(
        state_dir=tmp_path / "state",
        hardware={"pcsc_enabled": False},
        national={"base_url": national_sim.base_url},
    )
    container = Container(settings)
    migrate.upgrade(container.db)
    _, token = add_counter(container.db, "comptoir-1")
    catalog = part_of(container).catalog
    catalog.add(
        Product(
            AMOX,
            "AMOXICILLINE TEST 1 g cp B/6",
            RegulatoryList.LIST_I,
            molecule="amoxicilline",
            atc="J01CA04",
            packs=(Pack(AMOX, 6, 250),),
        )
    )
    catalog.add(Product(PARA, "PARACETAMOL TEST 1 g cp B/8", packs=(Pack(PARA, 8, 200),)))
    app = create_app(settings, container)
    with TestClient(
        app,
        base_url=f"http://127.0.0.1:{settings.api.port}",
        headers={"Authorization": f"Bearer {token}"},
    ) as client:
        yield client, container


def test_eprescription_dispensed_and_reported_by_the_worker(
    daemon: tuple[TestClient, Container], national_sim: NationalSim
) -> None:
    client, container = daemon
    waiter = EventWaiter(container)
    open_pharmacist_session(container)
    patient = make_patient_for(container.db, "01S2TBPZ2JCNZZYGHZ")
    rx = client.get("/v1/prescriptions/01S2TBPZ2JCNZZYGHZ")
    assert rx.status_code == 200, rx.text
    line = rx.json()["lines"][0]
    assert (line["regulatory_list"], line["remaining_days"], line["warnings"]) == ("list_i", 6, [])
    assert line["proposal"]["packs"] == [{"cip13": AMOX, "units": 6, "count": 2}]
    body = {
        "patient_id": patient,
        "prescription_id": "01S2TBPZ2JCNZZYGHZ",
        "patient_address": "1 rue Fictive, 75000 Paris",
        "lines": [{"line_no": 1, "intervention": "unchanged", "days": 6, "cip13": AMOX}],
    }
    created = client.post("/v1/dispensations", json=body, headers={"Idempotency-Key": "flow-1-key"})
    assert created.status_code == 201, created.text
    assert created.json()["lines"][0]["boxes"] == 2
    assert waiter.wait("outbox.delivered")
    assert client.get(f"/v1/dispensations/{created.json()['id']}").json()["sync_status"] == "synced"
    assert store_of(national_sim.state).executions() == 1
    assert [m["status"] for m in client.get("/v1/outbox").json()["messages"]] == ["delivered"]
    # the national base now shows the line served: a second counter is refused
    again = client.post("/v1/dispensations", json=body, headers={"Idempotency-Key": "flow-2-key"})
    assert again.status_code == 422
    assert again.json()["refusals"][0]["code"] == "nothing_left"
    after = client.get("/v1/prescriptions/01S2TBPZ2JCNZZYGHZ").json()["lines"][0]
    assert (after["remaining_days"], after["deliveries"], after["warnings"]) == (
        0,
        1,
        ["nothing_left"],
    )


def test_outage_degraded_flagged_then_reported_when_back(
    daemon: tuple[TestClient, Container], national_sim: NationalSim
) -> None:
    client, container = daemon
    waiter = EventWaiter(container)
    open_pharmacist_session(container)
    patient = make_patient_for(container.db, "EPTEST0000000000000042")
    national_sim.faults.arm(
        FaultSpec(service="eprescription", kind=FaultKind.OUTAGE, duration_s=600)
    )
    body = {
        "patient_id": patient,
        "prescription_id": "EPTEST0000000000000042",
        "lines": [
            {"line_no": 1, "intervention": "unchanged", "days": 5, "cip13": PARA, "boxes": 2}
        ],
    }
    no_paper = client.post("/v1/dispensations", json=body, headers={"Idempotency-Key": "out-1-key"})
    assert no_paper.status_code == 503
    assert no_paper.json()["type"] == "urn:lgo:problem:eprescription-unavailable"
    body["paper"] = {
        "prescribed_on": "2026-01-01",
        "prescriber_rpps": "10000000009",
        "prescriber_name": "TESTMEDECIN DOMINIQUE",
        "eprescription": True,
        "lines": [
            {
                "designation": "PARACETAMOL TEST 1 g",
                "cip13": PARA,
                "units_per_day": "3",
                "duration_days": 5,
            }
        ],
    }
    created = client.post("/v1/dispensations", json=body, headers={"Idempotency-Key": "out-2-key"})
    assert created.status_code == 201, created.text
    assert created.json()["degraded"] is True
    offline = client.get("/v1/prescriptions/EPTEST0000000000000042").json()
    assert offline["degraded"] is True and offline["lines"][0]["deliveries"] == 1
    assert waiter.wait("outbox.degraded")
    health = client.get("/v1/health").json()
    assert health["status"] == "degraded" and health["components"]["outbox"]["ok"] is False
    assert client.get("/v1/outbox").json()["degraded"] is True
    waiter.reset("outbox.degraded")
    national_sim.faults.clear("eprescription")
    assert waiter.wait("outbox.delivered")
    assert waiter.wait("outbox.degraded")
    assert ("outbox.degraded", {"active": False}) in waiter.data
    assert client.get("/v1/health").json()["components"]["outbox"]["ok"] is True
    assert store_of(national_sim.state).executions() == 1
    assert client.get(f"/v1/dispensations/{created.json()['id']}").json()["sync_status"] == "synced"
