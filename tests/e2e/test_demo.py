"""``./dev demo`` as a technician uses it: token printed, health answers, Ctrl-C stops everything."""

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _children_alive(state: Path) -> list[str]:
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if str(state) in line and "ps -eo" not in line]


def _wait_for(condition: Callable[[], bool], deadline: float) -> bool:
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def _mss_offers_starttls(stdout: Any, deadline: float) -> None:
    """The demo prints the MSSanté simulator's port (hwsim up); it answers EHLO with STARTTLS."""
    import smtplib

    found = None
    while found is None and time.monotonic() < deadline:
        found = re.search(r"smtp://127\.0\.0\.1:(\d+)", stdout.readline())
    assert found, "no MSSanté simulator printed"
    with smtplib.SMTP("127.0.0.1", int(found.group(1)), timeout=10) as smtp:
        smtp.ehlo()
        assert smtp.has_extn("starttls")


def _doctor_is_green_on_the_bench(state: Path) -> None:
    """`lgo doctor` with the bench's settings (the env file the demo writes and prints): no red
    line; what a bench cannot have (systemd units) is information."""
    import shlex

    settings = dict(
        line.split("=", 1) for line in (state / "demo" / "lgo.env").read_text().splitlines()
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LGO_", "PCSCLITE", "SOFTHSM"))}
    env.update({k: shlex.split(v)[0] for k, v in settings.items()}, COLUMNS="250")
    done = subprocess.run(
        [sys.executable, "-m", "lgo", "doctor"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("│")]
    assert not [row for row in rows if "KO" in row.split("│")[1]], done.stdout
    units = next(row for row in rows if "unités systemd" in row)
    assert "INFO" in units
    for name in ("e-prescription", "INSi", "DMP", "Pro Santé Connect", "MSSanté"):
        assert any(name in row and "OK" in row for row in rows), (name, done.stdout)


@pytest.mark.e2e
@pytest.mark.integration
def test_demo_serves_health_with_printed_token_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    state = tmp_path / "bench"
    port, national_port = _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LGO_", "PCSCLITE", "SOFTHSM"))}
    proc = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "tools" / "demo.py"),
            "--port",
            str(port),
            "--national-port",
            str(national_port),
            "--state",
            str(state),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    token = None
    try:
        deadline = time.monotonic() + 90
        assert proc.stdout is not None
        while token is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line and proc.poll() is not None:
                raise AssertionError("demo exited before printing a token")
            found = re.search(r"#token=(lgo_[A-Za-z0-9_-]+)", line)
            token = found.group(1) if found else None
        assert token, "no token printed"
        headers = {"Authorization": f"Bearer {token}"}
        health = None
        while time.monotonic() < deadline:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/v1/health", headers=headers, timeout=3)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert health is not None and health.status_code == 200
        assert health.json()["components"]["database"]["ok"] is True
        # The bench's virtual readers, through pcscd: the daemon lists them once its reader
        # watcher has seen them, which may come after /v1/health answers on a loaded machine.
        assert _wait_for(
            lambda: (
                len(
                    httpx.get(
                        f"http://127.0.0.1:{port}/v1/readers", headers=headers, timeout=5
                    ).json()["readers"]
                )
                == 2
            ),
            deadline,
        )
        # the sample BDPM files were imported before `lgo serve`
        assert health.json()["components"]["catalog"]["detail"] == "13 product(s)"
        _mss_offers_starttls(proc.stdout, deadline)
        _doctor_is_green_on_the_bench(state)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)
    assert proc.returncode == 0
    # daemon, pcscd, card host, simulator: all stopped (each exits on its own once signalled)
    assert _wait_for(lambda: _children_alive(state) == [], time.monotonic() + 30), _children_alive(
        state
    )
