"""Running the API under systemd: the socket it passes, readiness, watchdog and stopping.

`SupervisedServer` is a uvicorn server that tells systemd `READY=1` once the application's startup
(container start: hardware, background workers) is done and the listening socket is served,
feeds the watchdog from the event loop while the daemon's critical components are healthy, and
says `STOPPING=1` as soon as a stop signal arrives. Without systemd all of that is a no-op.
"""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import Sequence
from types import FrameType
from typing import Any

import uvicorn

from lgo.core.logs import get_logger
from lgo.core.settings import Settings, SettingsError, is_loopback
from lgo.runtime import systemd

log = get_logger(__name__)

# Components whose failure a restart can cure. Readers or national services being down is a
# degraded mode the pharmacist works through; restarting the daemon would not bring them back.
CRITICAL_COMPONENTS = ("database",)


def activated_socket(settings: Settings) -> socket.socket | None:
    """The API socket passed by systemd (lgo.socket), checked against the configuration.

    Returns None when the daemon was not socket-activated. Raises SettingsError when the passed
    socket would break the API's guarantees (non-loopback address, or a port other than
    `api.port`, which the Origin check compares with).
    """
    passed = systemd.listen_fds_with_names()
    if not passed:
        return None
    chosen = next((sock for name, sock in passed if name == "api"), passed[0][1])
    for _, sock in passed:
        if sock is not chosen:
            sock.close()
    try:
        _check_socket(chosen, settings)
    except SettingsError:
        chosen.close()
        raise
    return chosen


def _check_socket(sock: socket.socket, settings: Settings) -> None:
    if sock.type != socket.SOCK_STREAM:
        raise SettingsError("Le socket transmis par systemd n'est pas un socket de flux.")
    if sock.family == socket.AF_UNIX:
        return
    host, port = sock.getsockname()[:2]
    if not is_loopback(host) and not settings.api.allow_non_loopback:
        raise SettingsError(
            f"Le socket transmis par systemd écoute sur {host}, qui n'est pas une adresse de "
            "boucle locale (api.allow_non_loopback=true pour forcer, déconseillé)."
        )
    if port != settings.api.port:
        raise SettingsError(
            f"Le socket transmis par systemd écoute sur le port {port} mais api.port vaut "
            f"{settings.api.port} : mettre la même valeur dans lgo.socket et lgo.toml."
        )


def _container_probe(app: Any) -> systemd.HealthProbe:
    """Health of the critical components, probed off the loop (database calls block)."""

    def critical_ok() -> bool:
        container = getattr(getattr(app, "state", None), "container", None)
        if container is None:
            return True  # nothing to probe: a running loop is the liveness proof
        # Only the critical probes: the others (readers, national services) may be slow and do
        # not decide a restart.
        checks = container.health_checks
        return all(bool(checks[name]().ok) for name in CRITICAL_COMPONENTS if name in checks)

    async def probe() -> bool:
        return await asyncio.to_thread(critical_ok)

    return probe


class SupervisedServer(uvicorn.Server):
    """uvicorn server speaking the sd_notify protocol (see the module docstring)."""

    def __init__(self, config: uvicorn.Config, health: systemd.HealthProbe | None = None) -> None:
        super().__init__(config)
        self._health = health
        self._watchdog: systemd.Watchdog | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if not self.started:
            return
        # Migrations were checked before the server was built and the lifespan (container start)
        # has completed: this is the moment the daemon can do its job.
        systemd.ready(f"En service (lgo, {_describe(self.servers)})")
        # For whoever started it from a terminal (or reads the journal): where the counters connect.
        sys.stderr.write(f"lgo écoute sur {_addresses(self.servers)}\n")
        sys.stderr.flush()
        probe = self._health or _container_probe(self.config.app)
        self._watchdog = systemd.Watchdog(probe)
        if self._watchdog.start() is not None:
            log.info("watchdog_started", interval_s=self._watchdog.interval)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self._watchdog is not None:
            await self._watchdog.stop()
        # Open /v1/events streams never end by themselves: end them so that the connections close
        # now rather than at the graceful-shutdown timeout (which cancels them with an error).
        container = getattr(getattr(self.config.app, "state", None), "container", None)
        if container is not None:
            container.events.end_streams()
        await super().shutdown(sockets=sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if not self.should_exit:
            systemd.stopping("Arrêt en cours")
        super().handle_exit(sig, frame)


def _addresses(servers: Sequence[asyncio.base_events.Server]) -> str:
    urls: list[str] = []
    for server in servers:
        for sock in server.sockets:
            address = sock.getsockname()
            if isinstance(address, str):
                urls.append(f"unix:{address}")
            else:
                host = f"[{address[0]}]" if ":" in address[0] else address[0]
                urls.append(f"http://{host}:{address[1]}/")
    return ", ".join(urls) or "aucun socket"


def _describe(servers: Sequence[asyncio.base_events.Server]) -> str:
    names: list[str] = []
    for server in servers:
        for sock in server.sockets:
            address = sock.getsockname()
            names.append(address if isinstance(address, str) else f"{address[0]}:{address[1]}")
    return ", ".join(names) or "aucun socket"
