"""``GET /v1/events`` on a real ``lgo serve`` process stays open while idle (issue #17 item 7): a
60 s idle stream is still open, received ``: keep-alive`` comments, still delivers the next event,
and resumes with ``Last-Event-ID``; the daemon's log has no error and no traceback."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.foundation.test_cli_serve import LGO, _env, _free_port, _wait_for, run

pytestmark = [pytest.mark.integration, pytest.mark.e2e]
IDLE_S = 60.0


class StreamReader(threading.Thread):
    """Reads the SSE stream line by line in the background (the test waits on conditions)."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.url, self.headers = url, headers
        self.lines: list[str] = []
        self.closed = threading.Event()
        self.error: BaseException | None = None
        self.lock = threading.Lock()

    def run(self) -> None:
        try:
            # The read timeout is above the 15 s keep-alive period: a silent stream fails it.
            with httpx.stream(
                "GET", self.url, headers=self.headers, timeout=httpx.Timeout(5, read=25)
            ) as response:
                assert response.status_code == 200
                for line in response.iter_lines():
                    with self.lock:
                        self.lines.append(line)
        except BaseException as exc:
            self.error = exc
        finally:
            self.closed.set()

    def snapshot(self) -> list[str]:
        with self.lock:
            return list(self.lines)

    def wait_for(self, text: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.closed.is_set():
            if any(text in line for line in self.snapshot()):
                return True
            time.sleep(0.2)
        return any(text in line for line in self.snapshot())


def test_idle_stream_stays_open_with_keep_alives_and_no_error_logged(tmp_path: Path) -> None:
    port = _free_port()
    assert run(tmp_path, "migrate").returncode == 0
    token = run(tmp_path, "counters", "add", "comptoir-1").stdout.strip()
    headers = {"Authorization": f"Bearer {token}"}
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [*LGO, "serve"],
        env=_env(tmp_path, LGO_API__PORT=str(port)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(f"{base}/v1/health", headers, proc)
        reader = StreamReader(f"{base}/v1/events", headers)
        reader.start()
        assert reader.wait_for(": connected", 10)
        started = time.monotonic()
        # Idle for 60 s: the stream must not close (it used to after 15 s).
        assert not reader.closed.wait(IDLE_S), f"stream closed: {reader.error!r}"
        idle = time.monotonic() - started
        keep_alives = [line for line in reader.snapshot() if line == ": keep-alive"]
        assert idle >= IDLE_S and len(keep_alives) >= 3, (idle, reader.snapshot())
        # Still live: the next event arrives on the same stream.
        scanned = httpx.post(
            f"{base}/v1/scans", headers=headers, timeout=10, json={"payload": "3400930000001"}
        )
        assert scanned.status_code in (200, 201), scanned.text
        assert reader.wait_for("event: scan.received", 10)
        event_id = next(
            line.split(": ", 1)[1] for line in reader.snapshot() if line.startswith("id: ")
        )
        # Resume: Last-Event-ID of an earlier id replays what came after it.
        with httpx.stream(
            "GET",
            f"{base}/v1/events",
            timeout=httpx.Timeout(5, read=10),
            headers={**headers, "Last-Event-ID": str(int(event_id) - 1)},
        ) as again:
            lines = again.iter_lines()
            received = [next(lines) for _ in range(4)]
        assert f"id: {event_id}" in received and "event: scan.received" in received
    finally:
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=30)
    # The stopping daemon ended the open stream cleanly (not cut at the graceful-shutdown timeout).
    assert reader.closed.wait(10) and reader.error is None, repr(reader.error)
    log = stdout + stderr
    for bad in (
        "Exception in ASGI application",
        "Traceback",
        "StopAsyncIteration",
        '"level": "error"',
        "[error",
    ):
        assert bad not in log, log[-3000:]
