"""The ``lgo`` command as a technician runs it, and ``lgo serve`` as a real process."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

LGO = [sys.executable, "-m", "lgo"]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LGO_")}
    env.update(
        LGO_MODE="bench",
        LGO_STATE_DIR=str(tmp_path / "state"),
        LGO_HARDWARE__PCSC_ENABLED="false",
        LGO_NATIONAL__BASE_URL="http://127.0.0.1:9",
        LGO_LOGGING__JSON="true",
    )
    env.update(extra)
    return env


def run(tmp_path: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*LGO, *args], env=_env(tmp_path, **extra), capture_output=True, text=True, timeout=60
    )


def test_version() -> None:
    from lgo import __version__

    out = subprocess.run([*LGO, "--version"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and __version__ in out.stdout


def test_counters_lifecycle(tmp_path: Path) -> None:
    assert run(tmp_path, "counters", "list").returncode == 3  # not migrated yet: says so
    assert run(tmp_path, "migrate").returncode == 0
    added = run(tmp_path, "counters", "add", "comptoir-1")
    assert added.returncode == 0
    token = added.stdout.strip()
    assert token.startswith("lgo_") and len(token) > 40
    listing = run(tmp_path, "counters", "list")
    assert "comptoir-1" in listing.stdout and token not in listing.stdout
    assert run(tmp_path, "counters", "add", "comptoir-1").returncode == 1  # name taken
    assert run(tmp_path, "counters", "add", "bad name!").returncode == 1
    assert run(tmp_path, "counters", "revoke", "comptoir-1").returncode == 0
    assert run(tmp_path, "counters", "revoke", "absent").returncode == 1


def test_invalid_configuration_is_explained(tmp_path: Path) -> None:
    out = run(tmp_path, "migrate", LGO_API__HOST="0.0.0.0")
    assert out.returncode == 2
    assert "api" in out.stderr and "boucle locale" in out.stderr


def test_doctor_reports_each_check_and_fails_when_one_is_red(tmp_path: Path) -> None:
    run(tmp_path, "migrate")
    out = run(tmp_path, "doctor")
    assert out.returncode == 1  # national endpoint unreachable, no PKCS#11 module
    assert "base de données" in out.stdout and "OK" in out.stdout
    assert "service national" in out.stdout and "KO" in out.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(url: str, headers: dict[str, str], proc: subprocess.Popen[str]) -> httpx.Response:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"lgo serve exited: {proc.stderr.read() if proc.stderr else ''}")
        try:
            return httpx.get(url, headers=headers, timeout=2)
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("lgo serve did not answer within 30 s")


def test_serve_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    out = run(tmp_path, "serve")
    assert out.returncode == 3 and "lgo migrate" in out.stderr


@pytest.mark.e2e
def test_serve_answers_health_on_loopback_and_stops_on_sigint(tmp_path: Path) -> None:
    port = _free_port()
    run(tmp_path, "migrate")
    token = run(tmp_path, "counters", "add", "c").stdout.strip()
    proc = subprocess.Popen(
        [*LGO, "serve"],
        env=_env(tmp_path, LGO_API__PORT=str(port)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        response = _wait_for(
            f"http://127.0.0.1:{port}/v1/health", {"Authorization": f"Bearer {token}"}, proc
        )
        assert response.status_code == 200 and response.json()["status"] == "ok"
        with pytest.raises(httpx.TransportError):  # nothing listens beyond loopback
            host_ip = socket.gethostbyname(socket.gethostname())
            if host_ip.startswith("127."):
                raise httpx.ConnectError("only loopback on this machine")
            httpx.get(f"http://{host_ip}:{port}/v1/health", timeout=2)
    finally:
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=20)
    # uvicorn re-raises the caught SIGINT after a clean shutdown: 130 is the shell convention.
    assert proc.returncode in (0, 130)
    assert "Traceback" not in stderr
    assert token not in stderr  # the token never reaches a log line
