import asyncio
import threading
from datetime import UTC, datetime, timedelta

from lgo.core.events import EventBus
from lgo.services.sessions import ProfessionalIdentity, SessionKind, SessionRegistry

PHARMACIST = ProfessionalIdentity("899700000019", "99700000019", "TESTEUR", "ANNE", "21")
PREPARER = ProfessionalIdentity("899700000027", "99700000027", "AIDE", "PAUL", "10")


def test_events_published_from_another_thread_reach_subscribers() -> None:
    async def scenario() -> list[str]:
        bus = EventBus()
        bus.bind_loop(asyncio.get_running_loop())
        stream = bus.subscribe()
        first = asyncio.ensure_future(anext(stream))
        await asyncio.sleep(0)
        threading.Thread(target=bus.publish, args=("card.inserted", {"reader": 0})).start()
        event = await asyncio.wait_for(first, 2)
        await stream.aclose()  # type: ignore[attr-defined]
        return [event.type]

    assert asyncio.run(scenario()) == ["card.inserted"]


def test_resume_after_last_event_id_replays_only_newer_events() -> None:
    bus = EventBus()
    ids = [bus.publish("x", {"n": n}).id for n in range(5)]
    assert [e.data["n"] for e in bus.recent(ids[2])] == [3, 4]


def test_slow_subscriber_loses_its_backlog_and_is_told_so() -> None:
    async def scenario() -> list[tuple[str, dict[str, int]]]:
        bus = EventBus(queue_size=3)
        bus.bind_loop(asyncio.get_running_loop())
        stream = bus.subscribe()
        waiter = asyncio.ensure_future(anext(stream))
        await asyncio.sleep(0)
        for n in range(5):
            bus.publish("x", {"n": n})
        first = await waiter
        received = [(first.type, first.data)]
        for _ in range(2):
            event = await asyncio.wait_for(anext(stream), 1)
            received.append((event.type, event.data))
        await stream.aclose()  # type: ignore[attr-defined]
        return received

    assert asyncio.run(scenario()) == [
        ("stream.overflow", {"lost": 3}),
        ("x", {"n": 3}),
        ("x", {"n": 4}),
    ]


def test_opening_a_session_replaces_the_previous_one_and_listeners_run() -> None:
    bus = EventBus()
    registry = SessionRegistry(bus)
    closed: list[str] = []
    registry.on_close(lambda s, reason: closed.append(f"{s.identity.rpps}:{reason}"))
    registry.open(SessionKind.CPS, PHARMACIST)
    registry.open(SessionKind.ECPS, PREPARER)
    assert closed == ["99700000019:replaced"]
    current = registry.current()
    assert current is not None and current.kind is SessionKind.ECPS
    assert [e.type for e in bus.recent()] == ["session.opened", "session.closed", "session.opened"]


def test_session_expires_at_its_deadline() -> None:
    now = [datetime(2026, 11, 23, 9, 0, tzinfo=UTC)]
    registry = SessionRegistry(EventBus(), clock=lambda: now[0])
    registry.open(SessionKind.ECPS, PHARMACIST, ttl=timedelta(minutes=30))
    now[0] += timedelta(minutes=29, seconds=59)
    assert registry.current() is not None
    now[0] += timedelta(seconds=1)
    assert registry.current() is None


def test_close_only_closes_the_named_session() -> None:
    registry = SessionRegistry(EventBus())
    session = registry.open(SessionKind.CPS, PHARMACIST)
    assert registry.close("card_removed", session_id="other") is None
    assert registry.close("card_removed", session_id=session.id) == session
    assert registry.current() is None
    assert PHARMACIST.is_pharmacist and not PREPARER.is_pharmacist


def test_extend_keeps_the_session_id_and_moves_the_expiry() -> None:
    now = [datetime(2026, 11, 23, 9, 0, tzinfo=UTC)]
    registry = SessionRegistry(EventBus(), clock=lambda: now[0])
    session = registry.open(SessionKind.ECPS, PHARMACIST, ttl=timedelta(minutes=30))
    assert registry.extend("other", now[0] + timedelta(hours=1)) is None
    extended = registry.extend(session.id, now[0] + timedelta(hours=1))
    assert extended is not None and extended.id == session.id
    now[0] += timedelta(minutes=45)
    current = registry.current()
    assert current is not None and current.id == session.id


def test_reap_closes_an_expired_session_with_its_reason() -> None:
    now = [datetime(2026, 11, 23, 9, 0, tzinfo=UTC)]
    bus = EventBus()
    registry = SessionRegistry(bus, clock=lambda: now[0])
    reasons: list[str] = []
    registry.on_close(lambda _s, reason: reasons.append(reason))
    registry.open(SessionKind.ECPS, PHARMACIST, ttl=timedelta(minutes=1))
    now[0] += timedelta(minutes=2)
    registry.reap()
    assert reasons == ["expired"]
    assert bus.recent()[-1].type == "session.closed"


def test_peek_closes_nothing_and_tells_an_expired_session() -> None:
    now = [datetime(2026, 11, 23, 9, 0, tzinfo=UTC)]
    bus = EventBus()
    registry = SessionRegistry(bus, clock=lambda: now[0])
    reasons: list[str] = []
    registry.on_close(lambda _s, reason: reasons.append(reason))
    assert registry.peek() == (None, False)
    session = registry.open(SessionKind.ECPS, PHARMACIST, ttl=timedelta(minutes=1))
    assert registry.peek() == (session, False)
    now[0] += timedelta(minutes=2)
    assert registry.peek() == (None, True)
    assert reasons == [] and bus.recent()[-1].type == "session.opened"  # nothing closed yet
    assert registry.current() is None and reasons == ["expired"]
    assert registry.peek() == (None, False)
