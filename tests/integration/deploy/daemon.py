"""A `lgo serve` process watched the way systemd would: ready when it sends READY=1."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path

import httpx

START_TIMEOUT_S = 90.0


def clean_env() -> dict[str, str]:
    """The test's environment without any lgo or systemd variable of the caller."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("LGO_", "NOTIFY_", "LISTEN_"))}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Daemon:
    """`lgo serve` on its own loopback port with a notify socket the test reads."""

    def __init__(self, lgo: Path, tmp: Path, env: dict[str, str], *args: str) -> None:
        self.port = free_port()
        notify_path = tmp / f"notify-{self.port}"
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(str(notify_path))
        full_env = {
            **env,
            "LGO_MODE": "bench",
            "LGO_API__PORT": str(self.port),
            "LGO_HARDWARE__PCSC_ENABLED": "false",
            "NOTIFY_SOCKET": str(notify_path),
        }
        self.process = subprocess.Popen(
            [str(lgo), "serve", *args],
            env=full_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def wait_ready(self) -> None:
        self.notify.settimeout(START_TIMEOUT_S)
        for _ in range(20):
            try:
                data = self.notify.recv(4096).decode()
            except TimeoutError:
                break
            if "READY=1" in data.splitlines():
                return
        self.kill()
        assert self.process.stderr is not None
        raise AssertionError("no READY=1: " + self.process.stderr.read().decode()[-3000:])

    def get(self, path: str, token: str) -> httpx.Response:
        return httpx.get(
            f"http://127.0.0.1:{self.port}{path}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=60)
        self.notify.close()
        # uvicorn re-raises the SIGTERM after its graceful shutdown; systemd counts that as clean.
        assert code in (0, -signal.SIGTERM)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=60)
        self.notify.close()
