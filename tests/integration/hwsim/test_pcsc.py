"""hw-sim end to end: pyscard -> libpcsclite -> private pcscd -> vpcd -> virtual cards."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from smartcard.Exceptions import CardConnectionException, NoCardException
from smartcard.System import readers

from hwsim.control import ControlError
from hwsim.fixtures import load_people
from tests.fixtures.pcsc import HwsimBench, wait_card

pytestmark = pytest.mark.integration

PEOPLE = load_people()
SELECT_MF = [0x00, 0xA4, 0x00, 0x00, 0x02, 0x3F, 0x00]
SELECT_VITALE = [0x00, 0xA4, 0x04, 0x00, 0x0B, *b"\xd2\x50\x00\x00\x02VITALE"]
READ_SFI2 = [0x00, 0xB0, 0x82, 0x00, 0x00]


def parse_tlv(data: bytes) -> list[tuple[int, bytes]]:
    """1-byte tags and lengths, stops at the zero padding (as a driver does)."""
    out, i = [], 0
    while i < len(data) and data[i] != 0:
        tag, size = data[i], data[i + 1]
        out.append((tag, data[i + 2 : i + 2 + size]))
        i += 2 + size
    return out


def connect(name: str):  # type: ignore[no-untyped-def]
    wait_card(name, present=True)
    conn = next(r for r in readers() if str(r) == name).createConnection()
    conn.connect()
    return conn


def transmit(conn, apdu: list[int]) -> tuple[bytes, int]:  # type: ignore[no-untyped-def]
    data, sw1, sw2 = conn.transmit(apdu)
    return bytes(data), (sw1 << 8) | sw2


def read_t0(conn, apdu: list[int]) -> bytes:  # type: ignore[no-untyped-def]
    """READ BINARY with Le=00 then the 6C xx resend, as the driver must do."""
    data, sw = transmit(conn, apdu)
    if sw >> 8 == 0x6C:
        data, sw = transmit(conn, [*apdu[:4], sw & 0xFF])
    assert sw == 0x9000
    return data


def test_readers_listed(hwsim: HwsimBench) -> None:
    names = [str(r) for r in readers()]
    assert names == hwsim.reader_names == ["HWSIM PCD 00 00", "HWSIM PCD 00 01"]
    assert os.environ["PCSCLITE_CSOCK_NAME"] == str(hwsim.pcsc_socket)


def test_insert_and_remove_are_seen(hwsim: HwsimBench) -> None:
    name = hwsim.reader_names[0]
    hwsim.client.insert("vitale", "seul", reader=0)
    wait_card(name, present=True)
    hwsim.client.remove(0)
    wait_card(name, present=False)
    with pytest.raises(NoCardException):
        next(r for r in readers() if str(r) == name).createConnection().connect()


def test_vitale_read_by_raw_apdus_returns_fixture_data(hwsim: HwsimBench) -> None:
    profile = PEOPLE.vitale["famille-testnom"]
    hwsim.client.insert("vitale", profile.id, reader=0)
    conn = connect(hwsim.reader_names[0])
    assert bytes(conn.getATR()) == bytes.fromhex("3B75130000 4709EA9000")
    _, sw = transmit(conn, SELECT_MF)
    assert sw >> 8 == 0x61  # T=0: FCI waits for GET RESPONSE
    identity = parse_tlv(read_t0(conn, READ_SFI2))
    _, sw = transmit(conn, SELECT_VITALE)
    assert sw >> 8 == 0x61
    nirs = parse_tlv(read_t0(conn, READ_SFI2))
    _, protected = transmit(conn, [0x00, 0xB0, 0x85, 0x00, 0x00])
    conn.disconnect()

    people = [dict(parse_tlv(value)) for tag, value in identity if tag == 0x65]
    got = [(p[0x80].decode(), p[0x81].decode(), p[0x82].decode()) for p in people]
    expected = [(b.nom, b.prenom, b.date_naissance) for b in profile.beneficiaries]
    assert got == expected
    got_nirs = [dict(parse_tlv(value))[0x93].decode() for _, value in nirs]
    assert got_nirs == [b.nir for b in profile.beneficiaries]
    assert protected == 0x6982


def test_lunar_and_corsican_fixtures_reach_the_card(hwsim: HwsimBench) -> None:
    hwsim.client.insert("vitale", "lunaire", reader=0)
    conn = connect(hwsim.reader_names[0])
    transmit(conn, SELECT_MF)
    person = dict(parse_tlv(parse_tlv(read_t0(conn, READ_SFI2))[0][1]))
    assert person[0x82] == b"19800000"
    conn.disconnect()
    hwsim.client.swap("vitale", "corse-2a", reader=0)
    wait_card(hwsim.reader_names[0], present=False)
    conn = connect(hwsim.reader_names[0])
    transmit(conn, SELECT_VITALE)
    nir = dict(parse_tlv(parse_tlv(read_t0(conn, READ_SFI2))[0][1]))[0x93].decode()
    assert nir[5:7] == "2A"
    assert int(nir[13:]) == 97 - int(nir[:13].replace("2A", "19")) % 97


def get_pin_tries(conn) -> int:  # type: ignore[no-untyped-def]
    _, sw = transmit(conn, [0x00, 0xCB, 0x3F, 0xFF, 0x0A, *bytes.fromhex("4D087006BF810102A080")])
    assert sw == 0x6118
    data, sw = transmit(conn, [0x00, 0xC0, 0x00, 0x00, 0x18])
    assert sw == 0x9000 and data[:6] == bytes.fromhex("7016BF810112")
    assert data[8:11] == b"\x9a\x01\x03"
    return data[13]


def verify(conn, pin: str) -> int:  # type: ignore[no-untyped-def]
    body = pin.encode() + b"\xff" * (8 - len(pin))
    return transmit(conn, [0x00, 0x20, 0x00, 0x01, 0x08, *body])[1]


def test_cps_serial_and_pin_lock_after_three_wrong_tries(hwsim: HwsimBench) -> None:
    pro = PEOPLE.professionals["pharmacien"]
    hwsim.client.insert("cps", pro.id, reader=1)
    conn = connect(hwsim.reader_names[1])
    assert transmit(conn, [0x00, 0xA4, 0x09, 0x0C, 0x04, 0x3F, 0x00, 0xD0, 0x03])[1] == 0x9000
    serial, sw = transmit(conn, [0x00, 0xB0, 0x00, 0x00, 0x0C])
    assert sw == 0x9000
    assert serial.hex().upper() == "5A0A8025000001" + pro.card_serial + "F"
    assert transmit(conn, SELECT_VITALE)[1] == 0x6A82  # a CPS is never taken for a Vitale

    assert get_pin_tries(conn) == 3
    wrong = "0000" if pro.pin != "0000" else "9999"
    assert verify(conn, wrong) == 0x63C2
    assert get_pin_tries(conn) == 2
    assert verify(conn, wrong) == 0x63C1
    assert verify(conn, wrong) == 0x6983
    assert get_pin_tries(conn) == 0
    assert verify(conn, pro.pin) == 0x6983  # locked: even the right PIN is refused
    conn.disconnect()
    assert hwsim.client.status()["readers"][1]["card"]["tries_left"] == 0


def test_right_pin_resets_the_counter(hwsim: HwsimBench) -> None:
    pro = PEOPLE.professionals["pharmacien-adjoint"]
    hwsim.client.insert("cps", pro.id, reader=1)
    conn = connect(hwsim.reader_names[1])
    assert verify(conn, "0000") == 0x63C2
    assert verify(conn, pro.pin) == 0x9000
    assert get_pin_tries(conn) == 3
    conn.disconnect()


def test_vitale1_error_and_mute_cards(hwsim: HwsimBench) -> None:
    hwsim.client.insert("vitale1", reader=0)
    conn = connect(hwsim.reader_names[0])
    assert bytes(conn.getATR())[0] == 0x3F  # inverse convention
    assert transmit(conn, SELECT_MF)[1] == 0x6E00
    conn.disconnect()
    hwsim.client.swap("error", reader=0)
    wait_card(hwsim.reader_names[0], present=False)
    conn = connect(hwsim.reader_names[0])
    assert transmit(conn, SELECT_MF)[1] == 0x6F00
    conn.disconnect()
    hwsim.client.swap("mute", reader=0)
    wait_card(hwsim.reader_names[0], present=False)
    conn = connect(hwsim.reader_names[0])
    hwsim.client.set_fault(0, mute_delay_s=0.2)
    with pytest.raises(CardConnectionException):
        conn.transmit(SELECT_MF)
    wait_card(hwsim.reader_names[0], present=False)


def test_card_removed_mid_read(hwsim: HwsimBench) -> None:
    hwsim.client.set_fault(0, remove_after=2)
    hwsim.client.insert("vitale", "famille-testnom", reader=0)
    conn = connect(hwsim.reader_names[0])
    transmit(conn, SELECT_MF)
    transmit(conn, READ_SFI2)
    with pytest.raises(CardConnectionException):
        conn.transmit(SELECT_VITALE)
    wait_card(hwsim.reader_names[0], present=False)
    assert hwsim.client.status()["readers"][0]["last_event"] == "fault"


def test_wrong_status_word_and_slow_card(hwsim: HwsimBench) -> None:
    hwsim.client.set_fault(0, sw=0x6F00, ins=0xB0, delay_s=0.05)
    hwsim.client.insert("vitale", "seul", reader=0)
    conn = connect(hwsim.reader_names[0])
    start = time.monotonic()
    assert transmit(conn, SELECT_MF)[1] == 0x6112  # other instructions are untouched
    assert time.monotonic() - start >= 0.05  # the injected delay is applied (a lower bound)
    assert transmit(conn, READ_SFI2)[1] == 0x6F00
    hwsim.client.clear_faults(0)
    assert transmit(conn, READ_SFI2)[1] >> 8 == 0x6C
    conn.disconnect()


def test_double_insert_refused_and_unknown_profile(hwsim: HwsimBench) -> None:
    hwsim.client.insert("vitale", "seul", reader=0)
    with pytest.raises(ControlError) as occupied:
        hwsim.client.insert("vitale", "lunaire", reader=0)
    assert occupied.value.status == 409
    with pytest.raises(ControlError) as unknown:
        hwsim.client.insert("cps", "nobody", reader=1)
    assert unknown.value.status == 404
    with pytest.raises(ControlError):
        hwsim.client.insert("vitale", "seul", reader=7)


def test_pcscd_restart_keeps_cards_in_readers(hwsim: HwsimBench) -> None:
    hwsim.client.insert("vitale", "seul", reader=0)
    conn = connect(hwsim.reader_names[0])
    before = hwsim.client.status()["pcscd"]
    after = hwsim.client.restart_pcscd()
    assert after["pid"] != before["pid"] and after["starts"] == before["starts"] + 1
    with pytest.raises(CardConnectionException):
        conn.transmit(SELECT_MF)  # the old connection died with the old pcscd
    dead = conn.component  # readers() wraps the PCSC connection in a decorator
    with contextlib.suppress(CardConnectionException):
        dead.release()  # its handles belong to the dead daemon
    dead.hcontext = None  # else pyscard's __del__ raises again (context of the old pcscd)
    conn = connect(hwsim.reader_names[0])
    assert transmit(conn, SELECT_MF)[1] == 0x6112
    conn.disconnect()


def test_soft_unplug_drops_the_card_and_refuses_insertion(hwsim: HwsimBench) -> None:
    hwsim.client.insert("cps", "pharmacien", reader=1)
    wait_card(hwsim.reader_names[1], present=True)
    hwsim.client.unplug(1)
    wait_card(hwsim.reader_names[1], present=False)
    with pytest.raises(ControlError):
        hwsim.client.insert("cps", "pharmacien", reader=1)
    hwsim.client.replug(1)
    hwsim.client.insert("cps", "pharmacien", reader=1)
    wait_card(hwsim.reader_names[1], present=True)


FOUR_READERS = """
import os, sys
from pathlib import Path
from hwsim.runtime import launch
from hwsim.control import Client
launched = launch(Path(sys.argv[1]), readers=4)
os.environ["PCSCLITE_CSOCK_NAME"] = str(launched.pcsc_socket)
from smartcard.System import readers
try:
    client = Client(launched.control_socket)
    print([str(r) for r in readers()])
    client.insert("vitale", "seul", reader=3)
    client.unplug(0, hard=True)
    print([str(r) for r in readers()])
    print(client.status()["readers"][3]["card"]["kind"])
    pcscd = client.status()["pcscd"]["pid"]
finally:
    launched.stop()

def alive(pid):
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"

print(alive(launched.proc.pid), alive(pcscd))
"""


def test_four_readers_hard_unplug_and_clean_stop() -> None:
    # own process: libpcsclite caches the socket path once per process
    workdir = Path(f"/tmp/hwsim-4r-{os.getpid()}")
    env = {k: v for k, v in os.environ.items() if k != "PCSCLITE_CSOCK_NAME"}
    try:
        out = subprocess.run(
            [sys.executable, "-c", FOUR_READERS, str(workdir)],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            check=True,
        ).stdout.splitlines()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    assert out[0] == str([f"HWSIM PCD {b}00 {s:02X}" for b in ("", "B ") for s in (0, 1)])
    assert out[1] == "['HWSIM PCD B 00 00', 'HWSIM PCD B 00 01']"
    assert out[2] == "vitale2"  # the card in reader 3 survived the other pair's unplug
    assert out[3] == "False False"  # neither the simulator nor its pcscd outlives stop()


def test_scan_reaches_the_serial_pty(hwsim: HwsimBench) -> None:
    import select

    fd = os.open(hwsim.serial_scanner, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
    try:
        while select.select([fd], [], [], 0)[0]:  # what earlier tests scanned with no reader
            if not os.read(fd, 4096):
                break
        payload = "01034009999999911727123110TESTLOT1\x1d21SIMSERIAL0000001"
        hwsim.client.scan(payload, aim="]d2")
        assert select.select([fd], [], [], 5)[0]
        got = b""
        while not got.endswith(b"\r") and select.select([fd], [], [], 5)[0]:
            got += os.read(fd, 256)
        assert got == b"]d2" + payload.encode() + b"\r"
    finally:
        os.close(fd)


def test_reset_replugs_and_forgets_faults(hwsim: HwsimBench) -> None:
    hwsim.client.set_fault(0, delay_s=0.3)
    hwsim.client.unplug(0)
    status = hwsim.client.reset()
    reader = status["readers"][0]
    assert not reader["unplugged"] and reader["faults"]["delay_s"] == 0.0
    hwsim.client.insert("vitale", "seul", reader=0)
    wait_card(hwsim.reader_names[0], present=True)


def _host_listening_ports() -> set[int]:
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A":  # LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def test_vpcd_ports_do_not_reach_the_host_network(hwsim: HwsimBench) -> None:
    status = hwsim.client.status()
    if status["isolation"] != "netns":
        pytest.skip("plain fallback: vpcd listens on the host (said in status)")
    vpcd_ports = {int(r["port"]) for r in status["readers"]}
    assert not vpcd_ports & _host_listening_ports()


KILLED_LAUNCHER = """
import os, signal, sys
from pathlib import Path
from hwsim.control import Client
from hwsim.runtime import launch
launched = launch(Path(sys.argv[1]))
print(launched.proc.pid, Client(launched.control_socket).status()["pcscd"]["pid"], flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # no teardown at all, like a test run killed by a timeout
"""


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_simulator_dies_with_a_killed_launcher() -> None:
    workdir = Path(f"/tmp/hwsim-kill-{os.getpid()}")
    env = {k: v for k, v in os.environ.items() if k != "PCSCLITE_CSOCK_NAME"}
    try:
        done = subprocess.run(
            [sys.executable, "-c", KILLED_LAUNCHER, str(workdir)],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            check=False,
        )
        pids = [int(p) for p in done.stdout.split()]
        assert len(pids) == 2, done.stderr
        deadline = time.monotonic() + 15
        while any(_alive(pid) for pid in pids):
            assert time.monotonic() < deadline, "simulator outlived its launcher"
            time.sleep(0.05)  # other processes exiting: nothing to await
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
