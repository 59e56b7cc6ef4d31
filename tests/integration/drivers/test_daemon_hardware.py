"""The daemon's hardware wiring end to end: hw-sim's pcscd + OpenSC's PKCS#11 module over the virtual
CPS card + the real API and EventBus.

Waiting is done on published events (a spy on the real bus), never on sleeps.
"""

from __future__ import annotations

import json
import queue
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from hwsim.fixtures.people import load_people
from lgo.api.app import create_app
from lgo.bootstrap.container import Container
from lgo.core.settings import load_settings
from lgo.services.counters import add_counter
from lgo.store import migrate
from tests.fixtures.secrets import without_random_ids

pytestmark = pytest.mark.integration
PEOPLE = load_people()
PHARMACIST = PEOPLE.professionals["pharmacien"]


@dataclass
class Daemon:
    client: TestClient
    container: Container
    events: queue.Queue[tuple[str, dict[str, Any]]]
    seen: list[tuple[str, dict[str, Any]]]

    def wait(
        self,
        type_: str,
        match: Callable[[dict[str, Any]], bool] = lambda _d: True,
        timeout: float = 5.0,
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                got_type, data = self.events.get(timeout=remaining)
            except queue.Empty:
                break
            self.seen.append((got_type, data))
            if got_type == type_ and match(data):
                return data
        raise TimeoutError(f"no {type_} event; seen {[t for t, _ in self.seen]}")


@pytest.fixture
def daemon(
    hwsim, opensc_module, tmp_path: Path, daemon_hardware: dict[str, Any]
) -> Iterator[Daemon]:  # type: ignore[no-untyped-def]
    settings = load_settings(
        state_dir=tmp_path / "state",
        hardware={
            "pcsc_enabled": True,
            # OpenSC's module drives the virtual CPS: the card checks the PIN and counts the tries
            "pkcs11_module": str(opensc_module),
            "scanner_serial_ports": [str(hwsim.serial_scanner)],
            "card_read_timeout_s": 2.0,
            **daemon_hardware,
        },
    )
    container = Container(settings)
    migrate.upgrade(container.db)
    _, token = add_counter(container.db, "comptoir-1")
    events: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
    publish = container.events.publish

    def spy(type_: str, data: dict[str, Any] | None = None):  # type: ignore[no-untyped-def]
        events.put((type_, dict(data or {})))
        return publish(type_, data)

    container.events.publish = spy  # type: ignore[method-assign]
    app = create_app(settings, container)
    base = f"http://127.0.0.1:{settings.api.port}"
    with TestClient(app, base_url=base, headers={"Authorization": f"Bearer {token}"}) as client:
        daemon = Daemon(client, container, events, [])
        for name in hwsim.reader_names:
            daemon.wait("reader.added", lambda d, n=name: d["reader"] == n)
        # pyserial flushes input on open: scans sent before the port is open would be lost.
        assert container.hardware.hardware.wait_scanners_connected(5.0)
        yield daemon


def test_vitale_insert_is_read_and_published_with_ids_only(daemon, hwsim) -> None:  # type: ignore[no-untyped-def]
    reader = hwsim.reader_names[0]
    hwsim.client.insert("vitale", "jumeaux-2b", reader=0)
    inserted = daemon.wait("card.inserted", lambda d: d["reader"] == reader, timeout=15.0)
    assert inserted["kind"] == "vitale2"
    read = daemon.wait("vitale.read", lambda d: d["reader"] == reader)
    assert read["beneficiaries"] == 3
    listed = daemon.client.get("/v1/readers").json()
    assert listed["degraded"] is None
    entry = next(r for r in listed["readers"] if r["name"] == reader)
    assert entry["card_kind"] == "vitale2" and entry["vitale_read_id"] == read["read_id"]
    card = daemon.client.get(f"/v1/readers/vitale/{read['read_id']}").json()
    expected = PEOPLE.vitale["jumeaux-2b"].beneficiaries
    assert [(b["nir"], b["birth_date_raw"]) for b in card["beneficiaries"]] == [
        (b.nir, b.date_naissance) for b in expected
    ]
    published = json.dumps([data for _t, data in daemon.seen])
    assert all(b.nir not in published and b.prenom not in published for b in expected)
    hwsim.client.remove(0)
    daemon.wait("card.removed", lambda d: d["reader"] == reader)
    # The card's contents do not outlive the card.
    gone = daemon.client.get(f"/v1/readers/vitale/{read['read_id']}")
    assert gone.status_code == 404


def test_vitale1_gives_a_typed_error_event(daemon, hwsim) -> None:  # type: ignore[no-untyped-def]
    hwsim.client.insert("vitale1", reader=0)
    error = daemon.wait("vitale.error", lambda d: d["reader"] == hwsim.reader_names[0])
    assert error["code"] == "card-unsupported"


def test_cps_login_wrong_pin_then_right_then_card_pulled(daemon, hwsim) -> None:  # type: ignore[no-untyped-def]
    reader = hwsim.reader_names[1]
    hwsim.client.insert("cps", "pharmacien", reader=1)
    daemon.wait("card.inserted", lambda d: d["reader"] == reader and d["kind"] == "cps")
    card = daemon.client.get("/v1/cps/session/card").json()
    assert card["serial"] == PHARMACIST.card_serial and card["pin_tries_left"] == 3

    wrong = daemon.client.post("/v1/cps/session", json={"kind": "cps", "pin": "0000"})
    assert wrong.status_code == 403
    assert wrong.json()["type"] == "urn:lgo:problem:cps-pin-incorrect"
    assert wrong.json()["tries_left"] == 2
    assert daemon.client.get("/v1/cps/session/card").json()["pin_tries_left"] == 2  # no retry

    ok = daemon.client.post("/v1/cps/session", json={"kind": "cps", "pin": PHARMACIST.pin})
    assert ok.status_code == 201, ok.text
    body = ok.json()
    assert body["kind"] == "cps"
    professional = body["session"]["professional"]
    assert professional["rpps"] == PHARMACIST.rpps and professional["profession_code"] == "21"
    assert PHARMACIST.pin not in without_random_ids(json.dumps([d for _t, d in daemon.seen]))

    hwsim.client.remove(1)
    closed = daemon.wait("session.closed", timeout=15.0)
    assert closed["reason"] == "card_removed"
    assert daemon.wait("cps.logged_out")["reason"] == "card_removed"
    assert daemon.client.get("/v1/cps/session").json()["session"] is None


def test_final_try_needs_confirmation(daemon, hwsim) -> None:  # type: ignore[no-untyped-def]
    hwsim.client.insert("cps", "pharmacien", reader=1)
    daemon.wait("card.inserted", lambda d: d["kind"] == "cps")
    for _ in range(2):
        daemon.client.post("/v1/cps/session", json={"kind": "cps", "pin": "0000"})
    refused = daemon.client.post("/v1/cps/session", json={"kind": "cps", "pin": PHARMACIST.pin})
    assert refused.status_code == 409
    assert refused.json()["type"] == "urn:lgo:problem:cps-pin-final-try"
    confirmed = daemon.client.post(
        "/v1/cps/session",
        json={"kind": "cps", "pin": PHARMACIST.pin, "confirm_final_try": True},
    )
    assert confirmed.status_code == 201
    assert daemon.client.delete("/v1/cps/session").status_code == 204
    assert daemon.wait("cps.logged_out")["reason"] == "logout"


def test_pcscd_restart_degrades_then_recovers_health(daemon, hwsim) -> None:  # type: ignore[no-untyped-def]
    hwsim.client.restart_pcscd()
    degraded = daemon.wait("hardware.degraded", timeout=10.0)
    assert degraded["reason"] == "pcsc_service_unavailable"
    daemon.wait("hardware.recovered", timeout=15.0)
    for name in hwsim.reader_names:
        daemon.wait("reader.added", lambda d, n=name: d["reader"] == n, timeout=15.0)
    assert daemon.client.get("/v1/readers").json()["degraded"] is None
    pcsc = daemon.client.get("/v1/health").json()["components"]["pcsc"]
    assert pcsc == {"ok": True, "detail": "ok"}


def test_serial_scanner_feeds_scan_events(daemon, hwsim) -> None:  # type: ignore[no-untyped-def]
    hwsim.client.scan("3400935955838", aim="]E0")
    event = daemon.wait("scan.received", lambda d: d["kind"] == "ean13_cip")
    assert event["fields"] == {"cip13": "3400935955838", "cip7": "3595583"}
    assert event["source"].startswith("serial:")
    recent = daemon.client.get("/v1/scans").json()
    assert recent[0]["id"] == event["id"]


def test_mute_card_gives_an_error_event_and_the_monitor_lives_on(daemon, hwsim) -> None:  # type: ignore[no-untyped-def]
    reader = hwsim.reader_names[0]
    hwsim.client.insert("mute", reader=0)
    error = daemon.wait("vitale.error", lambda d: d["reader"] == reader, timeout=10.0)
    assert error["code"] in {"card-removed", "card-read-failed", "hardware-timeout"}
    if ("card.removed", {"reader": reader, "kind": "vitale2"}) not in daemon.seen:
        daemon.wait("card.removed", lambda d: d["reader"] == reader, timeout=5.0)  # link drops
    hwsim.client.insert("vitale", "seul", reader=0)
    assert daemon.wait("vitale.read", lambda d: d["reader"] == reader, timeout=10.0)


def test_slow_card_read_hits_its_deadline(daemon, hwsim) -> None:  # type: ignore[no-untyped-def]
    reader = hwsim.reader_names[0]
    hwsim.client.set_fault(0, delay_s=0.5)  # ~10 APDUs x 0.5 s > the 2 s deadline
    hwsim.client.insert("vitale", "seul", reader=0)
    error = daemon.wait("vitale.error", lambda d: d["reader"] == reader, timeout=6.0)
    assert error["code"] == "hardware-timeout"
