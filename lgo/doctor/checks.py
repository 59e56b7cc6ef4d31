"""What a doctor check is: a function of the settings giving one green or red line."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from lgo.core.settings import Settings

CHECK_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str
    # Shown as information: neither a success nor a failure (e.g. no systemd units on a bench).
    info: bool = False


Check = Callable[[Settings], CheckResult]


class CheckList(list[Check]):
    """The checks of one module, in the order they are shown; ``add`` is their decorator."""

    def add(self, check: Check) -> Check:
        self.append(check)
        return check
