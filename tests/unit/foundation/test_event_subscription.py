"""The live-events subscription survives idle periods (issue #17 item 7): a read that times out
leaves the subscription usable; replayed and queued events are sent once; the daemon ends it."""

from __future__ import annotations

import asyncio
import threading

from lgo.core.events import EventBus


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
