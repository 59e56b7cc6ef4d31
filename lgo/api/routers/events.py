"""``GET /v1/events``: the live event stream (server-sent events).

Browsers' ``EventSource`` cannot send an Authorization header, so the counter page reads this stream
with ``fetch`` and a ReadableStream instead; any SSE client that can set headers works. A comment line
is sent every 15 s to keep proxies and idle timeouts from closing the stream.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from fastapi import APIRouter, Header, Request
from fastapi.responses import StreamingResponse

from lgo.api.deps import ContainerDep, CounterDep
from lgo.events import Event

router = APIRouter(tags=["events"])
HEARTBEAT_S = 15.0


def _frame(event: Event) -> bytes:
    payload = json.dumps(event.as_json(), ensure_ascii=False, separators=(",", ":"))
    return f"id: {event.id}\nevent: {event.type}\ndata: {payload}\n\n".encode()


@router.get(
    "/v1/events",
    summary="Flux d'événements en direct (text/event-stream)",
    response_class=StreamingResponse,
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
        subscription = container.events.subscribe(resume)
        try:
            yield b": connected\n\n"
            while True:
                try:
                    event = await asyncio.wait_for(anext(subscription), HEARTBEAT_S)
                except TimeoutError:
                    if await request.is_disconnected():
                        return
                    yield b": keep-alive\n\n"
                    continue
                yield _frame(event)
        finally:
            metrics.sse_clients.dec()
            await subscription.aclose()  # type: ignore[attr-defined]

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
