"""The simulator process: private pcscd + card host + scanners + control API.

`start(...)` (used by `hwsim up` and the test fixtures) launches `python -m hwsim.runtime` inside
`unshare --user --map-root-user --mount --net`: there it brings `lo` up, binds `<workdir>/run` over
/run, starts pcscd and holds the virtual cards as vpcd TCP clients. Nothing listens on the host
network. The outside world talks to it through two Unix sockets on the shared filesystem: pcscd's
(`<workdir>/run/pcscd/pcscd.comm`) and the control API (`<workdir>/control.sock`).

If user namespaces are refused, the plain fallback (root only, only when no system pcscd socket
exists, and only when asked for with `LGO_HWSIM_ISOLATION=plain`) runs pcscd on /run/pcscd with
vpcd listening on 0.0.0.0, ports 36300+; `status` says so. Never chosen silently: those ports are
open to the whole network.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from hwsim.cards import Card, Cps3Card, ErrorCard, MuteCard, Vitale1Card, Vitale2Card
from hwsim.errors import SimError
from hwsim.fixtures import People, load_people
from hwsim.pcsc_wait import wait_card_state
from hwsim.pcscd import PcscdLayout, PcscdProcess, ReaderSpec, die_with_parent
from hwsim.scanners import SerialScanner, WedgeScanner, wedge_available
from hwsim.vpcd import Faults, VpcdLink

log = logging.getLogger("hwsim.runtime")

SYSTEM_SOCKET = Path("/run/pcscd/pcscd.comm")
FALLBACK_BASE_PORT = 36300
CARD_KINDS = ("vitale", "vitale1", "cps", "mute", "error")


def default_workdir() -> Path:
    return Path(os.environ.get("LGO_HWSIM_DIR", "./.state/hwsim")).absolute()


@dataclass
class Slot:
    spec: ReaderSpec
    link: VpcdLink | None = None
    faults: Faults = field(default_factory=Faults)
    unplugged: bool = False
    last_event: str = "empty"

    def describe(self) -> dict[str, object]:
        card = self.link.card.describe() if self.link is not None else None
        return {
            "index": self.spec.index,
            "name": self.spec.name,
            "port": self.spec.port,
            "card": card,
            "apdus": self.link.stats.apdus if self.link is not None else 0,
            "faults": self.faults.as_dict(),
            "unplugged": self.unplugged,
            "last_event": self.last_event,
        }


class Simulator:
    """Card host: readers (vpcd slots), cards by profile, faults, scanners, pcscd lifecycle."""

    def __init__(
        self,
        layout: PcscdLayout,
        isolation: str,
        people: People | None = None,
        pcsc_socket: Path | None = None,
    ) -> None:
        self.layout = layout
        self.isolation = isolation
        self.people = people or load_people()
        self.pcscd = PcscdProcess(layout, pcsc_socket)
        self.slots = [Slot(spec) for spec in layout.reader_specs()]
        # A professional's CPS3 and CPS4 are two cards (own ATR, keys and PIN counter).
        self.cps_cards: dict[tuple[str, bool], Cps3Card] = {}
        self.lock = threading.RLock()
        self.scanners: dict[str, SerialScanner | WedgeScanner] = {}
        self.stopped = threading.Event()

    # lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        self.pcscd.start()
        serial = SerialScanner(self.layout.workdir / "scanner-serial")
        self.scanners["serial"] = serial
        if wedge_available():
            self.scanners["wedge"] = WedgeScanner()

    def stop(self) -> None:
        """Remove the cards, close the scanners, stop pcscd (idempotent)."""
        if self.stopped.is_set():
            return
        with self.lock:
            for slot in self.slots:
                self._unlink(slot, "removed")
            for scanner in self.scanners.values():
                scanner.close()
            self.pcscd.stop()
        self.stopped.set()

    # cards ---------------------------------------------------------------------------------
    def _slot(self, reader: int) -> Slot:
        if not 0 <= reader < len(self.slots):
            raise SimError(404, f"lecteur {reader} inconnu (0..{len(self.slots) - 1})")
        return self.slots[reader]

    def make_card(self, kind: str, profile: str, cps4: bool = False) -> Card:
        if kind == "vitale":
            found = self.people.vitale.get(profile)
            if found is None:
                raise SimError(404, f"profil Vitale inconnu : {profile}")
            return Vitale2Card(found)
        if kind == "cps":
            return self._cps(profile, cps4)
        if kind == "vitale1":
            return Vitale1Card()
        if kind == "mute":
            return MuteCard()
        if kind == "error":
            return ErrorCard()
        raise SimError(400, f"type de carte inconnu : {kind} ({', '.join(CARD_KINDS)})")

    def _cps(self, profile: str, cps4: bool) -> Cps3Card:
        pro = self.people.professionals.get(profile)
        if pro is None:
            raise SimError(404, f"professionnel inconnu : {profile}")
        card = self.cps_cards.get((profile, cps4))
        if card is None:  # the PIN counter survives removal, like a real card
            card = self.cps_cards[(profile, cps4)] = Cps3Card(pro, cps4=cps4)
        return card

    def insert(self, kind: str, profile: str, reader: int, cps4: bool = False) -> dict[str, object]:
        with self.lock:
            slot = self._slot(reader)
            if slot.unplugged:
                raise SimError(409, f"lecteur {reader} débranché")
            if slot.link is not None:
                raise SimError(409, f"lecteur {reader} occupé : retirer la carte d'abord")
            card = self.make_card(kind, profile, cps4)
            card.power_off()
            link = VpcdLink(card, slot.spec.port, faults=slot.faults, on_closed=self._closed)
            link.connect()
            slot.link = link
            slot.last_event = "inserted"
            log.info("card_inserted reader=%s kind=%s", reader, kind)
            return slot.describe()

    def remove(self, reader: int) -> dict[str, object]:
        with self.lock:
            slot = self._slot(reader)
            if slot.link is None:
                raise SimError(409, f"lecteur {reader} vide")
            self._unlink(slot, "removed")
            return slot.describe()

    def swap(self, kind: str, profile: str, reader: int, cps4: bool = False) -> dict[str, object]:
        with self.lock:
            slot = self._slot(reader)
            if slot.link is not None:
                self._unlink(slot, "removed")
                # A person's hands take seconds: the new card goes in only once pcscd has seen
                # the old one out, or the daemon would never learn that the card changed.
                wait_card_state(slot.spec.name, present=False)
            return self.insert(kind, profile, reader, cps4)

    def _unlink(self, slot: Slot, event: str) -> None:
        link, slot.link = slot.link, None
        if link is not None:
            link.close()
            slot.last_event = event

    def _closed(self, link: VpcdLink, reason: str) -> None:
        """vpcd dropped a card (pcscd stopped, ejected it, or a fault fired)."""
        for slot in self.slots:
            if slot.link is link and reason != "removed":
                slot.link = None
                slot.last_event = reason
                log.info("card_dropped reader=%s reason=%s", slot.spec.index, reason)

    def reset(self) -> None:
        """Remove every card, clear faults, replug readers, forget CPS PIN counters (per-test
        cleanup)."""
        with self.lock:
            for slot in self.slots:
                self._unlink(slot, "removed")
                slot.faults.clear()
                slot.unplugged = False
                slot.last_event = "empty"
            self.cps_cards.clear()
            if self.pcscd.unplugged:  # a hard unplug left a reader pair out of pcscd
                self.pcscd.unplugged = frozenset()
                self.pcscd.restart()

    # faults --------------------------------------------------------------------------------
    def set_fault(self, reader: int, **changes: object) -> dict[str, object]:
        with self.lock:
            slot = self._slot(reader)
            for key, value in changes.items():
                if not hasattr(slot.faults, key):
                    raise SimError(400, f"panne inconnue : {key}")
                setattr(slot.faults, key, value)
            return slot.describe()

    def clear_faults(self, reader: int | None = None) -> None:
        with self.lock:
            for slot in self.slots:
                if reader is None or slot.spec.index == reader:
                    slot.faults.clear()

    def restart_pcscd(self) -> dict[str, object]:
        """Restart pcscd; cards still 'in' a reader are inserted again, as a real reader would."""
        with self.lock:
            present = [(s, s.link.card) for s in self.slots if s.link is not None]
            for slot, _ in present:
                self._unlink(slot, "removed")
            self.pcscd.restart()
            for slot, card in present:
                link = VpcdLink(card, slot.spec.port, faults=slot.faults, on_closed=self._closed)
                link.connect()
                slot.link = link
                slot.last_event = "inserted"
            return {"pid": self.pcscd.pid, "starts": self.pcscd.starts}

    def set_plugged(self, reader: int, plugged: bool, hard: bool = False) -> dict[str, object]:
        """Unplug or replug a reader.

        vpcd readers are static in pcscd 1.9.9 (a rescan adds readers, never removes one), so a
        soft unplug drops the card link and refuses insertions, which a client sees as the card
        gone. `hard=True` also restarts pcscd without the reader's vpcd entry (both readers of the
        pair vanish from the list, other readers' cards are inserted again); replug restarts it
        with the entry back.
        """
        with self.lock:
            slot = self._slot(reader)
            entry = reader // 2
            whole_pair = hard or entry in self.pcscd.unplugged
            pair = [s for s in self.slots if s.spec.index // 2 == entry] if whole_pair else [slot]
            for s in pair:
                if not plugged:
                    self._unlink(s, "unplugged")
                s.unplugged = not plugged
            if hard and not plugged:
                self.pcscd.unplugged = self.pcscd.unplugged | {entry}
                self.restart_pcscd()
            elif entry in self.pcscd.unplugged and plugged:
                # pcscd 1.9.9 ignores a SIGUSR1 rescan for vpcd entries: restart it with the entry
                self.pcscd.unplugged = self.pcscd.unplugged - {entry}
                self.restart_pcscd()
            return slot.describe()

    # scanners ------------------------------------------------------------------------------
    def scan(self, text: str, scanner: str = "serial", aim: str | None = None) -> dict[str, object]:
        found = self.scanners.get(scanner)
        if found is None:
            raise SimError(404, f"scanner indisponible : {scanner}")
        found.scan(text, aim)
        return found.describe()

    # status --------------------------------------------------------------------------------
    def status(self) -> dict[str, object]:
        with self.lock:
            return {
                "isolation": self.isolation,
                "workdir": str(self.layout.workdir),
                "pcsc_socket": str(self.pcscd.socket_path),
                "pcscd": {
                    "running": self.pcscd.running,
                    "pid": self.pcscd.pid,
                    "starts": self.pcscd.starts,
                },
                "readers": [slot.describe() for slot in self.slots],
                "scanners": [s.describe() for s in self.scanners.values()],
                "tokens": _tokens(self.layout.workdir),
            }


def _tokens(workdir: Path) -> list[dict[str, object]]:
    info = workdir / "softhsm" / "tokens.json"
    if not info.exists():
        return []
    data = json.loads(info.read_text())
    return list(data) if isinstance(data, list) else []


# ------------------------------------------------------------------------------------------
# inside the namespace
# ------------------------------------------------------------------------------------------
SETUP_COMMAND_TIMEOUT_S = 10.0


def _setup_namespace(workdir: Path) -> None:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True, timeout=SETUP_COMMAND_TIMEOUT_S)
    run = workdir / "run"
    run.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["mount", "--bind", str(run), "/run"], check=True, timeout=SETUP_COMMAND_TIMEOUT_S
    )


def serve(workdir: Path, readers: int, isolation: str) -> None:
    """Entry point of the simulator process (inside the namespace in netns mode)."""
    from hwsim.control import serve_control  # uvicorn/fastapi only in this process

    logging.basicConfig(
        filename=workdir / "hwsim.log",
        level=logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    if isolation == "plain" and os.environ.get("LGO_HWSIM_ISOLATION") != "plain":
        raise SimError(500, PLAIN_REFUSED)  # vpcd would listen on 0.0.0.0: only when asked
    if isolation == "netns":
        _setup_namespace(workdir)
        layout = PcscdLayout(workdir, readers)
        sim = Simulator(layout, isolation)
    else:
        layout = PcscdLayout(workdir, readers, base_port=FALLBACK_BASE_PORT)
        sim = Simulator(layout, isolation, pcsc_socket=SYSTEM_SOCKET)
    sim.start()
    try:
        serve_control(sim, workdir / "control.sock")
    finally:
        sim.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m hwsim.runtime")
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--readers", type=int, default=2)
    parser.add_argument("--isolation", choices=("netns", "plain"), default="netns")
    args = parser.parse_args(argv)
    serve(args.workdir.absolute(), args.readers, args.isolation)


# ------------------------------------------------------------------------------------------
# outside: launching and stopping the simulator process
# ------------------------------------------------------------------------------------------
PLAIN_REFUSED = (
    "Espaces de noms utilisateur refusés (unshare --user) : le simulateur ne peut pas isoler ses "
    "lecteurs virtuels. Le mode de repli « plain » fait écouter vpcd sur toutes les interfaces "
    "(0.0.0.0, ports 36300+) : le demander explicitement avec LGO_HWSIM_ISOLATION=plain, sur un "
    "poste sans réseau partagé."
)


def detect_isolation() -> str:
    """'netns' when unprivileged user namespaces work, else an error in French.

    The 'plain' fallback (vpcd on 0.0.0.0) is only used when `LGO_HWSIM_ISOLATION=plain` asks for
    it, and still refuses a live system pcscd; `LGO_HWSIM_ISOLATION=netns` forbids it too.
    """
    if os.environ.get("LGO_HWSIM_ISOLATION", "") == "plain":
        return _plain_or_fail()
    if shutil.which("unshare") and shutil.which("ip"):
        probe = subprocess.run(
            ["unshare", "--user", "--map-root-user", "--mount", "--net", "true"],
            capture_output=True,
            timeout=10,
            check=False,
        )
        if probe.returncode == 0:
            return "netns"
    raise SimError(500, PLAIN_REFUSED)


def _plain_or_fail() -> str:
    """The plain fallback: a pcscd on /run/pcscd, only as root and only with no system pcscd."""
    if os.geteuid() == 0 and not SYSTEM_SOCKET.exists():
        return "plain"
    raise SimError(
        500, "Mode « plain » impossible : il faut être root et qu'aucun pcscd système ne tourne."
    )


@dataclass
class Launched:
    proc: subprocess.Popen[bytes]
    workdir: Path
    isolation: str

    @property
    def control_socket(self) -> Path:
        return self.workdir / "control.sock"

    @property
    def pcsc_socket(self) -> Path:
        if self.isolation == "plain":
            return SYSTEM_SOCKET
        return PcscdLayout(self.workdir).socket

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)


def launch(
    workdir: Path, readers: int = 2, timeout: float = 20.0, detach: bool = False
) -> Launched:
    """Start the simulator process and wait until its control API answers.

    Unless `detach`, the simulator gets SIGTERM when the launching process dies (a test run
    killed by a timeout leaves no simulator or pcscd behind). PR_SET_PDEATHSIG follows the
    launching *thread*: call this from the main thread or one that outlives the simulator.
    """
    workdir = workdir.absolute()
    workdir.mkdir(parents=True, exist_ok=True)
    sock = PcscdLayout(workdir).socket
    if len(str(sock)) >= 100:
        raise SimError(400, f"chemin de travail trop long pour un socket Unix : {sock}")
    (workdir / "control.sock").unlink(missing_ok=True)
    isolation = detect_isolation()
    cmd = [
        sys.executable,
        "-m",
        "hwsim.runtime",
        "--workdir",
        str(workdir),
        "--readers",
        str(readers),
        "--isolation",
        isolation,
    ]
    if isolation == "netns":
        cmd = ["unshare", "--user", "--map-root-user", "--mount", "--net", "--", *cmd]
    out = (workdir / "runtime.out").open("ab")
    proc = subprocess.Popen(
        cmd,
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # Ctrl-C in a terminal goes to the launcher, which stops us
        preexec_fn=None if detach else die_with_parent,
    )
    out.close()
    launched = Launched(proc, workdir, isolation)
    _wait_ready(launched, timeout)
    return launched


def _wait_ready(launched: Launched, timeout: float) -> None:
    from hwsim.control import Client

    deadline = time.monotonic() + timeout
    client = Client(launched.control_socket)
    try:
        while True:
            if launched.proc.poll() is not None:
                tail = (launched.workdir / "runtime.out").read_text(errors="replace")[-2000:]
                raise SimError(500, f"le simulateur s'est arrêté au démarrage :\n{tail}")
            if launched.control_socket.is_socket() and client.ping():
                return
            if time.monotonic() > deadline:
                launched.stop()
                raise SimError(500, "le simulateur n'a pas répondu à temps")
            time.sleep(0.02)  # waiting for another process's socket: nothing to await
    finally:
        client.close()


if __name__ == "__main__":
    # run the imported module, not __main__: classes (SimError...) must be hwsim.runtime's own
    from hwsim import runtime

    runtime.main()
