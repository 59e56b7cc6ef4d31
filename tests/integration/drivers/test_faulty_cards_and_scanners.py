"""Faulty cards through the real pcscd, and hw-sim's serial scanner (a pty) into the driver."""

from __future__ import annotations

import datetime as dt
import queue

import pytest

from drivers import errors
from drivers.scanners import Classifier, ScanKind, SerialScanner
from drivers.vitale import read_vitale_from_reader
from tests.fixtures.pcsc import wait_card

pytestmark = pytest.mark.integration


def test_card_answering_6f00_is_a_typed_error(hwsim) -> None:  # type: ignore[no-untyped-def]
    reader = hwsim.reader_names[0]
    hwsim.client.insert("error", reader=0)
    wait_card(reader, present=True)
    with pytest.raises(errors.UnsupportedCard) as info:
        read_vitale_from_reader(reader)
    assert "6F00" in info.value.reason


def test_mute_card_is_a_typed_error(hwsim) -> None:  # type: ignore[no-untyped-def]
    reader = hwsim.reader_names[0]
    hwsim.client.insert("mute", reader=0)
    wait_card(reader, present=True)
    with pytest.raises(errors.PcscError):
        read_vitale_from_reader(reader)


def test_serial_scanner_payloads_are_classified(hwsim) -> None:  # type: ignore[no-untyped-def]
    payloads: queue.Queue[bytes] = queue.Queue()
    scanner = SerialScanner(str(hwsim.serial_scanner), payloads.put)
    scanner.start()
    try:
        assert scanner.connected.wait(3)
        hwsim.client.scan("01034009999999911727123110TESTLOT1\x1d21SIMSERIAL0000001", aim="]d2")
        hwsim.client.scan("EPTEST0000000000000042", aim="]Q1")
        first, second = payloads.get(timeout=3), payloads.get(timeout=3)
    finally:
        scanner.stop()
    classifier = Classifier()
    gs1 = classifier.classify(first, dt.date(2026, 1, 1))
    assert gs1.kind is ScanKind.GS1 and gs1.fields["serial"] == "SIMSERIAL0000001"
    assert gs1.aim_id == "]d2"
    assert classifier.classify(second, dt.date(2026, 1, 1)).fields == {
        "prescription_id": "EPTEST0000000000000042"
    }
