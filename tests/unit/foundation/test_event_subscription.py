"""The live-events subscription survives idle periods (issue #17 item 7): a read that times out
leaves the subscription usable; replayed and queued events are sent once; the daemon ends it."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from lgo.core.events import Event, EventBus


def test_timeouts_leave_the_subscription_usable() -> None:
    async def scenario() -> list[object]:
        bus = EventBus()
        bus.bind_loop(asyncio.get_running_loop())
        subscription = bus.open()
        seen: list[object] = []
        for _ in range(3):  # three idle periods in a row (the generator-based read died here)
            seen.append(await subscription.next(0.01))
        bus.publish("card.inserted", {"reader": 0})
        event = await subscription.next(1)
        seen.append(event.type if event else None)
        subscription.close()
        seen.append(bus.subscriber_count)
        return seen

    assert asyncio.run(scenario()) == [None, None, None, "card.inserted", 0]


def test_resume_sends_replayed_and_queued_events_once() -> None:
    async def scenario() -> list[int]:
        bus = EventBus()
        bus.bind_loop(asyncio.get_running_loop())
        # Published from a driver thread: in the history at once, fanned out on the loop later,
        # so after this subscription opened: both replayed and queued, and sent once.
        thread = threading.Thread(target=bus.publish, args=("x",))
        thread.start()
        thread.join()
        subscription = bus.open(last_event_id=0)
        bus.publish("y")
        ids = []
        while (event := await subscription.next(0.05)) is not None:
            ids.append(event.id)
        subscription.close()
        return ids

    assert asyncio.run(scenario()) == [1, 2]


def test_end_streams_ends_waiting_subscriptions() -> None:
    async def scenario() -> tuple[object, bool, int]:
        bus = EventBus()
        bus.bind_loop(asyncio.get_running_loop())
        subscription = bus.open()
        waiting = asyncio.ensure_future(subscription.next(30))
        await asyncio.sleep(0)
        bus.end_streams()
        result = await asyncio.wait_for(waiting, 2)
        subscription.close()
        return result, subscription.ended, bus.subscriber_count

    assert asyncio.run(scenario()) == (None, True, 0)


def test_a_subscription_by_type_gets_only_those_events() -> None:
    """The documents auto-feed reads dispensation.committed only: it is not woken for the others
    (its own document.skipped included), in the replay as in the live queue."""

    async def scenario() -> tuple[list[str], list[str]]:
        bus = EventBus()
        bus.bind_loop(asyncio.get_running_loop())
        bus.publish("document.skipped")
        bus.publish("dispensation.committed", {"id": "d-1"})
        wanted = frozenset({"dispensation.committed"})
        only = bus.open(last_event_id=0, types=wanted)
        every = bus.open(last_event_id=0)
        bus.publish("card.inserted")
        bus.publish("dispensation.committed", {"id": "d-2"})
        got: dict[str, list[str]] = {"only": [], "every": []}
        for name, subscription in (("only", only), ("every", every)):
            while (event := await subscription.next(0.05)) is not None:
                got[name].append(event.type)
            subscription.close()
        return got["only"], got["every"]

    only, every = asyncio.run(scenario())
    assert only == ["dispensation.committed", "dispensation.committed"]
    assert every == [
        "document.skipped",
        "dispensation.committed",
        "card.inserted",
        "dispensation.committed",
    ]


def test_a_screen_runs_in_the_publishers_thread_and_keeps_its_subscriber_asleep() -> None:
    """The auto-feed's screen (lgo/bootstrap/documents.py) decides in the committing thread: an
    event it refuses never reaches the subscriber; one it accepts does; an event a screen publishes
    reaches the other subscribers after the event it screened."""

    async def scenario() -> tuple[list[str], list[str], list[str]]:
        bus = EventBus()
        bus.bind_loop(asyncio.get_running_loop())
        screened_in: list[str] = []

        def screen(event: Event) -> bool:
            screened_in.append(threading.current_thread().name)
            if event.data["ok"]:
                return True
            bus.publish("document.skipped", {"id": event.data["id"]})
            return False

        feed = bus.open(types=frozenset({"dispensation.committed"}), screen=screen)
        every = bus.open()
        for number, ok in ((1, False), (2, True)):
            publisher = threading.Thread(
                target=bus.publish,
                args=("dispensation.committed", {"id": number, "ok": ok}),
                name=f"db-{number}",
            )
            publisher.start()
            publisher.join()
        got: dict[str, list[str]] = {"feed": [], "every": []}
        for name, subscription in (("feed", feed), ("every", every)):
            while (event := await subscription.next(0.05)) is not None:
                got[name].append(f"{event.type} {event.data['id']}")
            subscription.close()
        return screened_in, got["feed"], got["every"]

    screened_in, feed, every = asyncio.run(scenario())
    assert screened_in == ["db-1", "db-2"]
    assert feed == ["dispensation.committed 2"]
    assert every == [
        "dispensation.committed 1",
        "document.skipped 1",
        "dispensation.committed 2",
    ]


def test_an_event_nobody_wants_does_not_wake_the_loop() -> None:
    async def scenario() -> tuple[int, int]:
        loop = asyncio.get_running_loop()
        bus = EventBus()
        bus.bind_loop(loop)
        wakes = 0
        real = loop.call_soon_threadsafe

        def counting(*args: Any, **kwargs: Any) -> Any:
            nonlocal wakes
            wakes += 1
            return real(*args, **kwargs)

        loop.call_soon_threadsafe = counting  # type: ignore[method-assign,assignment]
        subscription = bus.open(types=frozenset({"dispensation.committed"}), screen=lambda _: False)
        for type_ in ("document.skipped", "dispensation.committed"):  # unwanted, screened out
            publisher = threading.Thread(target=bus.publish, args=(type_,))
            publisher.start()
            publisher.join()
        quiet = wakes
        bus.open()  # a subscriber of every event
        publisher = threading.Thread(target=bus.publish, args=("document.skipped",))
        publisher.start()
        publisher.join()
        subscription.close()
        return quiet, wakes

    assert asyncio.run(scenario()) == (0, 1)


def test_a_failing_screen_delivers_the_event_and_never_fails_the_publisher() -> None:
    async def scenario() -> list[str]:
        bus = EventBus()
        bus.bind_loop(asyncio.get_running_loop())

        def broken(event: Event) -> bool:
            raise RuntimeError("bug")

        subscription = bus.open(types=frozenset({"x"}), screen=broken)
        bus.publish("x")  # does not raise
        event = await subscription.next(0.5)
        subscription.close()
        return [event.type] if event else []

    assert asyncio.run(scenario()) == ["x"]
