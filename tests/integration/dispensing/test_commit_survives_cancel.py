"""A dispensation whose request is cancelled while it commits still commits whole, once.

The POST hands the commit to a database thread (lgo/api/deps.py, ``DatabaseThreads``): cancelling the
request (a client gone, a shutdown) must neither cut the commit half-way nor lose its answer, which
is then replayed under the same Idempotency-Key.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from typing import Any

import httpx
import pytest

from lgo.api.app import create_app
from lgo.api.deps import DatabaseThreads
from lgo.bootstrap.container import Container
from lgo.bootstrap.dispensing import part_of
from lgo.core.settings import Settings
from lgo.services.counters import add_counter
from lgo.store import migrate
from tests.fixtures.dispensing import LIST_I_PRODUCT, make_patient, open_pharmacist_session
from tests.integration.dispensing.test_dispensing_api import paper_body

pytestmark = pytest.mark.integration
WAIT_S = 10.0


def test_a_cancelled_request_commits_once_and_its_answer_is_replayed(settings: Settings) -> None:
    container = Container(settings)
    migrate.upgrade(container.db)
    _, token = add_counter(container.db, "comptoir-1")
    part_of(container).catalog.add(LIST_I_PRODUCT)
    patient = make_patient(container.db)
    open_pharmacist_session(container)
    intake = container.dispensation_intake
    real_commit = intake.commit
    started, release, finished = threading.Event(), threading.Event(), threading.Event()

    def held_commit(*args: Any) -> Any:
        started.set()
        release.wait(WAIT_S)  # the request is cancelled meanwhile
        try:
            return real_commit(*args)
        finally:
            finished.set()

    intake.commit = held_commit  # type: ignore[method-assign]
    app = create_app(settings, container)
    headers = {
        "Authorization": f"Bearer {token}",
        "Idempotency-Key": "k-cancelled-1",
        "Host": f"127.0.0.1:{settings.api.port}",
    }

    async def scenario() -> httpx.Response:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://lgo") as client:
                post = client.post("/v1/dispensations", json=paper_body(patient), headers=headers)
                first = asyncio.create_task(post)
                assert await asyncio.to_thread(started.wait, WAIT_S)
                first.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await first
                assert not finished.is_set()  # cancelled while the commit was still to come
                release.set()
                assert await asyncio.to_thread(finished.wait, WAIT_S)
                return await client.post(
                    "/v1/dispensations", json=paper_body(patient), headers=headers
                )

    try:
        replay = asyncio.run(scenario())
        assert replay.status_code == 201, replay.text
        assert replay.headers["Idempotent-Replayed"] == "true"
        (record,) = part_of(container).service.list(patient_id=patient)
        assert record.id == replay.json()["id"]
    finally:
        container.db.dispose()


def test_database_threads_finish_a_started_call_and_carry_the_callers_context() -> None:
    request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id")
    threads = DatabaseThreads(1)
    started, release = threading.Event(), threading.Event()
    seen: list[str] = []

    def work() -> None:
        started.set()
        release.wait(WAIT_S)
        seen.append(request_id.get())

    async def scenario() -> None:
        request_id.set("r-1")
        call = asyncio.create_task(threads.run(work))
        assert await asyncio.to_thread(started.wait, WAIT_S)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        release.set()
        await threads.shutdown()  # waits for the started call
        assert seen == ["r-1"]
        assert await threads.run(len, "again") == 5  # usable again after a shutdown

    asyncio.run(scenario())
