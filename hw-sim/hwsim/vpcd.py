"""vpcd socket protocol: plugs a pure card object into a real pcscd's virtual reader.

Framing only (no card logic): every message is a 2-byte big-endian length + payload. From vpcd a
1-byte payload is a control byte (00 power off, 01 power on, 02 reset, 04 get ATR; only 04 gets an
answer), anything longer is a C-APDU answered with the R-APDU. The card is a TCP client of vpcd's
port: connecting inserts it, closing removes it.

TCP_QUICKACK is re-armed after every recv: Debian 12's vpcd sends length and body in two writes
without TCP_NODELAY, so without an immediate ACK every message waits ~44 ms for the delayed ACK.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from hwsim.cards.base import Card

log = logging.getLogger("hwsim.vpcd")

CTRL_OFF = 0x00
CTRL_ON = 0x01
CTRL_RESET = 0x02
CTRL_ATR = 0x04
# LGO_HWSIM_NO_QUICKACK=1 is for the benchmark only: it shows the ~44 ms stall this avoids
_QUICKACK = (
    None if os.environ.get("LGO_HWSIM_NO_QUICKACK") else getattr(socket, "TCP_QUICKACK", None)
)


class LinkClosed(ConnectionError):
    """vpcd closed the connection (pcscd stopped, or it ejected the card)."""


@dataclass
class Faults:
    """Faults applied by a link; changed at run time through the control API."""

    delay_s: float = 0.0  # slow card: added before every APDU answer
    remove_after: int | None = None  # drop the link instead of answering APDU number N+1
    sw_override: int | None = None  # answer this status word to every APDU (wrong SW)
    sw_ins: int | None = None  # ...only to this INS when set
    mute_delay_s: float = 2.0  # how long a mute card holds a command before the link drops

    def clear(self) -> None:
        """Back to a healthy card, in place (links hold a reference to this object)."""
        self.delay_s = 0.0
        self.remove_after = None
        self.sw_override = None
        self.sw_ins = None
        self.mute_delay_s = 2.0

    def as_dict(self) -> dict[str, object]:
        return {
            "delay_s": self.delay_s,
            "remove_after": self.remove_after,
            "sw_override": None if self.sw_override is None else f"{self.sw_override:04X}",
            "sw_ins": None if self.sw_ins is None else f"{self.sw_ins:02X}",
        }


def _quickack(sock: socket.socket) -> None:
    if _QUICKACK is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)


def recv_exact(sock: socket.socket, size: int) -> bytes:
    buf = b""
    while len(buf) < size:
        chunk = sock.recv(size - len(buf))
        _quickack(sock)  # the flag resets itself: re-arm after every recv
        if not chunk:
            raise LinkClosed("vpcd closed the connection")
        buf += chunk
    return buf


def read_frame(sock: socket.socket) -> bytes:
    (size,) = struct.unpack("!H", recv_exact(sock, 2))
    return recv_exact(sock, size)


def write_frame(sock: socket.socket, payload: bytes) -> None:
    sock.sendall(struct.pack("!H", len(payload)) + payload)  # one write: no Nagle stall


@dataclass
class LinkStats:
    apdus: int = 0
    controls: dict[int, int] = field(default_factory=dict)


class VpcdLink:
    """One inserted card: a TCP connection to a vpcd slot served by a thread."""

    def __init__(
        self,
        card: Card,
        port: int,
        host: str = "127.0.0.1",
        faults: Faults | None = None,
        on_closed: Callable[[VpcdLink, str], None] | None = None,
    ) -> None:
        self.card = card
        self.address = (host, port)
        self.faults = faults or Faults()
        self.stats = LinkStats()
        self._on_closed = on_closed
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._closing = threading.Event()

    @property
    def connected(self) -> bool:
        return self._sock is not None

    def connect(self, timeout: float = 5.0) -> None:
        """Insert the card; retries while vpcd is not listening yet (pcscd starting)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                sock = socket.create_connection(self.address, timeout=1.0)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)  # vpcd opens its port a few ms after pcscd starts
        sock.settimeout(None)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        _quickack(sock)
        self._sock = sock
        self._thread = threading.Thread(
            target=self._serve, name=f"vpcd-{self.address[1]}", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        """Remove the card."""
        self._closing.set()
        self._drop()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def _drop(self) -> None:
        sock, self._sock = self._sock, None
        if sock is None:
            return
        with contextlib.suppress(OSError):  # already gone
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()

    def _serve(self) -> None:
        sock = self._sock
        reason = "removed"
        try:
            while sock is not None:
                message = read_frame(sock)
                if len(message) == 1:
                    self._control(sock, message[0])
                elif not self._apdu(sock, message):
                    reason = "fault"
                    break
        except (OSError, struct.error):
            reason = "removed" if self._closing.is_set() else "ejected"
        finally:
            self._drop()
            if self._on_closed is not None:
                self._on_closed(self, reason)

    def _control(self, sock: socket.socket, code: int) -> None:
        self.stats.controls[code] = self.stats.controls.get(code, 0) + 1
        if code == CTRL_ATR:
            write_frame(sock, self.card.atr)
        elif code == CTRL_ON:
            self.card.power_on()
        elif code == CTRL_OFF:
            self.card.power_off()
        elif code == CTRL_RESET:
            self.card.reset()

    def _apdu(self, sock: socket.socket, apdu: bytes) -> bool:
        """Answer one APDU; False means the link must drop (fault)."""
        faults = self.faults
        if faults.remove_after is not None and self.stats.apdus >= faults.remove_after:
            log.info("fault_card_removed_mid_read port=%s", self.address[1])
            return False
        self.stats.apdus += 1
        if self.card.mute:
            self._closing.wait(faults.mute_delay_s)
            return False
        if faults.delay_s:
            time.sleep(faults.delay_s)
        answer = self.card.process(apdu)
        if faults.sw_override is not None and faults.sw_ins in (None, apdu[1]):
            answer = faults.sw_override.to_bytes(2, "big")
        write_frame(sock, answer)
        return True
