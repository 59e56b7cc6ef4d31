"""The PC/SC monitor and the Vitale reader against hw-sim's real private pcscd + vpcd."""

from __future__ import annotations

import pytest

from drivers import errors
from drivers.pcsc import (
    CardInserted,
    CardKind,
    CardRemoved,
    MonitorDegraded,
    MonitorRecovered,
    ReaderAdded,
    ReaderRemoved,
)
from drivers.vitale import read_vitale_from_reader
from hwsim.fixtures.people import load_people
from tests.fixtures.pcsc import wait_card

pytestmark = pytest.mark.integration
EVENT_WAIT_S = 15.0  # a generous bound on a loaded machine; the test waits for the event itself
PEOPLE = load_people()


def inserted(reader: str, kind: CardKind | None = None):  # type: ignore[no-untyped-def]
    return lambda e: (
        isinstance(e, CardInserted) and e.reader == reader and (kind is None or e.kind is kind)
    )


def test_readers_are_listed_and_insert_remove_are_seen(monitor, hwsim) -> None:  # type: ignore[no-untyped-def]
    # How fast a card is seen is a benchmark figure (tests/bench), not a pass/fail here.
    mon, log = monitor
    vitale_reader = hwsim.reader_names[0]
    assert {s.name for s in mon.snapshot()} >= set(hwsim.reader_names)
    hwsim.client.insert("vitale", "famille-testnom", reader=0)
    event = log.wait_for(inserted(vitale_reader), timeout=EVENT_WAIT_S)
    assert isinstance(event, CardInserted) and event.kind is CardKind.VITALE_2
    assert event.atr == bytes.fromhex("3B751300004709EA9000")
    hwsim.client.remove(0)
    log.wait_for(
        lambda e: isinstance(e, CardRemoved) and e.reader == vitale_reader, timeout=EVENT_WAIT_S
    )
    assert not any(s.card_present for s in mon.snapshot() if s.name == vitale_reader)


@pytest.mark.parametrize("profile", ["famille-testnom", "jumeaux-2b", "lunaire"])
def test_vitale_read_equals_fixture(hwsim, profile: str) -> None:  # type: ignore[no-untyped-def]
    reader = hwsim.reader_names[0]
    hwsim.client.insert("vitale", profile, reader=0)
    wait_card(reader, present=True)
    card = read_vitale_from_reader(reader)
    expected = PEOPLE.vitale[profile]
    assert [(b.family_name, b.given_name, b.birth_date_raw, b.nir) for b in card.beneficiaries] == [
        (b.nom, b.prenom, b.date_naissance, b.nir) for b in expected.beneficiaries
    ]
    assert card.validity_start_raw == expected.validity_start


def test_vitale_read_sends_8_apdus_counted_by_the_card(hwsim) -> None:  # type: ignore[no-untyped-def]
    # Counted on the card side (hw-sim's vpcd link): SELECT MF and SELECT VITALE with P2=0C are one
    # APDU each; with P2=00 each would add a GET RESPONSE (10).
    reader = hwsim.reader_names[0]
    hwsim.client.insert("vitale", "famille-testnom", reader=0)
    wait_card(reader, present=True)
    before = hwsim.client.apdus(0)
    card = read_vitale_from_reader(reader)
    assert hwsim.client.apdus(0) - before == 8
    assert card.apdu_count == 8


def test_card_pulled_mid_read_gives_typed_error(hwsim) -> None:  # type: ignore[no-untyped-def]
    reader = hwsim.reader_names[0]
    hwsim.client.insert("vitale", "famille-testnom", reader=0)
    wait_card(reader, present=True)
    hwsim.client.set_fault(0, remove_after=3)
    with pytest.raises(errors.PcscError) as info:
        read_vitale_from_reader(reader)
    assert isinstance(
        info.value,
        errors.CardRemoved
        | errors.NoCard
        | errors.CardReset
        | errors.UnresponsiveCard
        | errors.TransactionFailed,
    )


def test_vitale1_is_reported_unsupported(hwsim) -> None:  # type: ignore[no-untyped-def]
    reader = hwsim.reader_names[0]
    hwsim.client.insert("vitale1", reader=0)
    wait_card(reader, present=True)
    with pytest.raises(errors.UnsupportedCard) as info:
        read_vitale_from_reader(reader)
    assert info.value.kind == "vitale1"


def test_monitor_recovers_after_pcscd_restart(monitor, hwsim) -> None:  # type: ignore[no-untyped-def]
    mon, log = monitor
    reader = hwsim.reader_names[0]
    hwsim.client.insert("vitale", "seul", reader=0)
    log.wait_for(inserted(reader), timeout=3.0)
    hwsim.client.restart_pcscd()
    # pcscd going away is reported (degraded), never swallowed, and the card is dropped.
    log.wait_for(lambda e: isinstance(e, MonitorDegraded), timeout=10.0)
    assert any(isinstance(e, CardRemoved) and e.reader == reader for e in log.seen)
    # The card host re-inserts its cards after the restart: the monitor sees them again.
    log.wait_for(inserted(reader, CardKind.VITALE_2), timeout=15.0)
    assert mon.degraded is None
    assert any(isinstance(e, MonitorRecovered) for e in log.seen)


def test_reader_unplug_and_replug_converges(monitor, hwsim) -> None:  # type: ignore[no-untyped-def]
    mon, log = monitor
    gone = hwsim.reader_names[0]
    hwsim.client.unplug(0, hard=True)
    try:
        log.wait_for(lambda e: isinstance(e, ReaderRemoved) and e.reader == gone, timeout=15.0)
    finally:
        hwsim.client.replug(0)
    log.wait_for(lambda e: isinstance(e, ReaderAdded) and e.reader == gone, timeout=15.0)
    assert {s.name for s in mon.snapshot()} >= set(hwsim.reader_names)


def test_reader_held_exclusively_elsewhere_is_a_sharing_violation(hwsim) -> None:  # type: ignore[no-untyped-def]
    from smartcard import scard

    reader = hwsim.reader_names[0]
    hwsim.client.insert("vitale", "seul", reader=0)
    wait_card(reader, present=True)
    hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    assert hresult == 0
    hresult, handle, _protocol = scard.SCardConnect(
        context, reader, scard.SCARD_SHARE_EXCLUSIVE, scard.SCARD_PROTOCOL_T0
    )
    assert hresult == 0
    try:
        with pytest.raises(errors.SharingViolation) as info:
            read_vitale_from_reader(reader)
        assert info.value.hresult == scard.SCARD_E_SHARING_VIOLATION & 0xFFFFFFFF
    finally:
        scard.SCardDisconnect(handle, scard.SCARD_LEAVE_CARD)
        scard.SCardReleaseContext(context)
    assert len(read_vitale_from_reader(reader).beneficiaries) == 1
