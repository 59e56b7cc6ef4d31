"""The daemon's hardware services with fakes: event mapping, CPS session life, removal races."""

from __future__ import annotations

from typing import Any

import pytest

from drivers import errors as drv
from drivers.cps import login as driver_login  # lgo.services.cps imports it on first login
from drivers.cps.identity import ProfessionalIdentity as CardIdentity
from drivers.pcsc import (
    CardInserted,
    CardKind,
    CardRemoved,
    MonitorDegraded,
    ReaderAdded,
)
from lgo.core.events import EventBus
from lgo.core.settings import HardwareSettings
from lgo.services import cps as cps_module
from lgo.services import hardware_errors as hw
from lgo.services.cps import CpsService
from lgo.services.hardware import HardwareService
from lgo.services.scans import ScanService
from lgo.services.sessions import SessionKind, SessionRegistry

CPS_ATR = bytes.fromhex("3BAC00402A00122500648000031000" + "9000")
WHO = CardIdentity("810999999997", "10999999997", "TESTPHARMA", "ALEX", "Pharmacien")
SECRET_PIN = "975310864202"  # long enough that no random session id (hex) contains it by chance


class FakeCps:
    def __init__(self) -> None:
        self.identity = WHO
        self.closed = 0

    @property
    def open(self) -> bool:
        return self.closed == 0

    def close(self, *, card_removed: bool = False) -> None:
        self.closed += 1
        self.card_removed = card_removed


@pytest.fixture
def wired() -> tuple[EventBus, SessionRegistry, CpsService, HardwareService]:
    events = EventBus()
    sessions = SessionRegistry(events)
    settings = HardwareSettings(pcsc_enabled=False, pkcs11_module="/nonexistent.so")
    cps = CpsService(settings, sessions, events)
    hardware = HardwareService(settings, events, ScanService(events), cps)
    return events, sessions, cps, hardware


def types(events: EventBus) -> list[str]:
    return [e.type for e in events.recent()]


def test_monitor_events_become_bus_events_with_ids_only(wired) -> None:  # type: ignore[no-untyped-def]
    events, _sessions, cps, hardware = wired
    hardware.on_monitor_event(ReaderAdded("R1"))
    hardware.on_monitor_event(CardInserted("R1", CPS_ATR, CardKind.CPS))
    hardware.on_monitor_event(MonitorDegraded("pcsc_service_unavailable", 0.2))
    hardware.on_monitor_event(CardRemoved("R1"))
    assert types(events) == ["reader.added", "card.inserted", "hardware.degraded", "card.removed"]
    assert events.recent()[1].data == {"reader": "R1", "kind": "cps", "atr": CPS_ATR.hex().upper()}
    assert events.recent()[3].data == {"reader": "R1", "kind": "cps"}
    assert cps.readers() == []


def test_login_opens_a_cps_session_and_removal_logs_out_at_once(wired, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    events, sessions, cps, hardware = wired
    fake = FakeCps()
    calls: list[dict[str, Any]] = []

    def fake_login(tokens: Any, reader: str, pin: str, **kwargs: Any) -> FakeCps:
        calls.append({"reader": reader, **kwargs})
        return fake

    monkeypatch.setattr(driver_login, "login", fake_login)
    monkeypatch.setattr(cps_module.Pkcs11CpsCard, "_loaded", lambda self: object())
    hardware.on_monitor_event(CardInserted("R1", CPS_ATR, CardKind.CPS))
    session = cps.login(SECRET_PIN)
    assert session.kind is SessionKind.CPS and session.identity.profession_code == "21"
    assert calls == [{"reader": "R1", "confirm_final_try": False, "checked": None}]
    assert cps.signer() is fake
    hardware.on_monitor_event(CardRemoved("R1"))
    assert fake.closed == 1 and sessions.current() is None
    closed = next(e for e in events.recent() if e.type == "session.closed")
    assert closed.data["reason"] == "card_removed"
    assert SECRET_PIN not in str([e.data for e in events.recent()])


def test_card_pulled_during_login_leaves_no_session(wired, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    _events, sessions, cps, hardware = wired
    fake = FakeCps()

    def login_then_pull(tokens: Any, reader: str, pin: str, **kwargs: Any) -> FakeCps:
        hardware.on_monitor_event(CardRemoved(reader))  # the monitor sees the card leave
        return fake

    monkeypatch.setattr(driver_login, "login", login_then_pull)
    monkeypatch.setattr(cps_module.Pkcs11CpsCard, "_loaded", lambda self: object())
    hardware.on_monitor_event(CardInserted("R1", CPS_ATR, CardKind.CPS))
    with pytest.raises(hw.CpsSessionClosed):
        cps.login("1234")
    assert fake.closed == 1 and sessions.current() is None


def test_logout_through_the_registry_closes_the_card_session(wired, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    events, sessions, cps, hardware = wired
    fake = FakeCps()
    monkeypatch.setattr(driver_login, "login", lambda *a, **k: fake)
    monkeypatch.setattr(cps_module.Pkcs11CpsCard, "_loaded", lambda self: object())
    hardware.on_monitor_event(CardInserted("R1", CPS_ATR, CardKind.CPS))
    cps.login("1234")
    sessions.close("logout")
    assert fake.closed == 1
    assert types(events)[-2:] == ["cps.logged_out", "session.closed"]


def test_driver_errors_translate_to_french_problems(wired, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    _events, _sessions, cps, hardware = wired

    def wrong_pin(*_a: Any, **_k: Any) -> FakeCps:
        raise drv.PinIncorrect(2)

    monkeypatch.setattr(driver_login, "login", wrong_pin)
    monkeypatch.setattr(cps_module.Pkcs11CpsCard, "_loaded", lambda self: object())
    with pytest.raises(hw.CpsCardMissing):
        cps.login("1234")
    hardware.on_monitor_event(CardInserted("R1", CPS_ATR, CardKind.CPS))
    hardware.on_monitor_event(CardInserted("R2", CPS_ATR, CardKind.CPS))
    with pytest.raises(hw.CpsReaderAmbiguous):
        cps.login("1234")
    with pytest.raises(hw.CpsPinIncorrect) as info:
        cps.login("1234", reader="R1")
    assert info.value.extra["tries_left"] == 2 and info.value.status == 403


def test_missing_pkcs11_module_is_reported(wired) -> None:  # type: ignore[no-untyped-def]
    _events, _sessions, cps, hardware = wired
    hardware.on_monitor_event(CardInserted("R1", CPS_ATR, CardKind.CPS))
    with pytest.raises(hw.CpsMiddlewareUnavailable):
        cps.login("1234")
