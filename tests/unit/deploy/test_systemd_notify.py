"""sd_notify, socket activation and watchdog against a real datagram socket (no systemd needed)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from lgo.runtime import systemd


@pytest.fixture
def notify_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    """A datagram socket standing in for systemd's, exported as NOTIFY_SOCKET."""
    path = tmp_path / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(2)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    yield sock
    sock.close()


def received(sock: socket.socket) -> dict[str, str]:
    data = sock.recv(4096).decode()
    assert data.endswith("\n")
    return dict(line.split("=", 1) for line in data.splitlines())


def nothing_waiting(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        sock.recv(4096)
    except BlockingIOError:
        return True
    finally:
        sock.settimeout(2)
    return False


def test_ready_sends_ready_and_status(notify_socket: socket.socket) -> None:
    assert systemd.ready("prêt") is True
    assert received(notify_socket) == {"READY": "1", "STATUS": "prêt"}


def test_notify_sends_every_field_in_one_datagram(notify_socket: socket.socket) -> None:
    assert systemd.notify(STATUS="migrations", MAINPID=os.getpid()) is True
    assert received(notify_socket) == {"STATUS": "migrations", "MAINPID": str(os.getpid())}


def test_stopping(notify_socket: socket.socket) -> None:
    assert systemd.stopping() is True
    assert received(notify_socket) == {"STOPPING": "1"}


def test_abstract_namespace_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"lgo-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(2)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert systemd.notify(WATCHDOG=1) is True
        assert received(sock) == {"WATCHDOG": "1"}


@pytest.mark.parametrize("value", [None, "", "relative/path", "vsock:2:1234"])
def test_without_systemd_nothing_is_sent(
    monkeypatch: pytest.MonkeyPatch, value: str | None
) -> None:
    if value is None:
        monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    else:
        monkeypatch.setenv("NOTIFY_SOCKET", value)
    assert systemd.ready() is False


def test_vanished_manager_is_reported_not_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "gone"))
    assert systemd.notify(READY=1) is False


@pytest.mark.parametrize("fields", [{"ready": 1}, {"STATUS": "two\nlines"}, {"A-B": 1}])
def test_malformed_fields_are_refused(fields: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        systemd.format_message(fields)


def test_booleans_are_sent_as_digits() -> None:
    assert systemd.format_message({"READY": True}) == b"READY=1\n"


# --- socket activation -------------------------------------------------------------------------


def _pass_fd3(monkeypatch: pytest.MonkeyPatch, sock: socket.socket, pid: int) -> None:
    """Place `sock` at fd 3 the way systemd does, with the activation variables."""
    monkeypatch.setenv("LISTEN_PID", str(pid))
    monkeypatch.setenv("LISTEN_FDS", "1")
    monkeypatch.setenv("LISTEN_FDNAMES", "api")
    os.dup2(sock.fileno(), systemd.SD_LISTEN_FDS_START)


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    sock = socket.create_server(("127.0.0.1", 0))
    yield sock
    sock.close()


@pytest.fixture
def fd3_saved() -> Iterator[None]:
    """Keep whatever the test process has at fd 3 and put it back afterwards."""
    try:
        saved: int | None = os.dup(systemd.SD_LISTEN_FDS_START)
    except OSError:
        saved = None
    yield
    if saved is None:
        with contextlib.suppress(OSError):
            os.close(systemd.SD_LISTEN_FDS_START)
    else:
        os.dup2(saved, systemd.SD_LISTEN_FDS_START)
        os.close(saved)


@pytest.mark.usefixtures("fd3_saved")
def test_listen_fds_takes_fd3_and_clears_environment(
    monkeypatch: pytest.MonkeyPatch, listener: socket.socket
) -> None:
    _pass_fd3(monkeypatch, listener, os.getpid())
    passed = systemd.listen_fds_with_names()
    assert [(name, sock.fileno()) for name, sock in passed] == [("api", 3)]
    _name, sock = passed[0]
    assert sock.getsockname() == listener.getsockname()
    assert sock.get_inheritable() is False
    assert "LISTEN_FDS" not in os.environ and "LISTEN_PID" not in os.environ
    # A second call finds nothing: the descriptors are owned once.
    assert systemd.listen_fds() == []
    # The passed socket really accepts connections.
    with socket.create_connection(listener.getsockname(), timeout=2):
        conn, _ = sock.accept()
        conn.close()
    sock.detach()  # fd 3 is restored by the fixture


@pytest.mark.usefixtures("fd3_saved")
def test_listen_fds_ignores_variables_meant_for_another_process(
    monkeypatch: pytest.MonkeyPatch, listener: socket.socket
) -> None:
    _pass_fd3(monkeypatch, listener, os.getpid() + 1)
    assert systemd.listen_fds(unset_environment=False) == []


def test_listen_fds_without_activation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LISTEN_FDS", raising=False)
    monkeypatch.delenv("LISTEN_PID", raising=False)
    assert systemd.listen_fds() == []


# --- watchdog ----------------------------------------------------------------------------------


def test_watchdog_period_from_environment() -> None:
    pid = str(os.getpid())
    assert systemd.watchdog_period({"WATCHDOG_USEC": "30000000"}) == 30.0
    assert systemd.watchdog_period({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": pid}) == 30.0
    assert systemd.watchdog_period({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}) is None
    assert systemd.watchdog_period({"WATCHDOG_USEC": "0"}) is None
    assert systemd.watchdog_period({"WATCHDOG_USEC": "x"}) is None
    assert systemd.watchdog_period({}) is None


def test_watchdog_pings_only_while_healthy(notify_socket: socket.socket) -> None:
    health = {"ok": True}
    dog = systemd.Watchdog(lambda: health["ok"], period=10)
    assert dog.interval == 5

    async def scenario() -> list[bool]:
        sent = [await dog.tick()]
        health["ok"] = False
        sent.append(await dog.tick())
        sent.append(await dog.tick())
        health["ok"] = True
        sent.append(await dog.tick())
        return sent

    assert asyncio.run(scenario()) == [True, False, False, True]
    assert received(notify_socket) == {"WATCHDOG": "1"}
    # Turning unhealthy is said once, with a status and no ping.
    assert "WATCHDOG" not in received(notify_socket)
    assert received(notify_socket) == {"WATCHDOG": "1", "STATUS": "En service"}
    assert nothing_waiting(notify_socket)
    assert (dog.pings, dog.misses) == (2, 2)


def test_watchdog_counts_a_raising_or_hanging_probe_as_unhealthy(
    notify_socket: socket.socket,
) -> None:
    def broken() -> bool:
        raise RuntimeError("database gone")

    async def hanging() -> bool:
        await asyncio.Event().wait()
        return True

    async def scenario() -> tuple[bool, bool]:
        return (
            await systemd.Watchdog(broken, period=1).tick(),
            await systemd.Watchdog(hanging, period=0.1).tick(),
        )

    assert asyncio.run(scenario()) == (False, False)
    assert "WATCHDOG" not in received(notify_socket)


def test_watchdog_task_pings_from_the_loop(notify_socket: socket.socket) -> None:
    async def healthy() -> bool:
        return True

    async def scenario() -> None:
        dog = systemd.Watchdog(healthy, period=0.05)
        task = dog.start()
        assert task is not None
        # Wait for two real pings rather than for a duration.
        loop = asyncio.get_running_loop()
        for _ in range(2):
            data = await loop.run_in_executor(None, notify_socket.recv, 4096)
            assert data == b"WATCHDOG=1\n"
        await dog.stop()
        assert task.cancelled()

    asyncio.run(scenario())


def test_watchdog_disabled_without_systemd(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)

    async def scenario() -> None:
        dog = systemd.Watchdog(lambda: True)
        assert dog.enabled is False
        assert dog.start() is None
        await dog.run()  # returns at once
        await dog.stop()

    asyncio.run(scenario())
