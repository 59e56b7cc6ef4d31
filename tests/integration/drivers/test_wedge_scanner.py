"""Keyboard-wedge scanner through a real evdev device (hw-sim's uinput scanner, US layout).

Needs a writable /dev/uinput (not available in unprivileged containers): skipped otherwise.
"""

from __future__ import annotations

import os
import queue
from pathlib import Path

import pytest

from drivers.scanners import WedgeScanner

pytestmark = pytest.mark.integration
UINPUT = Path("/dev/uinput")


@pytest.mark.skipif(
    not (UINPUT.exists() and os.access(UINPUT, os.W_OK)),
    reason="/dev/uinput absent or not writable here: no virtual keyboard can be created",
)
def test_wedge_scanner_reads_a_code_from_a_grabbed_keyboard() -> None:
    from hwsim.scanners import WedgeScanner as VirtualWedge

    virtual = VirtualWedge()
    payloads: queue.Queue[bytes] = queue.Queue()
    scanner = WedgeScanner(virtual.device.device.path, payloads.put, layout="us")
    scanner.start()
    try:
        assert scanner.connected.wait(3)
        virtual.scan("EPTEST0000000000000042", aim="]Q1")
        assert payloads.get(timeout=3) == b"]Q1EPTEST0000000000000042"
    finally:
        scanner.stop()
        virtual.close()
