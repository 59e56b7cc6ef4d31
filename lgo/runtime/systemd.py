"""systemd integration without a dependency: sd_notify, socket activation, watchdog.

The daemon behaves the same with or without systemd: when `NOTIFY_SOCKET`, `LISTEN_FDS` or
`WATCHDOG_USEC` are absent every function here is a no-op and says so in its return value.

Protocols implemented (see sd_notify(3), sd_listen_fds(3), sd_watchdog_enabled(3)):
- notification: one datagram of `KEY=value` lines to the AF_UNIX socket named by `NOTIFY_SOCKET`
  (a path, or an abstract name written with a leading `@`);
- socket activation: `LISTEN_PID` is our pid and `LISTEN_FDS` sockets start at fd 3, named by
  `LISTEN_FDNAMES` (colon separated) in the order of the `.socket` unit's `Listen*=` lines;
- watchdog: `WATCHDOG_USEC` (and `WATCHDOG_PID`, when set, equal to our pid); we ping at half that
  period, from the event loop, and only while the health probe says the daemon is fine, so that a
  stuck loop or a broken daemon gets restarted by systemd.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import socket
from collections.abc import Awaitable, Callable, Mapping

from lgo.core.logs import get_logger

SD_LISTEN_FDS_START = 3

# Datagrams are tiny; a short timeout keeps a wedged manager from blocking the event loop.
_SEND_TIMEOUT_S = 1.0

log = get_logger(__name__)

HealthProbe = Callable[[], bool | Awaitable[bool]]


def _notify_address(env: Mapping[str, str]) -> str | None:
    """Return the AF_UNIX address of the manager's notify socket, or None without systemd."""
    raw = env.get("NOTIFY_SOCKET", "")
    if raw.startswith("@"):
        # Abstract namespace: Linux spells it with a leading NUL byte.
        return "\0" + raw[1:]
    if raw.startswith("/"):
        return raw
    # Empty, or a transport we do not speak (vsock:, relative paths): behave as without systemd.
    return None


def format_message(fields: Mapping[str, object]) -> bytes:
    """Build the notification datagram; booleans become 1/0 as sd_notify expects."""
    lines: list[str] = []
    for key, value in fields.items():
        if not key.isupper() or not key.replace("_", "").isalnum():
            raise ValueError(f"invalid sd_notify field name: {key!r}")
        text = str(int(value)) if isinstance(value, bool) else str(value)
        if "\n" in text:
            raise ValueError(f"sd_notify field {key} must hold one line")
        lines.append(f"{key}={text}")
    return ("\n".join(lines) + "\n").encode()


def send(fields: Mapping[str, object], env: Mapping[str, str] | None = None) -> bool:
    """Send `KEY=value` fields to systemd's notify socket.

    Returns True when a datagram was sent, False when there is no notify socket. A failure to send
    is logged and reported as False: the daemon must not die because its supervisor went away.
    """
    address = _notify_address(os.environ if env is None else env)
    if address is None or not fields:
        return False
    message = format_message(fields)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.settimeout(_SEND_TIMEOUT_S)
            sock.sendto(message, address)
    except OSError as exc:
        log.warning("sd_notify_failed", errno=exc.errno)
        return False
    return True


def notify(**fields: object) -> bool:
    """`notify(READY=1, STATUS="prêt")`: send these fields to systemd (see `send`)."""
    return send(fields)


def ready(status: str | None = None) -> bool:
    """Tell systemd the daemon is up (Type=notify units wait for this)."""
    return send({"READY": 1, **({"STATUS": status} if status else {})})


def stopping(status: str | None = None) -> bool:
    """Tell systemd the daemon is shutting down on purpose."""
    return send({"STOPPING": 1, **({"STATUS": status} if status else {})})


def status(text: str) -> bool:
    """Publish a one-line status shown by `systemctl status`."""
    return notify(STATUS=text)


def _passed_fd_count(env: Mapping[str, str]) -> int:
    try:
        pid = int(env.get("LISTEN_PID", ""))
        count = int(env.get("LISTEN_FDS", ""))
    except ValueError:
        return 0
    # The variables are inherited by children; they are ours only if LISTEN_PID names us.
    if pid != os.getpid() or count <= 0:
        return 0
    return count


def _unset_activation_env() -> None:
    for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        os.environ.pop(name, None)


def listen_fds_with_names(unset_environment: bool = True) -> list[tuple[str, socket.socket]]:
    """Take over the sockets systemd passed (fd 3, 4, …) with their `FileDescriptorName=`.

    Each fd becomes a Python socket object that owns it, marked close-on-exec so children do not
    inherit it. With `unset_environment`, the variables are removed so that a second call (or a
    child process) does not take the same descriptors again.
    """
    count = _passed_fd_count(os.environ)
    names = os.environ.get("LISTEN_FDNAMES", "").split(":")
    if unset_environment:
        _unset_activation_env()
    result: list[tuple[str, socket.socket]] = []
    for index in range(count):
        fd = SD_LISTEN_FDS_START + index
        os.set_inheritable(fd, False)
        sock = socket.socket(fileno=fd)
        name = names[index] if index < len(names) and names[index] else "unknown"
        result.append((name, sock))
    return result


def listen_fds(unset_environment: bool = True) -> list[socket.socket]:
    """Take over the sockets systemd passed; an empty list when not socket-activated."""
    return [sock for _, sock in listen_fds_with_names(unset_environment)]


def watchdog_period(env: Mapping[str, str] | None = None) -> float | None:
    """Return the watchdog timeout in seconds if systemd expects pings from us, else None."""
    env = os.environ if env is None else env
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    pid_text = env.get("WATCHDOG_PID")
    if pid_text is not None and pid_text != str(os.getpid()):
        return None
    if usec <= 0:
        return None
    return usec / 1_000_000


async def _probe(health: HealthProbe) -> bool:
    result = health()
    if inspect.isawaitable(result):
        result = await result
    return bool(result)


class Watchdog:
    """Feeds systemd's watchdog from the event loop while `health()` says the daemon is fine.

    Because pings come from a coroutine on the daemon's own loop, a blocked loop stops them and
    systemd restarts the service; an unhealthy daemon stops them too (WatchdogSec= then acts as a
    liveness check). A probe that raises counts as unhealthy.
    """

    def __init__(self, health: HealthProbe, period: float | None = None) -> None:
        self._health = health
        self._period = watchdog_period() if period is None else period
        self._task: asyncio.Task[None] | None = None
        self._healthy = True
        self.pings = 0
        self.misses = 0

    @property
    def enabled(self) -> bool:
        return self._period is not None

    @property
    def interval(self) -> float | None:
        """Seconds between pings: half the timeout, the usual margin (sd_watchdog_enabled(3))."""
        return None if self._period is None else self._period / 2

    async def tick(self) -> bool:
        """Probe health once and ping when healthy; returns whether a ping was due and sent."""
        try:
            healthy = await asyncio.wait_for(_probe(self._health), timeout=self.interval)
        except Exception as exc:  # a failing probe must not kill the watchdog loop itself
            log.warning("watchdog_health_probe_failed", error=type(exc).__name__)
            healthy = False
        if not healthy:
            self.misses += 1
            if self._healthy:
                # Say it once per transition, not on every tick.
                status("Service dégradé : contrôle de santé en échec")
            self._healthy = False
            return False
        self.pings += 1
        if not self._healthy:
            self._healthy = True
            return notify(WATCHDOG=1, STATUS="En service")
        return notify(WATCHDOG=1)

    async def run(self) -> None:
        """Ping forever at `interval`; returns at once when no watchdog is configured."""
        interval = self.interval
        if interval is None:
            return
        while True:
            await self.tick()
            await asyncio.sleep(interval)

    def start(self) -> asyncio.Task[None] | None:
        """Start the ping loop on the running loop; None when the watchdog is off."""
        if not self.enabled:
            return None
        self._task = asyncio.get_running_loop().create_task(self.run(), name="sd-watchdog")
        return self._task

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
