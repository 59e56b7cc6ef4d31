"""The refusal of a control request, shared by the simulator and its control API."""

from __future__ import annotations


class SimError(Exception):
    """A control request that cannot be honoured (French message for the technician)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
