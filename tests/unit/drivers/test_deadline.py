"""Blocking hardware calls run off the event loop and give up at their deadline."""

from __future__ import annotations

import asyncio
import threading

import pytest

from drivers.deadline import call_blocking
from drivers.errors import DeadlineExceeded


def test_result_is_returned_from_the_worker_thread() -> None:
    loop_thread = threading.get_ident()
    ran_on: list[int] = []

    def work() -> int:
        ran_on.append(threading.get_ident())
        return 42

    assert asyncio.run(call_blocking(work, 1.0)) == 42
    assert ran_on and ran_on[0] != loop_thread


def test_a_hung_call_raises_deadline_exceeded_and_the_loop_stays_free() -> None:
    release = threading.Event()

    async def scenario() -> list[str]:
        order: list[str] = []

        async def other_work() -> None:
            order.append("loop free")

        task = asyncio.create_task(other_work())
        with pytest.raises(DeadlineExceeded):
            await call_blocking(lambda: release.wait(10), 0.05)
        release.set()  # let the stuck worker finish so asyncio.run can join it
        await task
        order.append("deadline")
        return order

    try:
        assert asyncio.run(scenario()) == ["loop free", "deadline"]
    finally:
        release.set()  # let the stuck worker finish
