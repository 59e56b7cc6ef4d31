"""Keyboard-wedge decoding (fr/us layouts) and the serial scanner on a real pty."""

from __future__ import annotations

import os
import queue
import tty

import pytest

from drivers.errors import PayloadTooLong, ScannerError, ScannerUnavailable
from drivers.scanners import SerialScanner, WedgeDecoder
from drivers.scanners.wedge_keys import KEY_ENTER, KEY_LEFTCTRL, KEY_LEFTSHIFT, KEY_TAB

# evdev codes of the physical keys
KEY_1, KEY_0, KEY_Q, KEY_A, KEY_E, KEY_P, KEY_RIGHTBRACE = 2, 11, 16, 30, 18, 25, 27


def press(decoder: WedgeDecoder, code: int, shift: bool = False) -> str | None:
    if shift:
        decoder.feed(KEY_LEFTSHIFT, 1)
    out = decoder.feed(code, 1)
    decoder.feed(code, 0)
    if shift:
        decoder.feed(KEY_LEFTSHIFT, 0)
    return out


def test_azerty_scanner_digits_need_shift() -> None:
    decoder = WedgeDecoder(layout="fr")
    press(decoder, KEY_1)  # unshifted: "&"
    press(decoder, KEY_1, shift=True)  # shifted: "1"
    press(decoder, KEY_A, shift=True)  # AZERTY: key A types Q
    press(decoder, KEY_Q, shift=True)  # key Q types A
    assert press(decoder, KEY_ENTER) == "&1QA"


def test_qwerty_scanner() -> None:
    decoder = WedgeDecoder(layout="us")
    for code in (KEY_1, KEY_0):
        press(decoder, code)
    press(decoder, KEY_E, shift=True)
    press(decoder, KEY_P)
    assert press(decoder, KEY_TAB) == "10Ep"


def test_ctrl_right_bracket_sends_gs() -> None:
    decoder = WedgeDecoder(layout="us")
    press(decoder, KEY_1)
    decoder.feed(KEY_LEFTCTRL, 1)
    press(decoder, KEY_RIGHTBRACE)
    decoder.feed(KEY_LEFTCTRL, 0)
    press(decoder, KEY_0)
    assert press(decoder, KEY_ENTER) == "1\x1d0"


def test_flush_on_timeout_and_overflow_drops_the_code() -> None:
    decoder = WedgeDecoder(layout="us", max_length=3)
    assert decoder.flush() is None
    for _ in range(5):
        press(decoder, KEY_1)
    assert decoder.overflowed
    assert press(decoder, KEY_ENTER) is None  # truncated codes are never delivered
    press(decoder, KEY_0)
    assert decoder.flush() == "0"


def test_unknown_layout_is_refused() -> None:
    with pytest.raises(ValueError):
        WedgeDecoder(layout="de")


@pytest.fixture
def pty_pair():  # type: ignore[no-untyped-def]
    master, slave = os.openpty()
    tty.setraw(slave)
    yield master, os.ttyname(slave)
    os.close(master)
    os.close(slave)


def test_serial_scanner_delivers_payloads_by_terminator_and_timeout(pty_pair) -> None:  # type: ignore[no-untyped-def]
    master, path = pty_pair
    payloads: queue.Queue[bytes] = queue.Queue()
    scanner = SerialScanner(path, payloads.put, idle_timeout=0.2)
    scanner.start()
    try:
        assert scanner.connected.wait(2)
        os.write(master, b"]d201034009999999911727123110LOT\x1d21SER\r\n")
        assert payloads.get(timeout=2) == b"]d201034009999999911727123110LOT\x1d21SER"
        os.write(master, b"NOSUFFIX")  # a scanner without suffix: ended by the idle timeout
        assert payloads.get(timeout=2) == b"NOSUFFIX"
        assert payloads.empty()
    finally:
        scanner.stop()


def test_serial_scanner_reports_oversized_codes(pty_pair) -> None:  # type: ignore[no-untyped-def]
    master, path = pty_pair
    payloads: queue.Queue[bytes] = queue.Queue()
    failures: queue.Queue[ScannerError] = queue.Queue()
    scanner = SerialScanner(path, payloads.put, failures.put)
    scanner.start()
    try:
        assert scanner.connected.wait(2)
        for _ in range(5):
            os.write(master, b"A" * 1000)
        os.write(master, b"\rOK\r")
        assert isinstance(failures.get(timeout=2), PayloadTooLong)
        assert payloads.get(timeout=2) == b"OK"
    finally:
        scanner.stop()


def test_missing_serial_device_is_reported_not_fatal() -> None:
    failures: queue.Queue[ScannerError] = queue.Queue()
    scanner = SerialScanner("/nonexistent/ttyACM9", lambda _p: None, failures.put)
    scanner.start()
    try:
        assert isinstance(failures.get(timeout=2), ScannerUnavailable)
    finally:
        scanner.stop()
