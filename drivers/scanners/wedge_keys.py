"""Keyboard-wedge decoding: evdev key codes → characters for the scanner's keyboard layout.

The scanner types with the layout *it* is configured for (formats.md §5.1): a scanner set to
French AZERTY sends the key codes of ``&é"'(-è_çà`` for digits unless shifted. We decode with the
configured layout ("fr" or "us"). GS (0x1D) arrives as Ctrl+``]`` (the key that gives ``]`` on the
layout) or Ctrl+5 on AZERTY; Enter, keypad Enter or Tab end the code.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# evdev key codes (linux/input-event-codes.h)
KEY_ESC, KEY_ENTER, KEY_TAB, KEY_KPENTER, KEY_SPACE = 1, 28, 15, 96, 57
KEY_LEFTSHIFT, KEY_RIGHTSHIFT, KEY_CAPSLOCK = 42, 54, 58
KEY_LEFTCTRL, KEY_RIGHTCTRL, KEY_RIGHTALT = 29, 97, 100
_TERMINATORS = {KEY_ENTER, KEY_KPENTER, KEY_TAB}
_LETTER_ROWS = {16: "qwertyuiop", 30: "asdfghjkl", 44: "zxcvbnm"}
_KEYPAD = {
    71: "7",
    72: "8",
    73: "9",
    75: "4",
    76: "5",
    77: "6",
    79: "1",
    80: "2",
    81: "3",
    82: "0",
    83: ".",
    55: "*",
    74: "-",
    78: "+",
    98: "/",
}


def _us() -> dict[int, tuple[str, str, str]]:
    keys: dict[int, tuple[str, str, str]] = {}
    for code, (plain, shifted) in enumerate(zip("1234567890-=", "!@#$%^&*()_+", strict=True), 2):
        keys[code] = (plain, shifted, "")
    for start, row in _LETTER_ROWS.items():
        for offset, letter in enumerate(row):
            keys[start + offset] = (letter, letter.upper(), "")
    extra = {
        26: "[{",
        27: "]}",
        39: ";:",
        40: "'\"",
        41: "`~",
        43: "\\|",
        51: ",<",
        52: ".>",
        53: "/?",
        57: "  ",
    }
    for code, pair in extra.items():
        keys[code] = (pair[0], pair[1], "")
    return keys


def _fr() -> dict[int, tuple[str, str, str]]:
    keys: dict[int, tuple[str, str, str]] = {}
    plain_row, shifted_row = "&é\"'(-è_çà)=", "1234567890°+"
    altgr_row = "\0~#{[|`\\^@]}"
    for i, code in enumerate(range(2, 14)):
        keys[code] = (plain_row[i], shifted_row[i], altgr_row[i].strip("\0"))
    azerty = {16: "azertyuiop", 30: "qsdfghjklm", 44: "wxcvbn"}
    for start, row in azerty.items():
        for offset, letter in enumerate(row):
            keys[start + offset] = (letter, letter.upper(), "")
    extra = {
        26: "^¨",
        27: "$£",
        40: "ù%",
        41: "²³",
        43: "*µ",
        50: ",?",
        51: ";.",
        52: ":/",
        53: "!§",
        86: "<>",
        57: "  ",
    }
    for code, pair in extra.items():
        keys[code] = (pair[0], pair[1], "")
    keys[18] = ("e", "E", "€")
    return keys


LAYOUTS: dict[str, dict[int, tuple[str, str, str]]] = {"us": _us(), "fr": _fr()}
# Ctrl + this key sends GS (0x1D): the key that types "]" on the layout (and Ctrl+5 on AZERTY,
# where "]" needs AltGr; xkb's fr layout maps Ctrl+5 to GS as on a VT).
_GS_KEYS = {"us": {27}, "fr": {6, 12, 27}}


@dataclass
class WedgeDecoder:
    """Feed key events (code, value: 1 down, 0 up, 2 repeat); get a payload at the terminator."""

    layout: str = "fr"
    max_length: int = 4096
    _buffer: list[str] = field(default_factory=list)
    _shift: int = 0
    _ctrl: int = 0
    _altgr: bool = False
    _caps: bool = False
    overflowed: bool = False

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ValueError(f"unknown keyboard layout {self.layout!r}")

    @property
    def pending(self) -> bool:
        return bool(self._buffer)

    def flush(self) -> str | None:
        """End the current code (terminator or inter-key timeout); None when nothing was typed."""
        text = "".join(self._buffer)
        self._buffer.clear()
        overflowed, self.overflowed = self.overflowed, False
        return text if text and not overflowed else None

    def feed(self, code: int, value: int) -> str | None:
        if self._modifier(code, value) or value == 0:
            return None
        if code in _TERMINATORS:
            return self.flush()
        char = self._char(code)
        if char:
            if len(self._buffer) >= self.max_length:
                self.overflowed = True  # drop the whole code rather than deliver a truncated one
            else:
                self._buffer.append(char)
        return None

    def _modifier(self, code: int, value: int) -> bool:
        if code in (KEY_LEFTSHIFT, KEY_RIGHTSHIFT):
            self._shift = max(0, self._shift + (1 if value == 1 else -1 if value == 0 else 0))
        elif code in (KEY_LEFTCTRL, KEY_RIGHTCTRL):
            self._ctrl = max(0, self._ctrl + (1 if value == 1 else -1 if value == 0 else 0))
        elif code == KEY_RIGHTALT:
            self._altgr = value != 0
        elif code == KEY_CAPSLOCK:
            if value == 1:
                self._caps = not self._caps
        else:
            return False
        return True

    def _char(self, code: int) -> str:
        if self._ctrl:
            return "\x1d" if code in _GS_KEYS[self.layout] else ""
        if code in _KEYPAD:
            return _KEYPAD[code]
        entry = LAYOUTS[self.layout].get(code)
        if entry is None:
            return ""
        plain, shifted, altgr = entry
        if self._altgr:
            return altgr
        upper = bool(self._shift) != (self._caps and (plain.isalpha() or self.layout == "fr"))
        return shifted if upper else plain
