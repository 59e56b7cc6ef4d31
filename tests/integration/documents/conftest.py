"""A live national simulator with the DMP router on 127.0.0.1 (uvicorn in a thread)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from hwsim.national import dmp as sim_dmp
from lgo.national.dmp import DmpClient
from lgo.national.http import NationalHttpClient, RetryPolicy


def _app() -> FastAPI:
    app = FastAPI()
    app.include_router(sim_dmp.router, prefix="/dmp")
    return app


@pytest.fixture(scope="session")
def dmp_sim_url() -> Iterator[str]:
    config = uvicorn.Config(_app(), host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:  # uvicorn exposes no event to await; bounded wait for startup
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("simulator did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}/dmp"
    server.should_exit = True
    thread.join(5)


@pytest.fixture
def dmp_sim(dmp_sim_url: str) -> Iterator[str]:
    sim_dmp.registry.reset()
    yield dmp_sim_url
    sim_dmp.registry.reset()


@pytest.fixture
def dmp_client(dmp_sim: str) -> Iterator[DmpClient]:
    http = NationalHttpClient(
        "dmp",
        dmp_sim,
        timeout_s=2.0,
        connect_timeout_s=1.0,
        retry=RetryPolicy(attempts=3, backoff_s=0.01),
        sleep=lambda _: None,
    )
    client = DmpClient(http, finess="750000000")
    yield client
    client.close()


def sim_control(base: str, path: str, body: dict[str, object]) -> None:
    httpx.post(f"{base}/_sim/{path}", json=body, timeout=5).raise_for_status()


def sim_documents(base: str) -> list[dict[str, object]]:
    response = httpx.get(f"{base}/_sim/documents", timeout=5)
    response.raise_for_status()
    documents: list[dict[str, object]] = response.json()
    return documents
