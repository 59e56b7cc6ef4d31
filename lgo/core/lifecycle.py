"""What the daemon's background components share: how they start and stop, how they report health."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass
class ComponentHealth:
    ok: bool
    detail: str = ""
    data: dict[str, Any] = field(default_factory=dict)


HealthCheck = Callable[[], ComponentHealth]


class Lifecycle(Protocol):
    """A component that runs in the background while the daemon runs."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...
