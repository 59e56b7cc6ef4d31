"""Card core in the vicc style: APDU bytes in, response bytes out.

A card is a pure object: `process(apdu) -> response` dispatches on INS through a handler table;
handlers raise `SwError` for any status word other than 90 00. No I/O here: the vpcd framing lives
in `hwsim.vpcd`, so unit tests drive cards in-process.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

SW_OK = 0x9000
SW_WRONG_LENGTH = 0x6700
SW_SECURITY_NOT_SATISFIED = 0x6982
SW_AUTH_BLOCKED = 0x6983
SW_CONDITIONS_NOT_SATISFIED = 0x6985
SW_WRONG_DATA = 0x6A80
SW_FILE_NOT_FOUND = 0x6A82
SW_WRONG_P1P2 = 0x6B00
SW_INS_NOT_SUPPORTED = 0x6D00
SW_CLA_NOT_SUPPORTED = 0x6E00
SW_NO_PRECISE_DIAGNOSIS = 0x6F00
SW_REFERENCED_DATA_NOT_FOUND = 0x6A88


class SwError(Exception):
    """A status word other than 90 00, raised by handlers and turned into SW1 SW2.

    `data` is sent before the status word (e.g. a GET RESPONSE chunk followed by `61 xx`).
    """

    def __init__(self, sw: int, data: bytes = b"") -> None:
        super().__init__(f"SW {sw:04X}")
        self.sw = sw
        self.data = data


class ApduFormatError(SwError):
    def __init__(self) -> None:
        super().__init__(SW_WRONG_LENGTH)


@dataclass(frozen=True)
class Apdu:
    """A parsed command APDU (ISO 7816-4 cases 1-4, short and extended length)."""

    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes = b""
    le: int | None = None  # None: no Le field; 0 in a short APDU means 256

    @classmethod
    def parse(cls, raw: bytes) -> Apdu:
        if len(raw) < 4:
            raise ApduFormatError()
        cla, ins, p1, p2 = raw[0], raw[1], raw[2], raw[3]
        body = raw[4:]
        if not body:
            return cls(cla, ins, p1, p2)
        if len(body) == 1:
            return cls(cla, ins, p1, p2, le=body[0] or 256)
        if body[0] != 0:
            return cls._short(cla, ins, p1, p2, body)
        return cls._extended(cla, ins, p1, p2, body)

    @classmethod
    def _short(cls, cla: int, ins: int, p1: int, p2: int, body: bytes) -> Apdu:
        lc = body[0]
        if len(body) == 1 + lc:
            return cls(cla, ins, p1, p2, body[1:])
        if len(body) == 2 + lc:
            return cls(cla, ins, p1, p2, body[1 : 1 + lc], body[-1] or 256)
        raise ApduFormatError()

    @classmethod
    def _extended(cls, cla: int, ins: int, p1: int, p2: int, body: bytes) -> Apdu:
        if len(body) == 3:
            return cls(cla, ins, p1, p2, le=int.from_bytes(body[1:3], "big") or 65536)
        lc = int.from_bytes(body[1:3], "big")
        data = body[3 : 3 + lc]
        rest = body[3 + lc :]
        if len(data) != lc or len(rest) not in (0, 2):
            raise ApduFormatError()
        le = (int.from_bytes(rest, "big") or 65536) if rest else None
        return cls(cla, ins, p1, p2, data, le)


Handler = Callable[[Apdu], bytes]


class Card:
    """Base card: ATR, power state, an INS -> handler table and T=0 GET RESPONSE buffering.

    Subclasses fill `handlers` and may override `check_cla`. Case-4 commands (data in, data out)
    answer `61 xx` and keep the data for GET RESPONSE (00 C0), as a T=0 card does.
    """

    kind = "generic"
    atr: bytes = b""
    mute = False  # a mute card never answers an APDU (see hwsim.vpcd)

    def __init__(self) -> None:
        self.handlers: dict[int, Handler] = {0xC0: self.get_response}
        self.powered = False
        self.apdu_count = 0
        self._pending = b""

    # vpcd control messages -------------------------------------------------------------
    def power_on(self) -> None:
        self.powered = True
        self.on_reset()

    def power_off(self) -> None:
        self.powered = False
        self.on_reset()

    def reset(self) -> None:
        self.on_reset()

    def on_reset(self) -> None:
        """Forget volatile state (selection, verified PIN, pending response)."""
        self._pending = b""

    # APDU processing ---------------------------------------------------------------------
    def process(self, raw: bytes) -> bytes:
        """Answer one command APDU; never raises for card-level errors."""
        self.apdu_count += 1
        try:
            apdu = Apdu.parse(raw)
            self.check_cla(apdu)
            handler = self.handlers.get(apdu.ins)
            if handler is None:
                raise SwError(SW_INS_NOT_SUPPORTED)
            if apdu.ins != 0xC0:
                self._pending = b""
            data = handler(apdu)
        except SwError as err:
            return err.data + err.sw.to_bytes(2, "big")
        return data + SW_OK.to_bytes(2, "big")

    def check_cla(self, apdu: Apdu) -> None:
        if apdu.cla != 0x00:
            raise SwError(SW_CLA_NOT_SUPPORTED)

    def respond(self, apdu: Apdu, data: bytes) -> bytes:
        """Return `data` directly (case 2) or via `61 xx` (case 4 under T=0)."""
        if apdu.data and data:
            self._pending = data
            raise SwError(0x6100 | (len(data) if len(data) < 256 else 0))
        return self.fit_le(apdu, data)

    @staticmethod
    def fit_le(apdu: Apdu, data: bytes) -> bytes:
        """T=0 Le check: a wrong Le gets `6C xx` with the exact length."""
        if apdu.le is None:
            return data
        if apdu.le > len(data) and len(data) < 256:
            raise SwError(0x6C00 | len(data))
        return data[: apdu.le]

    def get_response(self, apdu: Apdu) -> bytes:
        if not self._pending:
            raise SwError(SW_CONDITIONS_NOT_SATISFIED)
        wanted = apdu.le or 256
        chunk, self._pending = self._pending[:wanted], self._pending[wanted:]
        if self._pending:
            # more bytes left: say how many, as a T=0 card does
            raise SwError(0x6100 | min(len(self._pending), 0xFF), chunk)
        return chunk

    def describe(self) -> dict[str, object]:
        return {"kind": self.kind, "atr": self.atr.hex(" ").upper()}
