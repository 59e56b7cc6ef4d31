"""`hwsim`: the hardware (and national services) simulator for lgo benches, demos and tests.

French first in help texts (technicians), English in code and logs.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated, Any, NoReturn

import httpx
import typer
from rich.table import Table
from typer._click.exceptions import UsageError
from typer.exceptions import Abort

from hwsim import __version__
from hwsim.cli_common import (
    MSS_PORT,
    NATIONAL_PORT,
    WorkdirOpt,
    console,
    err_console,
    fail,
    recorded_port,
    workdir_of,
)
from hwsim.cli_national import mss_app, national_app
from hwsim.control import Client, ControlError
from hwsim.errors import SimError
from hwsim.fixtures import load_people
from hwsim.national import psc_cli
from hwsim.pcsc_wait import wait_card_state
from hwsim.pcscd import die_with_parent
from hwsim.pki import BASE_URL_ENV, TestPki
from hwsim.runtime import launch

app = typer.Typer(
    help="Simulateur matériel (lecteurs, cartes, scanners) et services nationaux pour lgo.",
    no_args_is_help=True,
)
fault_app = typer.Typer(
    help="Pannes des lecteurs et des cartes à la demande.", no_args_is_help=True
)
pkcs11_app = typer.Typer(help="Jetons PKCS#11 (SoftHSM) des professionnels.", no_args_is_help=True)
app.add_typer(fault_app, name="fault")
app.add_typer(pkcs11_app, name="pkcs11")
app.add_typer(national_app, name="national")
app.add_typer(mss_app, name="mss")
app.add_typer(psc_cli.app, name="psc")

ReaderOpt = Annotated[int, typer.Option("--reader", "-r", help="Numéro du lecteur (0, 1, …).")]
MSS_START_S = 60.0  # provisioning the test PKI generates RSA keys
_workdir = workdir_of


def _client(workdir: Path | None) -> Client:
    sock = _workdir(workdir) / "control.sock"
    if not sock.exists():
        fail(f"Simulateur non démarré ({sock} absent) : lancez `hwsim up`.", 2)
    return Client(sock)


def _call(workdir: Path | None, action: str, *args: Any, **kwargs: Any) -> Any:
    with _client(workdir) as client:
        try:
            return getattr(client, action)(*args, **kwargs)
        except ControlError as exc:
            fail(f"Refusé : {exc}")


PCSCD_SEES_CARD_S = 3.0  # pcscd polls vpcd readers every 400 ms


def _wait_pcscd(workdir: Path | None, reader_name: str, present: bool) -> None:
    """Return once the bench's pcscd reports the card in (or out of) ``reader_name``: the link is
    up before pcscd's next poll, and a tool run right after (pkcs11-tool -L) would find no token."""
    sock = _workdir(workdir) / "run" / "pcscd" / "pcscd.comm"
    if not sock.exists():  # plain isolation: the system pcscd socket, already the default
        return
    os.environ["PCSCLITE_CSOCK_NAME"] = str(sock)  # read by libpcsclite at the first context
    wait_card_state(reader_name, present, PCSCD_SEES_CARD_S)


@app.command()
def version() -> None:
    """Afficher la version."""
    typer.echo(__version__)


# ---------------------------------------------------------------------------------------------
# up / down / status
# ---------------------------------------------------------------------------------------------
def _national_available() -> bool:
    try:
        return importlib.util.find_spec("hwsim.national.app") is not None
    except ModuleNotFoundError:
        return False


def _start_national(workdir: Path, port: int, detach: bool) -> subprocess.Popen[bytes] | None:
    if not _national_available():
        console.print("[yellow]hwsim.national absent : services nationaux non démarrés.[/yellow]")
        return None
    out = (workdir / "national.out").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "hwsim.national.app", "--host", "127.0.0.1", "--port", str(port)],
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=None if detach else die_with_parent,
    )
    out.close()
    (workdir / "national.pid").write_text(str(proc.pid))
    (workdir / "national.port").write_text(str(port))
    return proc


def _refuse_busy_ports(ports: dict[str, int]) -> None:
    """Stop before starting anything when a simulator's port is taken (another bench, most
    often): the daemon would otherwise be told to talk to that other bench's simulator."""
    for option, port in ports.items():
        if port == 0:
            continue  # a free port chosen by the simulator itself
        with socket.socket() as probe:
            # As the simulators bind: a closed connection's TIME_WAIT does not make it busy.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                fail(
                    f"Port 127.0.0.1:{port} déjà utilisé (un autre banc ?) : "
                    f"relancez avec {option} <port libre>."
                )


def _start_mss(wd: Path, port: int, detach: bool) -> dict[str, str] | None:
    """The MSSanté SMTP simulator (``python -m hwsim.mss``) with its test PKI in ``wd/mss``; the
    ``LGO_NATIONAL__MSS__*`` settings the daemon needs, read from its ready line (None: failed)."""
    err = (wd / "mss.out").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "hwsim.mss", "--dir", str(wd / "mss"), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=err,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=None if detach else die_with_parent,
    )
    err.close()
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], MSS_START_S)
    line = proc.stdout.readline() if ready else b""
    proc.stdout.close()  # it prints nothing after its ready line
    try:
        daemon_env: dict[str, str] = json.loads(line)["daemon_env"]
    except (ValueError, KeyError, TypeError):
        proc.terminate()
        console.print(f"[red]MSSanté simulé non démarré[/red] (voir {wd / 'mss.out'}).")
        return None
    (wd / "mss.pid").write_text(str(proc.pid))
    (wd / "mss.port").write_text(daemon_env.get("LGO_NATIONAL__MSS__PORT", str(port)))
    return daemon_env


@app.command()
def up(
    workdir: WorkdirOpt = None,
    readers: Annotated[int, typer.Option(help="Nombre de lecteurs (2 par défaut, jusqu'à 4).")] = 2,
    national_port: Annotated[
        int, typer.Option(help="Port des services nationaux (127.0.0.1).")
    ] = NATIONAL_PORT,
    national: Annotated[bool, typer.Option(help="Démarrer les services nationaux.")] = True,
    mss_port: Annotated[
        int, typer.Option(help="Port SMTP du MSSanté simulé (127.0.0.1 ; 0 : port libre).")
    ] = MSS_PORT,
    mss: Annotated[bool, typer.Option(help="Démarrer le MSSanté simulé (SMTP).")] = True,
    tokens: Annotated[bool, typer.Option(help="Créer les jetons SoftHSM des CPS.")] = True,
    detach: Annotated[
        bool, typer.Option("--detach", "-d", help="Rendre la main (arrêt : hwsim down).")
    ] = False,
) -> None:
    """Démarrer le simulateur (pcscd privé, lecteurs, scanners, jetons, services nationaux,
    MSSanté SMTP)."""
    wd = _workdir(workdir)
    wd.mkdir(parents=True, exist_ok=True)
    if (wd / "control.sock").exists() and Client(wd / "control.sock").ping():
        console.print(f"[yellow]Déjà démarré[/yellow] dans {wd}")
        raise typer.Exit(1)
    _refuse_busy_ports(
        {"--national-port": national_port if national else 0, "--mss-port": mss_port if mss else 0}
    )
    # The cards' certificates point to this bench's simulator for their CRL and CA certificate.
    os.environ.setdefault(BASE_URL_ENV, f"http://127.0.0.1:{national_port}")
    if tokens:
        from hwsim.pkcs11 import provision

        provision(wd, list(load_people().professionals.values()))
    try:
        launched = launch(wd, readers=readers, detach=detach)
    except SimError as exc:
        console.print(f"[red]Échec du démarrage[/red] : {exc.message}")
        raise typer.Exit(1) from exc
    (wd / "hwsim.pid").write_text(str(launched.proc.pid))
    national_proc = _start_national(wd, national_port, detach) if national else None
    mss_env = _start_mss(wd, mss_port, detach) if mss else None
    _print_env(wd, launched.pcsc_socket, tokens, national_proc is not None, national_port)
    for name, value in (mss_env or {}).items():
        typer.echo(f"export {name}={value}")  # the daemon's MSSanté settings
    if detach:
        return
    console.print("Ctrl-C pour arrêter.")
    try:
        while launched.proc.poll() is None:
            time.sleep(0.5)  # foreground supervisor: nothing else to wait on
    except KeyboardInterrupt:
        pass
    finally:
        _stop(wd)
        launched.stop()


def _print_env(wd: Path, pcsc: Path, tokens: bool, national: bool, port: int) -> None:
    console.print(f"[green]hwsim prêt[/green] ({wd})")
    typer.echo("export LGO_MODE=bench")  # a production daemon refuses the simulator's settings
    typer.echo(f"export PCSCLITE_CSOCK_NAME={pcsc}")
    from hwsim.pkcs11 import opensc_module, write_opensc_conf

    module = opensc_module()  # the daemon's CPS module: OpenSC drives the virtual CPS card
    if module is not None:
        typer.echo(f"export LGO_HARDWARE__PKCS11_MODULE={module}")
        typer.echo(f"export OPENSC_CONF={write_opensc_conf(wd)}")  # CPS4 ATR for OpenSC 0.23
    if tokens:
        typer.echo(f"export SOFTHSM2_CONF={wd / 'softhsm' / 'softhsm2.conf'}")
    ca_file = wd / "cps-ca.pem"  # the test CAs, trusted by the daemon's CPS revocation check
    pki = TestPki()
    ca_file.write_bytes(pki.root.cert_pem + pki.ca.cert_pem)
    typer.echo(f"export LGO_HARDWARE__CPS_CA_FILE={ca_file}")
    typer.echo(f"# scanner série : {wd / 'scanner-serial'}")
    if national:
        typer.echo(f"export LGO_NATIONAL__BASE_URL=http://127.0.0.1:{port}")


STOP_WAIT_S = 20.0  # the runtime stops pcscd, the card host and the scanners before it exits


def _gone(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reap it when it is ours (foreground `up`)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def _stop(wd: Path) -> list[str]:
    """Stop this bench's processes and return once they have exited (bounded): a `hwsim up`
    right after must find the ports and the work folder free."""
    stopped: dict[int, str] = {}
    for name in ("mss", "national", "hwsim"):
        pid_file = wd / f"{name}.pid"
        if not pid_file.exists():
            continue
        pid = int(pid_file.read_text())
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)  # our own child, recorded by `up`
            stopped[pid] = f"{name} ({pid})"
        pid_file.unlink()
    deadline = time.monotonic() + STOP_WAIT_S
    while not all(_gone(pid) for pid in stopped) and time.monotonic() < deadline:
        time.sleep(0.1)  # no portable way to wait for a process that is not our child
    alive = [label for pid, label in stopped.items() if not _gone(pid)]
    if alive:
        fail(
            f"Toujours actif après {STOP_WAIT_S:.0f} s : {', '.join(alive)} ; relancez `hwsim down`."
        )
    return list(stopped.values())


@app.command()
def down(workdir: WorkdirOpt = None) -> None:
    """Arrêter le simulateur démarré par `hwsim up --detach`."""
    stopped = _stop(_workdir(workdir))
    console.print(f"Arrêté : {', '.join(stopped)}" if stopped else "Rien à arrêter.")


@app.command()
def status(
    workdir: WorkdirOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Sortie JSON brute.")] = False,
) -> None:
    """État : lecteurs, cartes, jetons, scanners, simulateurs nationaux et MSSanté."""
    data = _call(workdir, "status")
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    console.print(
        f"isolation [bold]{data['isolation']}[/bold]  pcscd pid {data['pcscd']['pid']} "
        f"(démarrages : {data['pcscd']['starts']})  socket {data['pcsc_socket']}"
    )
    table = Table("lecteur", "nom", "carte", "profil", "APDU", "pannes", "dernier évènement")
    for r in data["readers"]:
        card = r["card"] or {}
        faults = ", ".join(f"{k}={v}" for k, v in r["faults"].items() if v not in (None, 0, 0.0))
        name = r["name"] + (" [red](débranché)[/red]" if r["unplugged"] else "")
        table.add_row(
            str(r["index"]),
            name,
            str(card.get("kind", "—")),
            str(card.get("profile", "")),
            str(r["apdus"]),
            faults,
            r["last_event"],
        )
    console.print(table)
    tokens = Table("jeton", "numéro de série", "profil", "id. national")
    for t in data["tokens"]:
        tokens.add_row(t["label"], t["serial"], t["profile"], t["idnat"])
    console.print(tokens)
    scanners = Table("scanner", "périphérique", "lectures")
    for s in data["scanners"]:
        scanners.add_row(s["kind"], s["path"], str(s["scans"]))
    console.print(scanners)
    console.print(_simulators_table(_workdir(workdir)))


def _pid_alive(wd: Path, name: str) -> int | None:
    try:
        pid = int((wd / f"{name}.pid").read_text())
    except (FileNotFoundError, ValueError):
        return None
    return pid if Path(f"/proc/{pid}").exists() else None


def _simulators_table(wd: Path) -> Table:
    """The national HTTP simulator and the MSSanté SMTP simulator of this bench."""
    table = Table("simulateur", "adresse", "processus", "état")
    if (wd / "national.port").exists():
        port = recorded_port(wd, "national", NATIONAL_PORT)
        pid = _pid_alive(wd, "national")
        try:
            url = f"http://127.0.0.1:{port}/_sim/services"
            answered = httpx.get(url, timeout=2).status_code == 200
        except httpx.HTTPError:
            answered = False
        state = "[green]répond[/green]" if answered else "[red]ne répond pas[/red]"
        table.add_row("services nationaux", f"http://127.0.0.1:{port}", str(pid or "—"), state)
    else:  # `hwsim up --no-national`, or a bench started by the tests' fixtures
        table.add_row("services nationaux", "—", "—", "non démarrés par ce banc")
    mss_port = recorded_port(wd, "mss", MSS_PORT)
    mss_pid = _pid_alive(wd, "mss")
    mss_state = "[green]démarré[/green]" if mss_pid else "[red]arrêté[/red]"
    inbox = len(list((wd / "mss" / "inbox").glob("*.json")))
    table.add_row(
        "MSSanté (SMTP)",
        f"127.0.0.1:{mss_port}",
        str(mss_pid or "—"),
        f"{mss_state}, {inbox} message(s) reçu(s)",
    )
    return table


# ---------------------------------------------------------------------------------------------
# cards
# ---------------------------------------------------------------------------------------------
KindArg = Annotated[str, typer.Argument(help="vitale | cps | vitale1 | mute | error (6F 00)")]
ProfileArg = Annotated[str, typer.Argument(help="Profil (voir `hwsim profiles`).")]


@app.command()
def insert(
    kind: KindArg,
    profile: ProfileArg = "",
    reader: ReaderOpt = 0,
    cps4: Annotated[bool, typer.Option(help="ATR CPS4 (T=1).")] = False,
    workdir: WorkdirOpt = None,
) -> None:
    """Insérer une carte dans un lecteur."""
    slot = _call(workdir, "insert", kind, profile, reader, cps4)
    _wait_pcscd(workdir, slot["name"], present=True)
    console.print(f"Carte {slot['card']['kind']} insérée dans {slot['name']}")


@app.command()
def remove(reader: ReaderOpt = 0, workdir: WorkdirOpt = None) -> None:
    """Retirer la carte d'un lecteur."""
    slot = _call(workdir, "remove", reader)
    _wait_pcscd(workdir, slot["name"], present=False)
    console.print(f"Carte retirée de {slot['name']}")


@app.command()
def swap(
    kind: KindArg,
    profile: ProfileArg = "",
    reader: ReaderOpt = 0,
    cps4: Annotated[bool, typer.Option(help="ATR CPS4 (T=1).")] = False,
    workdir: WorkdirOpt = None,
) -> None:
    """Remplacer la carte d'un lecteur par une autre."""
    slot = _call(workdir, "swap", kind, profile, reader, cps4)
    _wait_pcscd(workdir, slot["name"], present=True)
    console.print(f"Carte {slot['card']['kind']} dans {slot['name']}")


@app.command()
def reset(workdir: WorkdirOpt = None) -> None:
    """Tout retirer, effacer les pannes, oublier les cartes CPS (code bloqué compris)."""
    # A blocked CPS stays blocked out and back in (its counter is on the card): this is how a
    # technician gets a fresh one, with new keys certified by the test PKI.
    _call(workdir, "reset")
    console.print("Lecteurs vidés, pannes effacées ; les cartes CPS seront neuves (3 essais).")


@app.command()
def scan(
    text: Annotated[str, typer.Argument(help="Contenu lu ; <GS> devient le caractère 0x1D.")],
    aim: Annotated[str | None, typer.Option(help="Préfixe AIM, ex. ]Q1, ]d2, ]E0.")] = None,
    scanner: Annotated[str, typer.Option(help="serial | wedge")] = "serial",
    workdir: WorkdirOpt = None,
) -> None:
    """Simuler une lecture de code (QR, DataMatrix, EAN-13…)."""
    _call(workdir, "scan", text.replace("<GS>", "\x1d"), aim, scanner)
    console.print(f"Scanner {scanner} : {aim or ''}{text} lu.", highlight=False, markup=False)


@app.command()
def profiles(workdir: WorkdirOpt = None) -> None:
    """Lister les profils de cartes (patients, professionnels)."""
    del workdir  # the profiles are the package's fixtures, the same for every bench
    people = load_people()
    table = Table("type", "profil", "personnes")
    for v in people.vitale.values():
        table.add_row("vitale", v.id, ", ".join(f"{b.prenom} {b.nom}" for b in v.beneficiaries))
    for p in people.professionals.values():
        table.add_row("cps", p.id, f"{p.prenom} {p.nom} — {p.profession}")
    console.print(table)


# ---------------------------------------------------------------------------------------------
# faults
# ---------------------------------------------------------------------------------------------
@fault_app.command("slow")
def fault_slow(
    delay: Annotated[float, typer.Option(help="Secondes par APDU.")],
    reader: ReaderOpt = 0,
    workdir: WorkdirOpt = None,
) -> None:
    """Carte lente : délai ajouté à chaque APDU."""
    _call(workdir, "set_fault", reader, delay_s=delay)
    console.print(f"Lecteur {reader} : {delay:g} s de délai par APDU.")


@fault_app.command("remove-after")
def fault_remove_after(
    apdus: Annotated[int, typer.Option(help="APDU servis avant l'arrachage.")],
    reader: ReaderOpt = 0,
    workdir: WorkdirOpt = None,
) -> None:
    """Carte arrachée pendant la lecture, après N APDU."""
    _call(workdir, "set_fault", reader, remove_after=apdus)
    console.print(f"Lecteur {reader} : la carte sera arrachée après {apdus} APDU.")


@fault_app.command("sw")
def fault_sw(
    sw: Annotated[str, typer.Option(help="Mot d'état, ex. 6F00.")],
    reader: ReaderOpt = 0,
    ins: Annotated[str | None, typer.Option(help="Seulement pour cette INS (hex).")] = None,
    workdir: WorkdirOpt = None,
) -> None:
    """Mauvais mot d'état renvoyé par la carte."""
    try:
        word, only = int(sw, 16), int(ins, 16) if ins else None
    except ValueError:
        fail(f"Valeur hexadécimale illisible : {sw!r} / {ins!r}.", 2)
    _call(workdir, "set_fault", reader, sw=word, ins=only)
    scope = f" à l'instruction {ins.upper()}" if ins else ""
    console.print(f"Lecteur {reader} : la carte répondra {sw.upper()}{scope}.")


@fault_app.command("clear")
def fault_clear(reader: ReaderOpt = 0, workdir: WorkdirOpt = None) -> None:
    """Effacer les pannes d'un lecteur."""
    _call(workdir, "clear_faults", reader)
    console.print(f"Lecteur {reader} : pannes effacées.")


@fault_app.command("unplug")
def fault_unplug(
    reader: ReaderOpt = 0,
    hard: Annotated[
        bool, typer.Option(help="Le lecteur disparaît de la liste (redémarre pcscd).")
    ] = False,
    workdir: WorkdirOpt = None,
) -> None:
    """Débrancher un lecteur."""
    _call(workdir, "unplug", reader, hard)
    console.print(f"Lecteur {reader} débranché{' (retiré de pcscd)' if hard else ''}.")


@fault_app.command("replug")
def fault_replug(reader: ReaderOpt = 0, workdir: WorkdirOpt = None) -> None:
    """Rebrancher un lecteur."""
    _call(workdir, "replug", reader)
    console.print(f"Lecteur {reader} rebranché.")


@fault_app.command("restart-pcscd")
def fault_restart(workdir: WorkdirOpt = None) -> None:
    """Redémarrer pcscd (les cartes présentes sont réinsérées)."""
    result = _call(workdir, "restart_pcscd")
    console.print(f"pcscd redémarré (pid {result['pid']})")


# ---------------------------------------------------------------------------------------------
# pkcs11 / national
# ---------------------------------------------------------------------------------------------
@pkcs11_app.command("provision")
def pkcs11_provision(workdir: WorkdirOpt = None) -> None:
    """Créer (ou recréer) les jetons SoftHSM des professionnels."""
    from hwsim.pkcs11 import MODULE, provision, softhsm_conf

    wd = _workdir(workdir)
    infos = provision(wd, list(load_people().professionals.values()))
    table = Table("jeton", "numéro de série", "profil")
    for info in infos:
        table.add_row(info.label, info.serial, info.profile)
    console.print(table)
    typer.echo(f"export SOFTHSM2_CONF={softhsm_conf(wd)}")
    typer.echo(f"# module PKCS#11 : {MODULE}")


# Click's usage errors, said in French (the English detail is dropped: the hint is the help).
USAGE_ERRORS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^No such command '(.+)'\.$"), r"commande inconnue : \1"),
    (re.compile(r"^Missing argument '(.+)'\.$"), r"argument manquant : \1"),
    (re.compile(r"^Missing option '(.+)'\.$"), r"option manquante : \1"),
    (re.compile(r"^No such option: (\S+).*$", re.DOTALL), r"option inconnue : \1"),
    (re.compile(r"^Invalid value for '(.+?)'.*$", re.DOTALL), r"valeur invalide pour \1"),
    (re.compile(r"^Option '(.+)' requires an argument\.$"), r"l'option \1 demande une valeur"),
    (
        re.compile(r"^Got unexpected extra argument(?:\(s\)|s)? \((.+)\)$"),
        r"argument(s) en trop : \1",
    ),
]


def _usage_error(exc: UsageError) -> NoReturn:
    message = exc.format_message()
    for pattern, french in USAGE_ERRORS:
        if pattern.match(message):
            message = pattern.sub(french, message)
            break
    where = exc.ctx.command_path if exc.ctx is not None else "hwsim"
    err_console.print(
        f"[red]hwsim[/red] : {message} (aide : `{where} --help`).", highlight=False, soft_wrap=True
    )
    raise SystemExit(2)


def main() -> None:
    """The `hwsim` command: every failure a technician can meet is one French line on stderr."""
    try:
        # Not standalone: Click's usage errors come here instead of its English box.
        code = app(standalone_mode=False)
    except UsageError as exc:
        _usage_error(exc)
    except Abort:
        _last_words("interrompu.")
    except (SimError, ControlError) as exc:
        _last_words(str(exc))
    except httpx.HTTPError as exc:
        _last_words(f"simulateur injoignable ({exc}).")
    except OSError as exc:
        _last_words(f"erreur système : {exc}.")
    raise SystemExit(code if isinstance(code, int) else 0)


def _last_words(message: str) -> None:
    err_console.print(f"[red]hwsim[/red] : {message}", highlight=False, soft_wrap=True)
    raise SystemExit(1)


if __name__ == "__main__":
    main()
