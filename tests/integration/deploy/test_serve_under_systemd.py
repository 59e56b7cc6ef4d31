"""The real `lgo serve` process speaking to a stand-in for systemd.

systemd is not PID 1 here, so the test plays its part: it binds the API socket itself and passes it
as fd 3 with LISTEN_FDS/LISTEN_PID (exactly as lgo.socket would), exports NOTIFY_SOCKET pointing at
a datagram socket it reads, and sets WATCHDOG_USEC. Every wait is bounded and ends on a datagram or
on the process exiting, never on a fixed sleep.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.integration

LGO = str(Path(sys.executable).with_name("lgo"))
# What systemd does between fork and exec: the socket goes to fd 3 and LISTEN_PID names the
# process that will run lgo (exec keeps the pid).
ACTIVATE = """
import os, sys
fd = int(sys.argv[1])
os.dup2(fd, 3, inheritable=True)
if fd != 3:
    os.close(fd)
os.environ["LISTEN_PID"] = str(os.getpid())
os.execv(sys.argv[2], sys.argv[2:])
"""
WAIT_S = 30.0


@dataclass
class Supervisor:
    """What systemd would see of one service run."""

    notify: socket.socket
    process: subprocess.Popen[bytes]
    port: int
    state_dir: Path
    env: dict[str, str]
    messages: list[dict[str, str]] = field(default_factory=list)

    def next_message(self, timeout: float = WAIT_S) -> dict[str, str]:
        self.notify.settimeout(timeout)
        try:
            data = self.notify.recv(4096).decode()
        except TimeoutError:
            stderr = self._stderr_if_dead()
            raise AssertionError(f"no sd_notify datagram within {timeout}s{stderr}") from None
        message = dict(line.split("=", 1) for line in data.splitlines() if line)
        self.messages.append(message)
        return message

    def wait_for(self, key: str, value: str = "1", limit: int = 50) -> dict[str, str]:
        for _ in range(limit):
            message = self.next_message()
            if message.get(key) == value:
                return message
        raise AssertionError(f"{key}={value} never came; got {self.messages}")

    def _stderr_if_dead(self) -> str:
        if self.process.poll() is None:
            return ""
        assert self.process.stderr is not None
        tail = self.process.stderr.read().decode()[-2000:]
        return f"; lgo exited {self.process.returncode}: {tail}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def lgo(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [LGO, *args], env=self.env, capture_output=True, text=True, timeout=WAIT_S, check=True
        )


def _base_env(state_dir: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LGO_", "LISTEN_", "NOTIFY_"))}
    env.update(
        LGO_MODE="bench",
        LGO_STATE_DIR=str(state_dir),
        LGO_API__PORT=str(port),
        LGO_HARDWARE__PCSC_ENABLED="false",
        LGO_LOGGING__LEVEL="WARNING",
    )
    return env


def _start(tmp_path: Path, listener: socket.socket, port: int, **extra: str) -> Supervisor:
    state_dir = tmp_path / "state"
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify"))
    env = _base_env(state_dir, port)
    run_env = {
        **env,
        "NOTIFY_SOCKET": str(tmp_path / "notify"),
        "LISTEN_FDS": "1",
        "LISTEN_FDNAMES": "api",
        **extra,
    }
    fd = listener.fileno()
    process = subprocess.Popen(
        [sys.executable, "-c", ACTIVATE, str(fd), LGO, "serve", "--migrate"],
        env=run_env,
        pass_fds=(fd,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    return Supervisor(notify, process, port, state_dir, env)


@pytest.fixture
def listener() -> Iterator[tuple[socket.socket, int]]:
    sock = socket.create_server(("127.0.0.1", 0), backlog=16)
    yield sock, sock.getsockname()[1]
    sock.close()


@pytest.fixture
def service(tmp_path: Path, listener: tuple[socket.socket, int]) -> Iterator[Supervisor]:
    sock, port = listener
    supervisor = _start(tmp_path, sock, port, WATCHDOG_USEC="2000000")
    # systemd keeps its own copy of the socket; the test keeps it too, so only lgo serves it
    # as long as nobody here calls accept().
    yield supervisor
    if supervisor.process.poll() is None:
        supervisor.process.kill()
        supervisor.process.wait(timeout=WAIT_S)
    supervisor.notify.close()


def _applied_revisions(state_dir: Path) -> set[str]:
    with sqlite3.connect(state_dir / "lgo.sqlite3") as conn:
        return {row[0] for row in conn.execute("SELECT version_num FROM alembic_version")}


def test_ready_after_migrations_then_serves_passed_socket_and_pings(service: Supervisor) -> None:
    from lgo.store.migrate import expected_heads

    ready = service.wait_for("READY")
    # At READY time the empty database has been migrated to every head of the code.
    assert _applied_revisions(service.state_dir) == expected_heads()
    assert f"127.0.0.1:{service.port}" in ready.get("STATUS", "")

    # Requests are answered on the socket the "manager" created and passed as fd 3.
    anonymous = httpx.get(f"{service.url}/v1/health", timeout=WAIT_S)
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"].startswith("application/problem+json")
    token = service.lgo("counters", "add", "comptoir-test").stdout.strip()
    health = httpx.get(
        f"{service.url}/v1/health", headers={"Authorization": f"Bearer {token}"}, timeout=WAIT_S
    )
    assert health.status_code == 200

    # WATCHDOG_USEC=2s: pings come from the loop while the database is healthy.
    service.wait_for("WATCHDOG")
    service.wait_for("WATCHDOG")


def test_watchdog_stops_while_database_is_unhealthy(service: Supervisor) -> None:
    service.wait_for("READY")
    service.wait_for("WATCHDOG")
    revisions = _applied_revisions(service.state_dir)
    with sqlite3.connect(service.state_dir / "lgo.sqlite3") as conn:
        conn.execute("DELETE FROM alembic_version")

    degraded = service.wait_for("STATUS", "Service dégradé : contrôle de santé en échec")
    assert "WATCHDOG" not in degraded
    # While unhealthy, nothing but silence: a further datagram would be a ping (timeout 2 s,
    # interval 1 s), so two intervals without one show the pings stopped.
    service.notify.settimeout(2.5)
    with pytest.raises(TimeoutError):
        service.notify.recv(4096)

    with sqlite3.connect(service.state_dir / "lgo.sqlite3") as conn:
        conn.executemany("INSERT INTO alembic_version VALUES (?)", [(r,) for r in revisions])
    recovered = service.wait_for("WATCHDOG")
    assert recovered.get("STATUS") == "En service"


def test_sigterm_sends_stopping_and_exits_cleanly(service: Supervisor) -> None:
    service.wait_for("READY")
    service.process.send_signal(signal.SIGTERM)
    service.wait_for("STOPPING")
    # uvicorn re-raises the captured SIGTERM once its graceful shutdown is over; systemd counts
    # a death by SIGTERM (its own stop signal) as a clean stop, like exit code 0.
    assert service.process.wait(timeout=WAIT_S) in (0, -signal.SIGTERM)
    assert service.process.stderr is not None
    assert "Traceback" not in service.process.stderr.read().decode()


def test_passed_socket_on_another_port_than_configured_is_refused(
    tmp_path: Path, listener: tuple[socket.socket, int]
) -> None:
    sock, port = listener
    supervisor = _start(tmp_path, sock, port, LGO_API__PORT=str(port + 1 if port < 65535 else 1))
    try:
        assert supervisor.process.wait(timeout=WAIT_S) == 2
        assert supervisor.process.stderr is not None
        assert "api.port" in supervisor.process.stderr.read().decode()
        # It never claimed readiness.
        supervisor.notify.setblocking(False)
        with pytest.raises(BlockingIOError):
            supervisor.notify.recv(4096)
    finally:
        supervisor.notify.close()
