"""``GET /v1/events``: the live event stream (server-sent events).

Browsers' ``EventSource`` cannot send an Authorization header, so the counter page reads this stream
with ``fetch`` and a ReadableStream instead; any SSE client that can set headers works. The stream
stays open indefinitely: while idle, the comment line ``: keep-alive`` is sent every 15 s (proxies
and idle timeouts do not close it; SSE clients ignore comments). ``Last-Event-ID`` resumes after
that id from the last 500 events kept in memory.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from fastapi import APIRouter, Header, Request
from fastapi.responses import StreamingResponse

from lgo.api.deps import ContainerDep, CounterDep
from lgo.core.events import Event

router = APIRouter(tags=["events"])
HEARTBEAT_S = 15.0
KEEP_ALIVE = b": keep-alive\n\n"  # an SSE comment: clients ignore it


def _frame(event: Event) -> bytes:
    payload = json.dumps(event.as_json(), ensure_ascii=False, separators=(",", ":"))
    return f"id: {event.id}\nevent: {event.type}\ndata: {payload}\n\n".encode()


@router.get(
    "/v1/events",
    summary="Flux d'événements en direct (text/event-stream)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}}},
)
async def events(
    request: Request,
    container: ContainerDep,
    _counter: CounterDep,
    last_event_id: str | None = Header(default=None),
) -> StreamingResponse:
    resume = int(last_event_id) if last_event_id and last_event_id.isdigit() else None
    metrics = request.app.state.metrics

    async def stream() -> AsyncIterator[bytes]:
        metrics.sse_clients.inc()
        subscription = container.events.open(resume)
        try:
            yield b": connected\n\n"
            while True:
                event = await subscription.next(HEARTBEAT_S)
                if event is not None:
                    yield _frame(event)
                elif subscription.ended or await request.is_disconnected():
                    return  # daemon stopping (the client reconnects with Last-Event-ID) or gone
                else:
                    yield KEEP_ALIVE
        finally:
            metrics.sse_clients.dec()
            subscription.close()

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
