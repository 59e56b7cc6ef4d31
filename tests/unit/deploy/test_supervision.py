"""Which socket passed by systemd `lgo serve` accepts, and which it refuses."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from lgo.core.settings import Settings, SettingsError
from lgo.runtime import systemd
from lgo.runtime.supervision import activated_socket


class Passer:
    """Puts sockets at fd 3, 4, … with the activation variables, like systemd."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.monkeypatch = monkeypatch
        self.sockets: list[socket.socket] = []
        self.saved: dict[int, int | None] = {}

    def install(self, *pairs: tuple[str, socket.socket]) -> None:
        for index, (_, sock) in enumerate(pairs):
            self.sockets.append(sock)
            fd = systemd.SD_LISTEN_FDS_START + index
            try:
                self.saved[fd] = os.dup(fd)
            except OSError:
                self.saved[fd] = None
            os.dup2(sock.fileno(), fd)
        self.monkeypatch.setenv("LISTEN_PID", str(os.getpid()))
        self.monkeypatch.setenv("LISTEN_FDS", str(len(pairs)))
        self.monkeypatch.setenv("LISTEN_FDNAMES", ":".join(name for name, _ in pairs))

    def restore(self) -> None:
        for fd, copy in self.saved.items():
            if copy is None:
                with contextlib.suppress(OSError):
                    os.close(fd)
            else:
                os.dup2(copy, fd)
                os.close(copy)
        for sock in self.sockets:
            sock.close()


@pytest.fixture
def passer(monkeypatch: pytest.MonkeyPatch) -> Iterator[Passer]:
    p = Passer(monkeypatch)
    yield p
    p.restore()


def _settings(port: int) -> Settings:
    return Settings(api={"port": port})  # type: ignore[arg-type]


def _tcp(host: str = "127.0.0.1") -> socket.socket:
    return socket.create_server((host, 0))


def test_not_socket_activated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LISTEN_FDS", raising=False)
    assert activated_socket(Settings()) is None


def test_loopback_socket_on_the_configured_port(passer: Passer) -> None:
    sock = _tcp()
    passer.install(("api", sock))
    port = sock.getsockname()[1]
    chosen = activated_socket(_settings(port))
    assert chosen is not None and chosen.fileno() == 3
    assert chosen.getsockname() == ("127.0.0.1", port)
    chosen.detach()


def test_the_api_named_socket_is_chosen_and_others_closed(passer: Passer, tmp_path: Path) -> None:
    other = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    other.bind(str(tmp_path / "other.sock"))
    other.listen()
    api = _tcp()
    passer.install(("metrics", other), ("api", api))
    chosen = activated_socket(_settings(api.getsockname()[1]))
    assert chosen is not None and chosen.fileno() == 4
    with pytest.raises(OSError):
        os.fstat(3)  # the unused one was closed, not leaked
    chosen.detach()


def test_unix_socket_is_accepted(passer: Passer, tmp_path: Path) -> None:
    unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    unix.bind(str(tmp_path / "api.sock"))
    unix.listen()
    passer.install(("api", unix))
    chosen = activated_socket(Settings())
    assert chosen is not None and chosen.family == socket.AF_UNIX
    chosen.detach()


def test_wrong_port_is_refused_in_french(passer: Passer) -> None:
    sock = _tcp()
    passer.install(("api", sock))
    port = sock.getsockname()[1]
    with pytest.raises(SettingsError, match=r"api\.port"):
        activated_socket(_settings(port + 1 if port < 65535 else 1))
    with pytest.raises(OSError):
        os.fstat(3)  # the refused socket is closed


def test_datagram_socket_is_refused(passer: Passer) -> None:
    passer.install(("api", socket.socket(socket.AF_INET, socket.SOCK_DGRAM)))
    with pytest.raises(SettingsError, match="flux"):
        activated_socket(Settings())


class WildcardStub:
    """A TCP socket as systemd would pass it on 0.0.0.0, without listening anywhere.

    The test must not open a port on every interface, so only what the check reads is real.
    """

    family = socket.AF_INET
    type = socket.SOCK_STREAM

    def __init__(self, port: int) -> None:
        self.port = port
        self.closed = False

    def getsockname(self) -> tuple[str, int]:
        return ("0.0.0.0", self.port)

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def wildcard(monkeypatch: pytest.MonkeyPatch) -> WildcardStub:
    stub = WildcardStub(8765)
    monkeypatch.setattr(systemd, "listen_fds_with_names", lambda: [("api", stub)])
    return stub


def test_wildcard_address_is_refused_unless_allowed(wildcard: WildcardStub) -> None:
    with pytest.raises(SettingsError, match="boucle locale"):
        activated_socket(_settings(wildcard.port))
    assert wildcard.closed  # refused: not kept open


def test_wildcard_address_accepted_when_explicitly_allowed(wildcard: WildcardStub) -> None:
    allowed = Settings(api={"port": wildcard.port, "allow_non_loopback": True})  # type: ignore[arg-type]
    chosen = activated_socket(allowed)
    assert chosen is not None and chosen.getsockname() == ("0.0.0.0", wildcard.port)
    assert not wildcard.closed
