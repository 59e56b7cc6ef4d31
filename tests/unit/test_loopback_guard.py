"""The suite refuses wildcard binds (see tests/fixtures/loopback.py); loopback still works."""

from __future__ import annotations

import socket

import pytest

from tests.fixtures.loopback import WildcardBindError


@pytest.mark.parametrize("host", ["0.0.0.0", ""])
def test_wildcard_bind_is_refused(host: str) -> None:
    # socket.create_server re-raises a plain OSError keeping the message.
    with pytest.raises(OSError, match="every interface"):
        socket.create_server((host, 0))


def test_ipv6_wildcard_bind_is_refused() -> None:
    with (
        socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock,
        pytest.raises(WildcardBindError),
    ):
        sock.bind(("::", 0))


def test_loopback_bind_still_works() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        assert server.getsockname()[0] == "127.0.0.1"
