"""A private pcscd with vpcd readers, for tests, benches and the demo.

pcscd 1.9.9 always binds /run/pcscd/pcscd.comm; only the client honours PCSCLITE_CSOCK_NAME. So
the private daemon runs in its own user+mount+net namespace (set up by hwsim.runtime) with
`<workdir>/run` bound over /run: its socket appears at `<workdir>/run/pcscd/pcscd.comm` on the
shared filesystem, and the vpcd ports (bound on 0.0.0.0 by the driver) exist only inside the
namespace. This module writes the private reader.conf.d and runs pcscd; it assumes it is already
inside that namespace (or in the plain-root fallback, only with `LGO_HWSIM_ISOLATION=plain`:
vpcd's ports are then open on every interface).

Readers come two per reader.conf entry (vpcd has 2 slots). A second entry must point at a *copy*
of the driver under another file name, otherwise both entries share the driver's static state.
"""

from __future__ import annotations

import contextlib
import ctypes
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

VPCD_DRIVER = Path("/usr/lib/pcsc/drivers/serial/libifdvpcd.so")
PCSCD = "pcscd"
DEFAULT_BASE_PORT = 35963
FRIENDLY_NAMES = ("HWSIM PCD", "HWSIM PCD B")
MAX_READERS = 4
_PR_SET_PDEATHSIG = 1


class PcscdError(RuntimeError):
    """The private pcscd could not be started."""


@dataclass(frozen=True)
class ReaderSpec:
    index: int
    port: int
    name: str  # the name pcscd gives it (friendly name + reader number + slot)


@dataclass(frozen=True)
class PcscdLayout:
    """Where everything of one private pcscd lives under the workdir."""

    workdir: Path
    readers: int = 2
    base_port: int = DEFAULT_BASE_PORT

    @property
    def run_dir(self) -> Path:
        return self.workdir / "run"

    @property
    def socket(self) -> Path:
        """The client socket path (PCSCLITE_CSOCK_NAME), seen from outside the namespace."""
        return self.run_dir / "pcscd" / "pcscd.comm"

    @property
    def conf_dir(self) -> Path:
        return self.workdir / "reader.conf.d"

    @property
    def drivers_dir(self) -> Path:
        return self.workdir / "drivers"

    @property
    def log_file(self) -> Path:
        return self.workdir / "pcscd.log"

    def reader_specs(self) -> list[ReaderSpec]:
        specs = []
        for index in range(self.entries * 2):
            entry, slot = divmod(index, 2)
            # pcscd numbers readers per friendly name: each entry has its own name, so always 00
            name = f"{FRIENDLY_NAMES[entry]} 00 {slot:02X}"
            specs.append(ReaderSpec(index, self.base_port + index, name))
        return specs

    @property
    def entries(self) -> int:
        return (min(max(self.readers, 1), MAX_READERS) + 1) // 2


def write_reader_conf(layout: PcscdLayout, unplugged: frozenset[int] = frozenset()) -> None:
    """Write the private reader.conf.d: one vpcd entry per pair of readers, minus `unplugged`."""
    layout.conf_dir.mkdir(parents=True, exist_ok=True)
    for old in layout.conf_dir.iterdir():
        old.unlink()
    for entry in range(layout.entries):
        if entry in unplugged:
            continue
        port = layout.base_port + 2 * entry
        driver = _driver_for(layout, entry)
        text = (
            f'FRIENDLYNAME "{FRIENDLY_NAMES[entry]}"\n'
            f"DEVICENAME   /dev/null:{port}\n"
            f"LIBPATH      {driver}\n"
            f"CHANNELID    {port}\n"
        )
        (layout.conf_dir / f"vpcd-{entry}").write_text(text)


def _driver_for(layout: PcscdLayout, entry: int) -> Path:
    if entry == 0:
        return VPCD_DRIVER
    layout.drivers_dir.mkdir(parents=True, exist_ok=True)
    copy = layout.drivers_dir / f"libifdvpcd-{entry}.so"
    if not copy.exists():
        shutil.copy2(VPCD_DRIVER.resolve(), copy)
    return copy


def die_with_parent() -> None:
    """Child pre-exec hook: SIGTERM the child if the simulator dies (no orphan pcscd)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class PcscdProcess:
    """Start, stop and restart pcscd with the private reader.conf.d."""

    def __init__(self, layout: PcscdLayout, socket_path: Path | None = None) -> None:
        self.layout = layout
        self.socket_path = socket_path or layout.socket
        # only ever delete a stale socket in our private dir, never the system one
        self.private_socket = socket_path is None
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.unplugged: frozenset[int] = frozenset()  # reader.conf entries left out

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def start(self, timeout: float = 10.0) -> None:
        if not VPCD_DRIVER.exists():
            raise PcscdError(f"vpcd driver missing: {VPCD_DRIVER} (apt install vsmartcard-vpcd)")
        write_reader_conf(self.layout, self.unplugged)
        if self.private_socket:
            with contextlib.suppress(FileNotFoundError):
                self.socket_path.unlink()  # stale socket from a killed run
        log = self.layout.log_file.open("ab")
        self.proc = subprocess.Popen(
            [PCSCD, "--foreground", "--error", "-c", str(self.layout.conf_dir)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=die_with_parent,
        )
        log.close()
        self.starts += 1
        self._wait_socket(timeout)

    def _wait_socket(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self.socket_path.is_socket():
            if self.proc is not None and self.proc.poll() is not None:
                raise PcscdError(
                    f"pcscd exited with {self.proc.returncode}; see {self.layout.log_file}"
                )
            if time.monotonic() > deadline:
                raise PcscdError("pcscd socket did not appear")
            time.sleep(0.01)  # polling a file appearing: no event to await here

    def stop(self, timeout: float = 5.0) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)

    def restart(self) -> None:
        self.stop()
        self.start()
