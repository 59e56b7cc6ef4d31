import pytest

from lgo.api.security import HostOriginGuard, split_host
from lgo.core.settings import ApiSettings


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("127.0.0.1:8700", ("127.0.0.1", 8700)),
        ("[::1]:8700", ("::1", 8700)),
        ("localhost", ("localhost", None)),
        ("LOCALHOST:1", ("localhost", 1)),
        ("[::1", ("[::1", None)),
        ("", ("", None)),
    ],
)
def test_split_host(value: str, expected: tuple[str, int | None]) -> None:
    assert split_host(value) == expected


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        ("http://127.0.0.1:8700", True),
        ("http://localhost:8700", True),
        ("http://[::1]:8700", True),
        ("http://127.0.0.1:8701", False),  # another local service
        ("https://127.0.0.1:8700", False),
        ("http://evil.example:8700", False),
        ("null", False),
        ("http://127.0.0.1:8700/path", False),
    ],
)
def test_origin_must_be_the_daemon_itself(origin: str, allowed: bool) -> None:
    guard = HostOriginGuard(ApiSettings(port=8700))
    assert guard.allowed_origin(origin) is allowed
