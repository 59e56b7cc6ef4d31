"""Run a blocking hardware call off the event loop with a deadline.

Native calls (SCardTransmit, C_Sign) cannot be interrupted. On deadline the caller gets
:class:`DeadlineExceeded` at once; the worker thread finishes (or hangs) on its own, and its late
result is dropped. Callers must therefore not reuse the handle the stuck call holds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

from drivers.errors import DeadlineExceeded

T = TypeVar("T")


async def call_blocking(func: Callable[[], T], deadline: float) -> T:
    """Await ``func()`` run in a worker thread; raise DeadlineExceeded after ``deadline`` s."""
    try:
        return await asyncio.wait_for(asyncio.to_thread(func), deadline)
    except TimeoutError as exc:
        raise DeadlineExceeded(f"hardware call exceeded {deadline:.1f} s") from exc
