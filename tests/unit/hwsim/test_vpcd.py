"""vpcd framing against a fake vpcd (a loopback TCP listener playing pcscd's driver side)."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator

import pytest

from hwsim.cards import Vitale2Card
from hwsim.cards.misc import MuteCard
from hwsim.fixtures import load_people
from hwsim.vpcd import Faults, LinkClosed, VpcdLink, read_frame, write_frame


class FakeVpcd:
    """Accepts one card and exchanges frames with it, as ifd-vpcd does."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.conn: socket.socket | None = None

    def accept(self) -> None:
        self.conn, _ = self.server.accept()
        self.conn.settimeout(5)

    def send(self, payload: bytes) -> bytes:
        assert self.conn is not None
        write_frame(self.conn, payload)
        return read_frame(self.conn)

    def control(self, code: int) -> None:
        assert self.conn is not None
        write_frame(self.conn, bytes([code]))

    def close(self) -> None:
        if self.conn:
            self.conn.close()
        self.server.close()


@pytest.fixture
def vpcd() -> Iterator[FakeVpcd]:
    fake = FakeVpcd()
    yield fake
    fake.close()


def plug(vpcd: FakeVpcd, card: object, faults: Faults | None = None) -> tuple[VpcdLink, list[str]]:
    closed: list[str] = []
    done = threading.Event()

    def on_closed(_: VpcdLink, reason: str) -> None:
        closed.append(reason)
        done.set()

    assert isinstance(card, Vitale2Card | MuteCard)
    link = VpcdLink(card, vpcd.port, faults=faults, on_closed=on_closed)
    link.connect()
    vpcd.accept()
    link.done = done  # type: ignore[attr-defined]
    return link, closed


def test_frames_are_length_prefixed() -> None:
    a, b = socket.socketpair()
    write_frame(a, b"\x01\x02\x03")
    assert b.recv(5) == b"\x00\x03\x01\x02\x03"
    a.sendall(struct.pack("!H", 2) + b"\xaa")
    a.close()
    with pytest.raises(LinkClosed):
        read_frame(b)
    b.close()


def test_atr_power_and_apdu(vpcd: FakeVpcd) -> None:
    card = Vitale2Card(load_people().vitale["seul"])
    link, closed = plug(vpcd, card)
    assert vpcd.send(b"\x04") == card.atr
    vpcd.control(0x01)
    assert vpcd.send(bytes.fromhex("00A4000C023F00")) == b"\x90\x00"
    vpcd.control(0x00)
    assert vpcd.send(b"\x04") == card.atr  # ATR at any time, even powered off
    assert not card.powered
    assert link.stats.apdus == 1 and link.stats.controls[0x04] == 2
    link.close()
    assert closed == ["removed"]


def test_remove_after_n_apdus_drops_the_link(vpcd: FakeVpcd) -> None:
    card = Vitale2Card(load_people().vitale["seul"])
    link, closed = plug(vpcd, card, Faults(remove_after=1))
    assert vpcd.send(bytes.fromhex("00A4000C023F00")) == b"\x90\x00"
    assert vpcd.conn is not None
    write_frame(vpcd.conn, bytes.fromhex("00B0820000"))
    assert vpcd.conn.recv(2) == b""  # the card went away instead of answering
    assert link.done.wait(5)  # type: ignore[attr-defined]
    assert closed == ["fault"]


def test_wrong_status_word_for_one_instruction(vpcd: FakeVpcd) -> None:
    card = Vitale2Card(load_people().vitale["seul"])
    link, _ = plug(vpcd, card, Faults(sw_override=0x6A82, sw_ins=0xB0))
    assert vpcd.send(bytes.fromhex("00A4000C023F00")) == b"\x90\x00"
    assert vpcd.send(bytes.fromhex("00B0820004")) == b"\x6a\x82"
    link.close()


def test_mute_card_never_answers(vpcd: FakeVpcd) -> None:
    link, closed = plug(vpcd, MuteCard(), Faults(mute_delay_s=0.0))
    assert vpcd.send(b"\x04")[0] == 0x3B
    assert vpcd.conn is not None
    write_frame(vpcd.conn, bytes.fromhex("00A4000C023F00"))
    assert vpcd.conn.recv(2) == b""
    assert link.done.wait(5)  # type: ignore[attr-defined]
    assert closed == ["fault"]


def test_vpcd_closing_ejects(vpcd: FakeVpcd) -> None:
    link, closed = plug(vpcd, Vitale2Card(load_people().vitale["seul"]))
    assert vpcd.conn is not None
    vpcd.conn.close()
    assert link.done.wait(5)  # type: ignore[attr-defined]
    assert closed == ["ejected"] and not link.connected


def test_faults_clear_in_place() -> None:
    faults = Faults(delay_s=1.0, remove_after=2, sw_override=0x6F00, sw_ins=0xB0, mute_delay_s=0)
    same = faults
    faults.clear()
    assert same == Faults()
