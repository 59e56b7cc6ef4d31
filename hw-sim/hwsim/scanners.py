"""Virtual counter scanners.

- `SerialScanner`: a CDC-ACM-like serial scanner over a pty. The daemon opens `slave_path` (also
  linked as `<workdir>/scanner-serial`) with pyserial; each scan writes `[AIM prefix] payload CR`.
- `WedgeScanner`: a USB keyboard-wedge scanner over /dev/uinput (US layout, Enter suffix), only
  where /dev/uinput is writable.
"""

from __future__ import annotations

import contextlib
import os
import pty
import tty
from pathlib import Path
from typing import Any

UINPUT = Path("/dev/uinput")


def frame(text: str, aim: str | None = None, suffix: str = "\r") -> bytes:
    """The bytes a serial scanner sends for one read (GS stays 0x1D)."""
    return ((aim or "") + text + suffix).encode("latin-1")


class SerialScanner:
    kind = "serial"

    def __init__(self, link: Path | None = None, suffix: str = "\r") -> None:
        self.master, self.slave = pty.openpty()
        tty.setraw(self.slave)  # no CR->NL translation: the daemon gets the bytes as sent
        self.slave_path = os.ttyname(self.slave)
        self.suffix = suffix
        self.scans = 0
        self.link = link
        if link is not None:
            link.unlink(missing_ok=True)
            link.symlink_to(self.slave_path)

    def scan(self, text: str, aim: str | None = None) -> None:
        os.write(self.master, frame(text, aim, self.suffix))
        self.scans += 1

    def close(self) -> None:
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):  # already closed
                os.close(fd)
        if self.link is not None:
            self.link.unlink(missing_ok=True)

    def describe(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "path": self.slave_path,
            "link": str(self.link) if self.link else None,
            "scans": self.scans,
        }


def wedge_available() -> bool:
    return UINPUT.exists() and os.access(UINPUT, os.W_OK)


_US_KEYS = {
    **{str(d): f"KEY_{d}" for d in range(10)},
    **{c: f"KEY_{c.upper()}" for c in "abcdefghijklmnopqrstuvwxyz"},
    "-": "KEY_MINUS",
    "=": "KEY_EQUAL",
    "[": "KEY_LEFTBRACE",
    "]": "KEY_RIGHTBRACE",
    ";": "KEY_SEMICOLON",
    "'": "KEY_APOSTROPHE",
    ",": "KEY_COMMA",
    ".": "KEY_DOT",
    "/": "KEY_SLASH",
    " ": "KEY_SPACE",
    "\\": "KEY_BACKSLASH",
}
_US_SHIFTED = {
    "_": "-",
    "+": "=",
    "{": "[",
    "}": "]",
    ":": ";",
    '"': "'",
    "<": ",",
    ">": ".",
    "?": "/",
    "|": "\\",
    "!": "1",
    "@": "2",
    "#": "3",
    "$": "4",
    "%": "5",
    "^": "6",
    "&": "7",
    "*": "8",
    "(": "9",
    ")": "0",
}


def key_strokes(text: str) -> list[tuple[str, bool]]:
    """(key name, shift) per character, US layout, Enter suffix; GS and other controls dropped."""
    strokes = []
    for char in text:
        if char.isupper():
            strokes.append((_US_KEYS[char.lower()], True))
        elif char in _US_SHIFTED:
            strokes.append((_US_KEYS[_US_SHIFTED[char]], True))
        elif char in _US_KEYS:
            strokes.append((_US_KEYS[char], False))
    strokes.append(("KEY_ENTER", False))
    return strokes


class WedgeScanner:
    kind = "wedge"

    def __init__(self) -> None:
        import evdev  # only where uinput is usable

        self._ecodes: Any = evdev.ecodes
        keys = [getattr(evdev.ecodes, name) for name in set(_US_KEYS.values())]
        keys += [evdev.ecodes.KEY_ENTER, evdev.ecodes.KEY_LEFTSHIFT]
        self.device: Any = evdev.UInput({evdev.ecodes.EV_KEY: keys}, name="hwsim wedge scanner")
        self.scans = 0

    def scan(self, text: str, aim: str | None = None) -> None:
        codes = self._ecodes
        for name, shift in key_strokes((aim or "") + text):
            if shift:
                self.device.write(codes.EV_KEY, codes.KEY_LEFTSHIFT, 1)
            self.device.write(codes.EV_KEY, getattr(codes, name), 1)
            self.device.write(codes.EV_KEY, getattr(codes, name), 0)
            if shift:
                self.device.write(codes.EV_KEY, codes.KEY_LEFTSHIFT, 0)
            self.device.syn()
        self.scans += 1

    def close(self) -> None:
        self.device.close()

    def describe(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "path": str(getattr(self.device, "device", "")),
            "scans": self.scans,
        }
