"""hw-sim benchmark: APDU round trip through pcscd and insert/remove event latency.

Run:  .venv/bin/python tests/bench/bench_hwsim.py [--apdus 1000] [--events 20] [--no-quickack]
Prints median / p99 figures; never fails on time. `test_bench_hwsim` runs a short version in pytest.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

SELECT_MF = [0x00, 0xA4, 0x00, 0x0C, 0x02, 0x3F, 0x00]
READ_4 = [0x00, 0xB0, 0x82, 0x00, 0x04]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def fmt(name: str, values_s: list[float]) -> str:
    ms = [v * 1000 for v in values_s]
    return (
        f"{name:<34} n={len(ms):<5} min {min(ms):8.3f}  median {statistics.median(ms):8.3f}  "
        f"p99 {pct(ms, 0.99):8.3f}  max {max(ms):8.3f} ms"
    )


def apdu_round_trips(client: Any, reader_name: str, n: int) -> dict[str, list[float]]:
    from smartcard import scard
    from smartcard.System import readers

    from tests.fixtures.pcsc import wait_card

    client.insert("vitale", "famille-testnom", reader=0)
    wait_card(reader_name, present=True)
    conn = next(r for r in readers() if str(r) == reader_name).createConnection()
    conn.connect()
    conn.transmit(SELECT_MF)
    high: list[float] = []
    for _ in range(n):
        start = time.perf_counter()
        conn.transmit(READ_4)
        high.append(time.perf_counter() - start)
    handle = getattr(conn, "component", conn).hcard  # readers() wraps it in a decorator
    raw: list[float] = []
    for _ in range(n):
        start = time.perf_counter()
        scard.SCardTransmit(handle, scard.SCARD_PCI_T0, READ_4)
        raw.append(time.perf_counter() - start)
    full: list[float] = []
    for _ in range(max(10, n // 20)):
        start = time.perf_counter()
        vitale_read(conn)
        full.append(time.perf_counter() - start)
    conn.disconnect()
    client.remove(0)
    wait_card(reader_name, present=False)
    return {
        "CardConnection.transmit": high,
        "SCardTransmit (raw)": raw,
        "Vitale read (7 APDUs)": full,
    }


def vitale_read(conn: Any) -> None:
    aid = [*b"\xd2\x50\x00\x00\x02VITALE"]
    for select in ([0x00, 0xA4, 0x00, 0x0C, 0x02, 0x3F, 0x00], [0x00, 0xA4, 0x04, 0x0C, 11, *aid]):
        conn.transmit(select)
        _, sw1, sw2 = conn.transmit([0x00, 0xB0, 0x82, 0x00, 0x00])
        if sw1 == 0x6C:
            conn.transmit([0x00, 0xB0, 0x82, 0x00, sw2])
    conn.transmit([0x00, 0xB0, 0x85, 0x00, 0x00])


def event_latency(client: Any, reader_name: str, n: int) -> dict[str, list[float]]:
    """Insert/remove at random times (no phase lock with pcscd's 400 ms poll)."""
    from tests.fixtures.pcsc import wait_card

    rng = random.Random(4)
    inserted, removed = [], []
    for _ in range(n):
        time.sleep(rng.uniform(0.05, 0.45))  # random phase vs the poll: the point of the bench
        start = time.perf_counter()
        client.insert("cps", "pharmacien", reader=1)
        wait_card(reader_name, present=True, timeout=5)
        inserted.append(time.perf_counter() - start)
        time.sleep(rng.uniform(0.05, 0.45))
        start = time.perf_counter()
        client.remove(1)
        wait_card(reader_name, present=False, timeout=5)
        removed.append(time.perf_counter() - start)
    return {"insert -> SCardGetStatusChange": inserted, "remove -> SCardGetStatusChange": removed}


def softhsm_sign(n: int) -> dict[str, list[float]]:
    import pkcs11
    from pkcs11 import KeyType, Mechanism, ObjectClass

    from hwsim.fixtures import load_people
    from hwsim.pkcs11 import MODULE, provision, softhsm_conf

    workdir = Path(f"/tmp/hwsim-bench-hsm-{os.getpid()}")
    infos = provision(workdir, list(load_people().professionals.values()))
    os.environ["SOFTHSM2_CONF"] = str(softhsm_conf(workdir))
    token = pkcs11.lib(str(MODULE)).get_token(token_label=infos[0].label)
    times = []
    try:
        with token.open(user_pin=infos[0].pin) as session:
            key = session.get_key(ObjectClass.PRIVATE_KEY, KeyType.RSA, label="CPS_PRIV_SIG")
            for _ in range(n):
                start = time.perf_counter()
                key.sign(b"x" * 512, mechanism=Mechanism.SHA256_RSA_PKCS)
                times.append(time.perf_counter() - start)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return {"SoftHSM sign RSA-2048 SHA256": times}


def run(client: Any, reader_names: list[str], apdus: int, events: int, sign: int) -> list[str]:
    results = apdu_round_trips(client, reader_names[0], apdus)
    results.update(event_latency(client, reader_names[1], events))
    if sign:
        results.update(softhsm_sign(sign))
    return [fmt(name, values) for name, values in results.items()]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--apdus", type=int, default=1000)
    parser.add_argument("--events", type=int, default=20)
    parser.add_argument("--sign", type=int, default=200)
    parser.add_argument(
        "--no-quickack",
        action="store_true",
        help="card without TCP_QUICKACK (shows the 44 ms gotcha)",
    )
    args = parser.parse_args()
    if args.no_quickack:
        os.environ["LGO_HWSIM_NO_QUICKACK"] = "1"  # read by the simulator process
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from hwsim.control import Client
    from hwsim.pcscd import PcscdLayout
    from hwsim.runtime import launch

    workdir = Path(f"/tmp/hwsim-bench-{os.getpid()}")
    os.environ["PCSCLITE_CSOCK_NAME"] = str(PcscdLayout(workdir).socket)  # before any PC/SC call
    started = time.perf_counter()
    launched = launch(workdir)
    print(
        f"simulator ready in {(time.perf_counter() - started) * 1000:.0f} ms "
        f"(isolation {launched.isolation})"
    )
    try:
        with Client(launched.control_socket) as client:
            names = [str(r["name"]) for r in client.status()["readers"]]
            for line in run(client, names, args.apdus, args.events, args.sign):
                print(line)
    finally:
        launched.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def test_bench_hwsim(hwsim: Any) -> None:
    """Short run inside the suite: prints figures, asserts nothing about time."""
    lines = run(hwsim.client, hwsim.reader_names, apdus=200, events=3, sign=0)
    print("\n" + "\n".join(lines))
    assert len(lines) == 5


if __name__ == "__main__":
    main()
