"""What every `hwsim` command shares: the work folder, the addresses of that folder's own
simulators, and one French line for every failure a technician can meet (never a traceback).

A bench lives in one work folder: `hwsim up` records there the ports it gave the national
simulator (``national.port``) and the MSSanté simulator (``mss.port``), so every later command
talks to the simulators of *its* bench, not to another bench on the default port.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, NoReturn

import httpx
import typer
from rich.console import Console

from hwsim.runtime import default_workdir

NATIONAL_PORT = 8765
MSS_PORT = 2525
HTTP_TIMEOUT_S = 5.0

console = Console()
err_console = Console(stderr=True)

WorkdirOpt = Annotated[
    Path | None,
    typer.Option(
        "--workdir", "-w", help="Dossier de travail (défaut : $LGO_HWSIM_DIR ou ./.state/hwsim)."
    ),
]


def workdir_of(workdir: Path | None) -> Path:
    return (workdir or default_workdir()).absolute()


def recorded_port(workdir: Path | None, name: str, default: int) -> int:
    """The port `hwsim up` recorded for simulator ``name`` in this work folder."""
    port_file = workdir_of(workdir) / f"{name}.port"
    try:
        return int(port_file.read_text(encoding="ascii").strip())
    except FileNotFoundError:
        return default
    except ValueError:
        fail(f"Fichier {port_file} illisible : relancez `hwsim up`.")


def national_url(workdir: Path | None, url: str | None = None) -> str:
    """An explicit ``--url`` wins; otherwise the national simulator of this work folder."""
    if url:
        return url.rstrip("/")
    wd = workdir_of(workdir)
    if not (wd / "national.port").exists():
        # Never guess the default port: it may be another bench's simulator.
        fail(
            f"Pas de simulateur national dans {wd} (national.port absent) : lancez "
            "`hwsim up`, ou donnez le dossier du banc (-w) ou --url.",
            exit_code=2,
        )
    return f"http://127.0.0.1:{recorded_port(wd, 'national', NATIONAL_PORT)}"


def fail(message: str, exit_code: int = 1) -> NoReturn:
    """One French line on stderr, then the exit code (works alike under `main` and CliRunner)."""
    err_console.print(f"[red]hwsim[/red] : {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(exit_code)


def sim_request(
    method: str, base_url: str, path: str, *, json_body: Any = None, params: Any = None
) -> Any:
    """One call to a simulator's control API; its JSON answer, or a French one-line failure."""
    try:
        response = httpx.request(
            method, base_url + path, json=json_body, params=params, timeout=HTTP_TIMEOUT_S
        )
    except httpx.TransportError as exc:
        fail(f"Services nationaux simulés injoignables à {base_url} : lancez `hwsim up` ({exc}).")
    if response.status_code == 422:
        fail(f"Requête refusée par le simulateur : {_validation_text(response)}", 2)
    if response.is_error:
        fail(f"Le simulateur a répondu {response.status_code} à {method} {path}.")
    return response.json()


def _validation_text(response: httpx.Response) -> str:
    try:
        details = response.json().get("detail", [])
        if isinstance(details, str):
            return details
        return "; ".join(f"{'.'.join(map(str, d['loc'][1:]))} : {d['msg']}" for d in details)
    except (ValueError, KeyError, TypeError, AttributeError):
        return response.text[:200]
