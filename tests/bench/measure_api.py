"""The API's own cost: a request's overhead, ``/v1/health``, the token check, start to ready and
memory at rest, each next to a floor measured in the same run (docs: issue 20, API part).

How a request is measured (the goal rows, :func:`api_over_socket`): as a counter's front-end
talks to its daemon, over a loopback TCP socket. Two server processes (tests/bench/api_server.py)
are served alike, with the uvicorn configuration of ``lgo serve`` (:func:`lgo.api.server.
server_config`: httptools with ``BoundedHttpToolsProtocol``, no uvicorn access log, lgo's
``SupervisedServer``) and logging configured as ``lgo serve`` does (INFO, one JSON line per event to
stderr, here a file): lgo's whole app (container on a migrated SQLite database, every route, the
token check, the access line) with a no-op route added, and a bare ``FastAPI()`` with the same
no-op route. The client keeps one connection per route alive and sends the same request head to
both (httpx's default headers and the counter's bearer token), in blocks of
:data:`SOCKET_BLOCK` requests per route in alternation, so the machine's noise falls on every
route alike. For each route: the median latency at the client and the server's CPU per request
(the scheduler's running time of every thread of the server process, read around each block).

Floors:
- a request: the same no-op route on the bare FastAPI app, of the same kind (a plain ``def``, run
  in the threadpool, as most of lgo's routes are, or an ``async def``), served the same way. The
  floor is what uvicorn, httptools, Starlette and FastAPI cost for a request that does nothing,
  plus the kernel's loopback socket: lgo's own cost is the rest. ``/v1/health`` (an ``async def``)
  is compared with the bare ``async def`` no-op. The same routes are also timed through
  Starlette's TestClient in this process (the rows marked so): there every ASGI message crosses
  threads, a cost no daemon pays, which dilutes the ratio;
- start and memory: python with :data:`FRAMEWORK` imported, the libraries the daemon needs to be
  ready (web framework and server, database and migration check, settings, logging, metrics, CLI);
  the figure's note lists any other third-party package the daemon has loaded by then.
"""

from __future__ import annotations

import json
import os
import re
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.bench.measures import ROOT, Figure, pct, timed

FRAMEWORK = (
    "fastapi",
    "starlette.staticfiles",
    "uvicorn",
    # uvicorn's httptools protocol, which lgo/api/server.py names (auto would load it too).
    "uvicorn.protocols.http.httptools_impl",
    "sqlalchemy",
    "sqlalchemy.orm",
    "alembic.runtime.migration",
    "alembic.script",
    "pydantic",
    # FastAPI (0.1xx) imports it the first time it analyses a route's parameters, in any app.
    "pydantic.v1",
    "pydantic_settings",
    "httpx",
    "structlog",
    "typer",
    "prometheus_client",
)
IMPORT_FLOOR = "import " + ", ".join(FRAMEWORK)
# What `lgo serve` has imported once ready, minus the floor: listed in the start figure's note.
LOADED_BEYOND_FLOOR = """
import sys
before = set(sys.modules)
{floor}
floor = {{m.split(".")[0] for m in sys.modules}}
from lgo.api.server import build_server
from lgo.core.settings import load_settings
build_server(load_settings(state_dir=sys.argv[1], hardware={{"pcsc_enabled": False}}))
std = set(sys.stdlib_module_names)
extra = {{m.split(".")[0] for m in sys.modules}} - floor - std - {{"lgo", "drivers"}}
print(" ".join(sorted(m for m in extra if not m.startswith("_"))))
"""


def bytecode_env(tmp: Path, base: dict[str, str]) -> dict[str, str]:
    """An environment where both sides read compiled bytecode, as an installed daemon does: the
    development environment sets PYTHONDONTWRITEBYTECODE, which would make lgo compile its sources
    at every start while the libraries in site-packages have theirs. One private cache for both
    (PYTHONPYCACHEPREFIX), warmed before anything is timed."""
    env = {k: v for k, v in base.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
    warm = f"{IMPORT_FLOOR}; import lgo.api.server, lgo.cli.main, tests.bench.memory_child"
    subprocess.run([sys.executable, "-c", warm], env=env, cwd=ROOT, check=True, timeout=300)
    return env


def alternate(calls: dict[str, Callable[[], object]], n: int) -> dict[str, list[float]]:
    """Durations (ms) of each call, run in alternation ``n`` times."""
    out: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(n):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            out[name].append((time.perf_counter() - start) * 1000)
    return out


class KeepAlive:
    """One keep-alive HTTP/1.1 connection sending the same request again and again: the least
    client work there is (one ``sendall``, ``recv`` until the answer's Content-Length is in)."""

    def __init__(self, port: int, request: bytes) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.request = request

    def get(self) -> int:
        """Send the request, read its whole answer; its status."""
        self.sock.sendall(self.request)
        data = b""
        while True:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the server closed the connection")
            data += chunk
            end = data.find(b"\r\n\r\n")
            if end < 0:
                continue
            length = re.search(rb"(?im)^content-length:\s*(\d+)", data[:end])
            assert length is not None, data[:end]
            if len(data) >= end + 4 + int(length[1]):
                return int(data[9:12])

    def close(self) -> None:
        self.sock.close()


@dataclass
class ApiServer:
    """A server process of :mod:`tests.bench.api_server`."""

    process: subprocess.Popen[bytes]
    port: int

    def cpu_s(self) -> float:
        """CPU time of the server process's threads, in seconds: the scheduler's running time in
        nanoseconds (``/proc/PID/task/*/schedstat``), which utime + stime round to clock ticks
        (10 ms, too coarse for blocks of a few dozen requests). Every thread of these servers
        lives as long as they do, so none takes its time away with it."""
        total = 0
        for task in Path(f"/proc/{self.process.pid}/task").iterdir():
            try:
                total += int((task / "schedstat").read_text().split()[0])
            except (FileNotFoundError, ProcessLookupError):
                continue  # a thread that just ended
        return total / 1e9

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)


def _start_api_server(kind: str, state: Path, log: Path) -> ApiServer:
    from tests.integration.deploy.daemon import free_port

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LGO_", "NOTIFY_", "LISTEN_"))}
    env["LGO_NATIONAL__BASE_URL"] = "http://127.0.0.1:9"
    command = [sys.executable, "-m", "tests.bench.api_server", kind, str(port), str(state)]
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log.open("wb")
    )
    server = ApiServer(process, port)
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{kind} server died: {log.read_text(errors='replace')[-3000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server
        except OSError:
            if time.monotonic() > deadline:
                server.stop()
                raise RuntimeError(f"{kind} server not listening after 60 s") from None
            time.sleep(0.1)


def _request(path: str, port: int, token: str) -> bytes:
    """A GET as a counter front-end's HTTP client sends it (httpx's default headers); the same
    headers on both sides, so both parse the same head."""
    head = [
        f"GET {path} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Accept: */*",
        "Accept-Encoding: gzip, deflate",
        "Connection: keep-alive",
        "User-Agent: python-httpx/0.28.1",
        f"Authorization: Bearer {token}",
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode()


def api_over_socket(tmp: Path, requests: int) -> list[Figure]:
    """The goal rows (:data:`SOCKET_ROUTES`): lgo's app and a bare FastAPI app, each in its own
    process served as ``lgo serve`` serves the daemon (tests/bench/api_server.py), over loopback
    TCP, one keep-alive connection per route, the routes timed in alternation by blocks; the
    latency at the client and the server's CPU per request (all its threads, over the block)."""
    from lgo.core.settings import load_settings
    from lgo.services.counters import add_counter
    from lgo.store import migrate
    from lgo.store.db import Database

    state = tmp / "api-socket-state"
    db = Database(load_settings(state_dir=state).database_url)
    migrate.upgrade(db)
    _, token = add_counter(db, "bench-socket")
    db.dispose()
    servers: dict[str, ApiServer] = {}
    try:
        servers["lgo"] = _start_api_server("lgo", state, tmp / "api-socket-lgo.log")
        servers["bare"] = _start_api_server(
            "bare", tmp / "api-socket-bare", tmp / "api-socket-bare.log"
        )
        return _socket_figures(servers, token, max(requests, 300))
    finally:
        for server in servers.values():
            server.stop()


# (name, server, path) of what the socket rows time, in alternation: lgo's routes on the lgo
# server, the bare no-op of the same kind (plain ``def`` or ``async def``) on the bare one.
SOCKET_ROUTES = (
    ("ours", "lgo", "/v1/bench-noop"),
    ("bare", "bare", "/noop"),
    ("ours_async", "lgo", "/v1/bench-noop-async"),
    ("bare_async", "bare", "/noop-async"),
    ("health", "lgo", "/v1/health"),
)
SOCKET_BLOCK = 50  # requests per route in a row: each server's CPU is read around a block
FLOOR_IS = (
    "the floor is what uvicorn (httptools), Starlette and FastAPI cost for a route that does "
    "nothing (a plain def's includes its threadpool hop), plus the loopback socket; lgo's "
    "gate, token check, access line and metrics are the rest"
)


def _timed_blocks(
    servers: dict[str, ApiServer], token: str, n: int
) -> tuple[dict[str, list[float]], dict[str, float]]:
    """Latencies (ms) of ``n`` requests per route and the server CPU (s) spent on each route's."""
    clients = {
        name: (
            servers[kind],
            KeepAlive(servers[kind].port, _request(path, servers[kind].port, token)),
        )
        for name, kind, path in SOCKET_ROUTES
    }
    ms: dict[str, list[float]] = {name: [] for name in clients}
    cpu = dict.fromkeys(clients, 0.0)
    try:
        for _ in range(max(n // 10, 50)):  # warm up: imports, caches, the threadpool's threads
            for _, client in clients.values():
                assert client.get() == 200
        for _ in range(0, n, SOCKET_BLOCK):
            for name, (server, client) in clients.items():
                used = server.cpu_s()
                for _ in range(SOCKET_BLOCK):
                    start = time.perf_counter()
                    status = client.get()
                    ms[name].append((time.perf_counter() - start) * 1000)
                    assert status == 200, (name, status)
                cpu[name] += server.cpu_s() - used
    finally:
        for _, client in clients.values():
            client.close()
    return ms, cpu


def _socket_figures(servers: dict[str, ApiServer], token: str, n: int) -> list[Figure]:
    load = Path("/proc/loadavg").read_text().split()[0]
    ms, cpu = _timed_blocks(servers, token, n)
    count = len(ms["ours"])
    us = {name: spent / count * 1_000_000 for name, spent in cpu.items()}
    med = {name: statistics.median(values) for name, values in ms.items()}

    def figure(name: str, title: str, floor: str, floor_name: str, more: str = "") -> Figure:
        return Figure(
            title,
            med[name],
            "ms",
            floor_name,
            med[floor],
            f"server CPU per request {us[name]:.0f} µs against {us[floor]:.0f} µs "
            f"({us[name] / us[floor]:.2f}×); p99 {pct(ms[name], 0.99):.2f} ms (floor "
            f"{pct(ms[floor], 0.99):.2f}); {more}n={count} per route; loadavg {load}; {FLOOR_IS}",
            extra={
                "cpu_us": us[name],
                "floor_cpu_us": us[floor],
                "cpu_ratio": us[name] / us[floor],
            },
        )

    same = "served the same way (uvicorn, httptools, keep-alive socket, alternated)"
    return [
        figure(
            "ours",
            "API request over a socket: authenticated no-op GET, plain def route (guard, token, "
            "request id, access line, metrics)",
            "bare",
            f"the same route on a bare FastAPI app {same}",
        ),
        figure(
            "ours_async",
            "API request over a socket: authenticated no-op GET, async def route",
            "bare_async",
            f"the same async route on a bare FastAPI app {same}",
        ),
        figure(
            "health",
            "API GET /v1/health over a socket (token, component states; an async def route)",
            "bare_async",
            "the bare async no-op route",
            f"against the bare plain def no-op: {med['health'] / med['bare']:.2f}× latency, "
            f"{us['health'] / us['bare']:.2f}× CPU; ",
        ),
    ]


def api_overhead(tmp: Path, requests: int) -> list[Figure]:
    """The socket rows (:func:`api_over_socket`, the goals), then the same no-op route and
    /v1/health through Starlette's TestClient in this process (every ASGI message crosses
    threads there), the token check and the dispensation POST's request stack."""
    figures = api_over_socket(tmp, requests)
    from fastapi import Depends, FastAPI
    from fastapi.testclient import TestClient

    from lgo.api.app import create_app
    from lgo.api.deps import require_counter
    from lgo.bootstrap.container import Container
    from lgo.core.settings import load_settings
    from lgo.services.counters import add_counter
    from lgo.store import migrate

    settings = load_settings(state_dir=tmp / "api-state", hardware={"pcsc_enabled": False})
    container = Container(settings)
    migrate.upgrade(container.db)
    _, token = add_counter(container.db, "bench")
    app = create_app(settings, container)

    def noop() -> dict[str, bool]:
        return {"ok": True}

    app.add_api_route("/v1/bench-noop", noop, dependencies=[Depends(require_counter)])
    app.router.routes.insert(0, app.router.routes.pop())  # before the counter page's "/" mount
    bare = FastAPI()
    bare.add_api_route("/noop", noop)
    base = f"http://127.0.0.1:{settings.api.port}"
    headers = {"Authorization": f"Bearer {token}"}
    with (
        TestClient(app, base_url=base, headers=headers) as ours,
        TestClient(bare, base_url=base) as plain,
    ):
        for client, path in ((ours, "/v1/bench-noop"), (plain, "/noop"), (ours, "/v1/health")):
            assert client.get(path).status_code == 200
        ms = alternate(
            {
                "ours": lambda: ours.get("/v1/bench-noop"),
                "bare": lambda: plain.get("/noop"),
                "health": lambda: ours.get("/v1/health"),
            },
            requests,
        )
        figures += _request_figures(ms, requests)
        figures.append(_token_check(app.state.tokens, container.db, token, requests))
        figures.append(_dispensation_stack(app, container, token, requests))
    container.db.dispose()
    return figures


def _request_figures(ms: dict[str, list[float]], requests: int) -> list[Figure]:
    floor = statistics.median(ms["bare"])
    return [
        Figure(
            "API request through TestClient, no-op route behind the lgo stack (guard, auth, "
            "metrics)",
            statistics.median(ms["ours"]),
            "ms",
            "same route on a bare FastAPI app (TestClient, timed in alternation)",
            floor,
            f"p99 {pct(ms['ours'], 0.99):.2f} ms (bare p99 {pct(ms['bare'], 0.99):.2f}), n={requests}",
        ),
        Figure(
            "API GET /v1/health through TestClient (token, component states)",
            statistics.median(ms["health"]),
            "ms",
            "same bare route",
            floor,
            f"p99 {pct(ms['health'], 0.99):.2f} ms, n={requests}",
        ),
    ]


def _dispensation_stack(app: Any, container: Any, token: str, n: int) -> Figure:
    """CPU of a dispensation POST through the whole lgo request stack (guard, body cap, request
    context, token, pharmacist session, validation, the database thread hop, the answer) with the
    commit itself replaced by a constant answer, next to a bare FastAPI ``async`` route validating
    the same body model; both called as ASGI apps in one event loop, in alternation."""
    import asyncio

    from fastapi import FastAPI
    from fastapi.responses import JSONResponse

    from lgo.api.routers.dispensations import DispensationIn
    from lgo.services.dispensing import DispensationResult
    from lgo.services.sessions import ProfessionalIdentity, SessionKind
    from tests.bench.measure_postgres import dispensation_body

    answer = {"id": "0" * 36, "lines": [{"line_no": 1, "days": 30}, {"line_no": 2, "days": 14}]}
    intake = container.dispensation_intake
    real_commit = intake.commit
    intake.commit = lambda *_: DispensationResult(status_code=201, body=answer)
    pharmacist = ProfessionalIdentity("810000000009", "10000000009", "BENCH", "P", "21")
    session = container.sessions.open(SessionKind.CPS, pharmacist)
    bare = FastAPI()

    async def post(body: DispensationIn) -> JSONResponse:
        return JSONResponse(answer, status_code=201)

    post.__annotations__["body"] = DispensationIn  # a class, not this module's string annotation
    bare.add_api_route("/v1/dispensations", post, methods=["POST"])
    body = dispensation_body("00000000-0000-0000-0000-000000000001", "2026-01-02")
    host = f"127.0.0.1:{container.settings.api.port}".encode()
    head = [(b"host", host), (b"content-type", b"application/json")]
    head += [(b"content-length", str(len(body)).encode()), (b"idempotency-key", b"k-bench-01")]
    ours_head = [*head, (b"authorization", f"Bearer {token}".encode())]

    async def call(asgi: Any, headers: list[tuple[bytes, bytes]]) -> float:
        scope: dict[str, Any] = {"type": "http", "method": "POST", "path": "/v1/dispensations"}
        scope["headers"] = headers
        scope |= {"http_version": "1.1", "scheme": "http", "query_string": b"", "root_path": ""}
        scope |= {"asgi": {"version": "3.0"}, "server": ("127.0.0.1", 8700), "state": {}}
        messages = [{"type": "http.request", "body": body, "more_body": False}]
        statuses: list[int] = []

        async def receive() -> dict[str, Any]:
            return messages.pop() if messages else {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                statuses.append(message["status"])

        start = time.process_time()  # the database thread's CPU included
        await asgi(scope, receive, send)
        spent = (time.process_time() - start) * 1_000_000
        assert statuses == [201], statuses
        return spent

    async def measure() -> dict[str, list[float]]:
        out: dict[str, list[float]] = {"ours": [], "bare": []}
        for round_ in range(max(n, 200) + 50):  # the first 50 only warm up
            ours, plain = await call(app, ours_head), await call(bare, head)
            if round_ >= 50:
                out["ours"].append(ours)
                out["bare"].append(plain)
        return out

    try:
        us = asyncio.run(measure())
    finally:
        container.sessions.close("bench", session_id=session.id)
        intake.commit = real_commit
    return Figure(
        "Dispensation POST, lgo request stack CPU (commit replaced by a constant answer)",
        statistics.median(us["ours"]),
        "µs",
        "bare FastAPI async route validating the same body (CPU, same loop, alternated)",
        statistics.median(us["bare"]),
        "includes the commit's thread hop (the session is read on the loop) and the access line; "
        f"p90 {pct(us['ours'], 0.9):.0f} µs, n={len(us['ours'])}",
    )


def _token_check(tokens: Any, db: Any, token: str, n: int) -> Figure:
    """The per-request token check (in memory, after SQLite's change signal) next to the signal
    alone on a raw sqlite3 connection; the database lookup it replaced is in the note."""
    from lgo.services.counters import authenticate

    raw = sqlite3.connect(db.engine.url.database, isolation_level=None)
    rounds = max(n, 2000)
    ours = statistics.median(timed(lambda: tokens.authenticate(token), rounds))
    signal = statistics.median(timed(lambda: raw.execute("PRAGMA data_version").fetchone(), rounds))
    lookup = statistics.median(timed(lambda: authenticate(db, token), max(n // 5, 50)))
    raw.close()
    return Figure(
        "Token check per request (in memory, SQLite PRAGMA data_version as change signal)",
        ours * 1000,
        "µs",
        "PRAGMA data_version alone, raw sqlite3",
        signal * 1000,
        f"the database lookup it replaces: {lookup * 1000:.0f} µs",
    )


def pg_token_check(n: int) -> list[Figure]:
    """PostgreSQL (a cluster of its own): the per-request check (drain the LISTEN connection's
    socket, then the dict) next to a ``select`` with a zero timeout on a socket; the database
    lookup in the note."""
    from tests.fixtures.db import start_pg_cluster, stop_pg_cluster

    cluster, root = start_pg_cluster()
    try:
        return _pg_token_check(cluster.new_database(), n)
    finally:
        stop_pg_cluster(cluster, root)


def _pg_token_check(url: str, n: int) -> list[Figure]:
    import asyncio
    import select
    import socket

    from lgo.services.counter_tokens import CounterTokens
    from lgo.services.counters import add_counter, authenticate
    from lgo.store import migrate
    from lgo.store.db import Database

    db = Database(url)
    migrate.upgrade(db)
    _, token = add_counter(db, "bench-pg")
    tokens = CounterTokens(db)
    asyncio.run(tokens.start())
    try:
        deadline = time.monotonic() + 20
        while not tokens.has_signal():  # the listener connects in its thread
            assert time.monotonic() < deadline, "listener did not connect"
            time.sleep(0.05)
        assert tokens.authenticate(token) is not None
        rounds = max(n, 2000)
        ours = statistics.median(timed(lambda: tokens.authenticate(token), rounds))
        left, right = socket.socketpair()
        floor = statistics.median(timed(lambda: select.select([left], [], [], 0), rounds))
        left.close()
        right.close()
        lookup = statistics.median(timed(lambda: authenticate(db, token), max(n // 5, 50)))
    finally:
        asyncio.run(tokens.stop())
        db.dispose()
    return [
        Figure(
            "Token check per request (in memory, PostgreSQL LISTEN socket drained)",
            ours * 1000,
            "µs",
            "select() with a zero timeout on a socket",
            floor * 1000,
            f"the database lookup it replaces: {lookup * 1000:.0f} µs",
        )
    ]


def daemon_start(tmp: Path, rounds: int) -> list[Figure]:
    """``lgo serve`` start to READY=1 (sd_notify), migrated SQLite, PC/SC off, against python
    importing :data:`FRAMEWORK`; both timed in alternation."""
    from tests.integration.deploy.daemon import Daemon, clean_env

    lgo = Path(sys.executable).with_name("lgo")
    state = tmp / "daemon-state"
    base = {**clean_env(), "LGO_STATE_DIR": str(state), "LGO_LOGGING__LEVEL": "WARNING"}
    env = bytecode_env(tmp, base)
    subprocess.run([str(lgo), "migrate"], env=env, check=True, capture_output=True, timeout=120)

    def floor_imports() -> None:
        subprocess.run([sys.executable, "-c", IMPORT_FLOOR], env=env, check=True)

    ms: dict[str, list[float]] = {"ours": [], "floor": []}
    for round_ in range(rounds + 1):  # the first round only warms the caches
        start = time.perf_counter()
        daemon = Daemon(lgo, tmp, env)
        daemon.wait_ready()
        elapsed = (time.perf_counter() - start) * 1000
        daemon.stop()
        floor = timed(floor_imports, 1)
        if round_:
            ms["ours"].append(elapsed)
            ms["floor"].extend(floor)
    beyond = subprocess.run(
        [sys.executable, "-c", LOADED_BEYOND_FLOOR.format(floor=IMPORT_FLOOR), str(state)],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout.strip()
    return [
        Figure(
            "Daemon start to ready (lgo serve → READY=1)",
            statistics.median(ms["ours"]),
            "ms",
            f"python start + {IMPORT_FLOOR}",
            statistics.median(ms["floor"]),
            f"n={rounds}, bytecode cached for both; third-party beyond the floor at ready: "
            f"{beyond or 'none'}",
        )
    ]


def start_memory(tmp: Path, dispensations: int) -> subprocess.Popen[str]:
    """Start the memory child (a daemon container doing ``dispensations`` commits)."""
    env = bytecode_env(tmp, {**os.environ, "LGO_LOGGING__LEVEL": "WARNING"})
    return subprocess.Popen(
        [sys.executable, "-m", "tests.bench.memory_child", str(tmp / "mem"), str(dispensations)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def memory(child: subprocess.Popen[str], dispensations: int) -> list[Figure]:
    """RSS of the child at rest, then after its ``dispensations`` commits."""
    out, err = child.communicate(timeout=900)
    if child.returncode != 0:
        raise RuntimeError(f"memory child failed: {err[-2000:]}")
    values = json.loads(out.strip().splitlines()[-1])
    return [
        Figure(
            "Memory at rest (container + API app built, migrated SQLite)",
            values["rest_mib"],
            "MiB",
            "python with the framework libraries imported (the start floor's)",
            values["bare_mib"],
            f"third-party beyond the floor: {values['beyond'] or 'none'}",
        ),
        Figure(
            f"Memory after {dispensations} dispensations",
            values["after_mib"],
            "MiB",
            "memory at rest",
            values["rest_mib"],
            f"{values['rate']:.0f} dispensations/s in the child",
        ),
    ]
