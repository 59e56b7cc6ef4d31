"""Virtual scanners: bytes as the daemon reads them."""

from __future__ import annotations

import os
import select
from pathlib import Path

import pytest

from hwsim.scanners import SerialScanner, frame, key_strokes, wedge_available


def test_frame_aim_and_suffix() -> None:
    assert frame("3400999999991", "]E0") == b"]E03400999999991\r"
    gs1 = "0103400999999991172712311" + "0TESTLOT1\x1d21SIMSERIAL0000001"
    assert frame(gs1, "]d2").count(b"\x1d") == 1


def test_serial_scanner_over_pty(tmp_path: Path) -> None:
    scanner = SerialScanner(tmp_path / "scanner")
    try:
        assert os.path.realpath(tmp_path / "scanner") == scanner.slave_path
        fd = os.open(scanner.slave_path, os.O_RDONLY | os.O_NOCTTY)
        try:
            scanner.scan("EPTEST0000000000000042", aim="]Q1")
            assert select.select([fd], [], [], 5)[0]
            assert os.read(fd, 100) == b"]Q1EPTEST0000000000000042\r"  # CR kept (raw mode)
        finally:
            os.close(fd)
        assert scanner.describe()["scans"] == 1
    finally:
        scanner.close()
    assert not (tmp_path / "scanner").exists()


def test_key_strokes_us_layout() -> None:
    strokes = key_strokes("Ab1]")
    assert strokes == [
        ("KEY_A", True),
        ("KEY_B", False),
        ("KEY_1", False),
        ("KEY_RIGHTBRACE", False),
        ("KEY_ENTER", False),
    ]


@pytest.mark.skipif(not wedge_available(), reason="/dev/uinput absent or not writable here")
def test_wedge_scanner_creates_a_keyboard() -> None:
    import evdev

    from hwsim.scanners import WedgeScanner

    scanner = WedgeScanner()
    try:
        names = [evdev.InputDevice(p).name for p in evdev.list_devices()]
        assert "hwsim wedge scanner" in names
        scanner.scan("123")
        assert scanner.scans == 1
    finally:
        scanner.close()
