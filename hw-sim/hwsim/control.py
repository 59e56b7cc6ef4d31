"""Control API of a running simulator: JSON over HTTP on a Unix socket (`<workdir>/control.sock`).

`Client` is the typed client used by tests, the demo and the `hwsim` CLI:

    client = Client(workdir / "control.sock")
    client.insert("vitale", "famille-testnom", reader=0)
    client.remove(0)
    client.set_fault(1, remove_after=3)     # card removed after 3 APDUs
    client.restart_pcscd()
    client.scan("3400999999991", aim="]E0")
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Protocol

import httpx
from pydantic import BaseModel

from hwsim.errors import SimError


class Simulator(Protocol):
    """What the control API drives: the running simulator (``hwsim.runtime.Simulator``)."""

    def stop(self) -> None: ...
    def status(self) -> dict[str, object]: ...
    def insert(
        self, kind: str, profile: str, reader: int, cps4: bool = False
    ) -> dict[str, object]: ...
    def swap(
        self, kind: str, profile: str, reader: int, cps4: bool = False
    ) -> dict[str, object]: ...
    def remove(self, reader: int) -> dict[str, object]: ...
    def reset(self) -> None: ...
    def clear_faults(self, reader: int | None = None) -> None: ...
    def set_fault(self, reader: int, **changes: object) -> dict[str, object]: ...
    def set_plugged(self, reader: int, plugged: bool, hard: bool = False) -> dict[str, object]: ...
    def restart_pcscd(self) -> dict[str, object]: ...
    def scan(
        self, text: str, scanner: str = "serial", aim: str | None = None
    ) -> dict[str, object]: ...


class ControlError(RuntimeError):
    """The simulator refused a request (message in French) or is not reachable."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class InsertBody(BaseModel):
    kind: str
    profile: str = ""
    reader: int = 0
    cps4: bool = False


class ReaderBody(BaseModel):
    reader: int


class PlugBody(BaseModel):
    reader: int
    hard: bool = False


class FaultBody(BaseModel):
    reader: int
    delay_s: float | None = None
    remove_after: int | None = None
    sw: str | None = None  # hex status word, e.g. "6F00"
    ins: str | None = None  # hex INS the wrong SW applies to (all when absent)
    mute_delay_s: float | None = None
    clear: bool = False


class ScanBody(BaseModel):
    text: str
    scanner: str = "serial"
    aim: str | None = None


def create_app(sim: Simulator) -> Any:
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        # uvicorn re-raises SIGTERM after a graceful shutdown, so clean up here, not after run()
        sim.stop()

    app = FastAPI(title="hwsim control", docs_url=None, redoc_url=None, lifespan=lifespan)

    @app.exception_handler(SimError)
    async def sim_error(_: Request, exc: SimError) -> JSONResponse:
        return JSONResponse({"detail": exc.message}, status_code=exc.status)

    @app.get("/status")
    def status() -> dict[str, object]:
        return sim.status()

    @app.post("/cards/insert")
    def insert(body: InsertBody) -> dict[str, object]:
        return sim.insert(body.kind, body.profile, body.reader, body.cps4)

    @app.post("/cards/swap")
    def swap(body: InsertBody) -> dict[str, object]:
        return sim.swap(body.kind, body.profile, body.reader, body.cps4)

    @app.post("/cards/remove")
    def remove(body: ReaderBody) -> dict[str, object]:
        return sim.remove(body.reader)

    @app.post("/reset")
    def reset() -> dict[str, object]:
        sim.reset()
        return sim.status()

    @app.post("/faults")
    def fault(body: FaultBody) -> dict[str, object]:
        if body.clear:
            sim.clear_faults(body.reader)
        changes: dict[str, object] = {}
        if body.delay_s is not None:
            changes["delay_s"] = body.delay_s
        if body.remove_after is not None:
            changes["remove_after"] = body.remove_after
        if body.mute_delay_s is not None:
            changes["mute_delay_s"] = body.mute_delay_s
        if body.sw is not None:
            changes["sw_override"] = int(body.sw, 16)
            changes["sw_ins"] = int(body.ins, 16) if body.ins else None
        return sim.set_fault(body.reader, **changes)

    @app.post("/readers/unplug")
    def unplug(body: PlugBody) -> dict[str, object]:
        return sim.set_plugged(body.reader, plugged=False, hard=body.hard)

    @app.post("/readers/replug")
    def replug(body: PlugBody) -> dict[str, object]:
        return sim.set_plugged(body.reader, plugged=True, hard=body.hard)

    @app.post("/pcscd/restart")
    def restart() -> dict[str, object]:
        return sim.restart_pcscd()

    @app.post("/scan")
    def scan(body: ScanBody) -> dict[str, object]:
        return sim.scan(body.text, body.scanner, body.aim)

    return app


def serve_control(sim: Simulator, socket_path: Path) -> None:
    """Serve the control API on a Unix socket until SIGTERM/SIGINT (blocks)."""
    import uvicorn

    socket_path.unlink(missing_ok=True)
    config = uvicorn.Config(
        create_app(sim), uds=str(socket_path), log_level="warning", access_log=False, lifespan="on"
    )
    uvicorn.Server(config).run()


class Client:
    """Typed client of the control API."""

    def __init__(self, socket_path: Path | str, timeout: float = 30.0) -> None:
        self.socket_path = Path(socket_path)
        transport = httpx.HTTPTransport(uds=str(self.socket_path))
        self._http = httpx.Client(transport=transport, base_url="http://hwsim", timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        try:
            response = self._http.request(method, path, json=body)
        except httpx.TransportError as exc:
            raise ControlError(503, f"simulateur injoignable ({self.socket_path}) : {exc}") from exc
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            raise ControlError(response.status_code, str(detail))
        return response.json()

    def ping(self) -> bool:
        try:
            self._http.get("/status", timeout=2.0)
        except httpx.TransportError:
            return False
        return True

    def status(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/status")
        return result

    def apdus(self, reader: int) -> int:
        """APDUs the card in ``reader`` has answered since it was inserted, counted on the card
        side (the vpcd link), whatever the client in front of pcscd counts."""
        slot = next(r for r in self.status()["readers"] if r["index"] == reader)
        return int(slot["apdus"])

    def insert(
        self, kind: str, profile: str = "", reader: int = 0, cps4: bool = False
    ) -> dict[str, Any]:
        body = {"kind": kind, "profile": profile, "reader": reader, "cps4": cps4}
        result: dict[str, Any] = self._call("POST", "/cards/insert", body)
        return result

    def swap(
        self, kind: str, profile: str = "", reader: int = 0, cps4: bool = False
    ) -> dict[str, Any]:
        body = {"kind": kind, "profile": profile, "reader": reader, "cps4": cps4}
        result: dict[str, Any] = self._call("POST", "/cards/swap", body)
        return result

    def remove(self, reader: int) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", "/cards/remove", {"reader": reader})
        return result

    def reset(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", "/reset")
        return result

    def set_fault(
        self,
        reader: int,
        *,
        delay_s: float | None = None,
        remove_after: int | None = None,
        sw: int | None = None,
        ins: int | None = None,
        mute_delay_s: float | None = None,
        clear: bool = False,
    ) -> dict[str, Any]:
        """Faults of one reader: slow card, removal after N APDUs, wrong SW (for one INS or all),
        how long a mute card holds a command; `clear` resets them first."""
        body: dict[str, Any] = {
            "reader": reader,
            "delay_s": delay_s,
            "remove_after": remove_after,
            "mute_delay_s": mute_delay_s,
            "clear": clear,
        }
        if sw is not None:
            body["sw"] = f"{sw:04X}"
            body["ins"] = None if ins is None else f"{ins:02X}"
        result: dict[str, Any] = self._call("POST", "/faults", body)
        return result

    def clear_faults(self, reader: int) -> dict[str, Any]:
        return self.set_fault(reader, clear=True)

    def unplug(self, reader: int, hard: bool = False) -> dict[str, Any]:
        """Soft: the card link drops and insertions are refused. Hard: the reader pair vanishes
        (pcscd restarted without it)."""
        body = {"reader": reader, "hard": hard}
        result: dict[str, Any] = self._call("POST", "/readers/unplug", body)
        return result

    def replug(self, reader: int) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", "/readers/replug", {"reader": reader})
        return result

    def restart_pcscd(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", "/pcscd/restart")
        return result

    def scan(self, text: str, aim: str | None = None, scanner: str = "serial") -> dict[str, Any]:
        body = {"text": text, "aim": aim, "scanner": scanner}
        result: dict[str, Any] = self._call("POST", "/scan", body)
        return result
