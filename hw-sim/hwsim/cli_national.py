"""`hwsim national …` and `hwsim mss …`: the bench's simulated national services for technicians.

Every command talks to the simulators of its work folder (the ports `hwsim up` recorded there),
says what it did, and fails with one French line.
"""

from __future__ import annotations

import email
import email.policy
import json
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.table import Table

from hwsim.cli_common import WorkdirOpt, console, fail, national_url, sim_request, workdir_of

PARIS = ZoneInfo("Europe/Paris")
SERVICES_HELP = "eprescription | apcv | insi | psc | annuaire | dmp"

national_app = typer.Typer(
    help="Services nationaux simulés : journal, pannes, horloge.", no_args_is_help=True
)
fault_app = typer.Typer(help="Pannes des services nationaux simulés.", no_args_is_help=True)
clock_app = typer.Typer(help="Horloge des services nationaux simulés.", no_args_is_help=True)
mss_app = typer.Typer(help="MSSanté simulé (SMTP).", no_args_is_help=True)
national_app.add_typer(fault_app, name="fault")
national_app.add_typer(clock_app, name="clock")

UrlOpt = Annotated[
    str | None,
    typer.Option("--url", help="Adresse du simulateur (défaut : celui du dossier de travail)."),
]


@national_app.command("log")
def national_log(
    service: Annotated[str | None, typer.Option(help="Filtrer par service.")] = None,
    workdir: WorkdirOpt = None,
    url: UrlOpt = None,
) -> None:
    """Requêtes reçues par les services nationaux simulés (enregistreur)."""
    params = {"service": service} if service else {}
    entries = sim_request("GET", national_url(workdir, url), "/_sim/recorder", params=params)
    typer.echo(json.dumps(entries, indent=2, ensure_ascii=False))


@national_app.command("services")
def national_services(workdir: WorkdirOpt = None, url: UrlOpt = None) -> None:
    """Services simulés et leurs préfixes."""
    base = national_url(workdir, url)
    for item in sim_request("GET", base, "/_sim/services"):
        typer.echo(f"{item['name']:<14} {base}{item['prefix']}")


# ---------------------------------------------------------------------------------------------
# faults
# ---------------------------------------------------------------------------------------------
@fault_app.command("add")
def fault_add(
    service: Annotated[str, typer.Argument(help=SERVICES_HELP)],
    kind: Annotated[
        str, typer.Argument(help="latency | timeout | error | malformed | duplicate | outage")
    ],
    method: Annotated[str | None, typer.Option(help="Seulement cette méthode (POST…).")] = None,
    path_contains: Annotated[
        str | None, typer.Option(help="Seulement les chemins contenant ce texte.")
    ] = None,
    times: Annotated[
        int, typer.Option(help="Nombre d'appels touchés (0 : jusqu'à `clear`).", min=0)
    ] = 1,
    delay: Annotated[float, typer.Option(help="Secondes (latency, timeout).", min=0)] = 0.0,
    status: Annotated[int, typer.Option(help="Code HTTP (error).")] = 503,
    duration: Annotated[float, typer.Option(help="Durée de la panne en s (outage).")] = 60.0,
    workdir: WorkdirOpt = None,
    url: UrlOpt = None,
) -> None:
    """Armer une panne sur un service national simulé."""
    spec: dict[str, Any] = {
        "service": service,
        "kind": kind,
        "method": method,
        "path_contains": path_contains,
        "times": times or None,
        "delay_s": delay,
        "status": status,
        "duration_s": duration,
    }
    _known_service(service, workdir, url)
    fault = sim_request("POST", national_url(workdir, url), "/_sim/faults", json_body=spec)
    console.print(f"Panne n° {fault['id']} armée : {_describe(fault)}")


@fault_app.command("list")
def fault_list(workdir: WorkdirOpt = None, url: UrlOpt = None) -> None:
    """Pannes armées."""
    faults = sim_request("GET", national_url(workdir, url), "/_sim/faults")
    if not faults:
        console.print("Aucune panne armée.")
        return
    table = Table("n°", "panne")
    for fault in faults:
        table.add_row(str(fault["id"]), _describe(fault))
    console.print(table)


@fault_app.command("clear")
def fault_clear(
    service: Annotated[str | None, typer.Option(help="Seulement ce service.")] = None,
    workdir: WorkdirOpt = None,
    url: UrlOpt = None,
) -> None:
    """Effacer les pannes (toutes, ou celles d'un service)."""
    params = {"service": service} if service else {}
    done = sim_request("DELETE", national_url(workdir, url), "/_sim/faults", params=params)
    console.print(f"{done['cleared']} panne(s) effacée(s).")


def _known_service(service: str, workdir: Path | None, url: str | None) -> None:
    names = [s["name"] for s in sim_request("GET", national_url(workdir, url), "/_sim/services")]
    if service not in names:
        fail(f"Service inconnu : {service} (services : {', '.join(names)}).", 2)


def _describe(fault: dict[str, Any]) -> str:
    spec = fault["spec"]
    what = f"{spec['service']} {spec['kind']}"
    if spec["kind"] == "error":
        what += f" {spec['status']}"
    if spec["kind"] in ("latency", "timeout") and spec["delay_s"]:
        what += f" {spec['delay_s']:g} s"
    if spec["kind"] == "outage":
        what += f" pendant {spec['duration_s']:g} s"
    scope = " ".join(x for x in (spec.get("method"), spec.get("path_contains")) if x)
    remaining = fault.get("remaining")
    count = "jusqu'à effacement" if remaining is None else f"{remaining} appel(s) restant(s)"
    return f"{what}{' ' + scope if scope else ''}, {count}"


# ---------------------------------------------------------------------------------------------
# clock
# ---------------------------------------------------------------------------------------------
def _print_clock(state: dict[str, Any]) -> None:
    now = datetime.fromisoformat(state["now"]).astimezone(PARIS)
    mode = "figée" if state.get("frozen", True) else "heure réelle"
    console.print(f"Horloge du simulateur : {now:%d/%m/%Y %H:%M:%S} (Paris, {mode})")


@clock_app.command("show")
def clock_show(workdir: WorkdirOpt = None, url: UrlOpt = None) -> None:
    """Afficher l'heure du simulateur."""
    _print_clock(sim_request("GET", national_url(workdir, url), "/_sim/clock"))


@clock_app.command("set")
def clock_set(
    moment: Annotated[
        str, typer.Argument(help="Date et heure ISO, ex. 2026-12-03T09:30 (heure de Paris).")
    ],
    workdir: WorkdirOpt = None,
    url: UrlOpt = None,
) -> None:
    """Figer l'horloge du simulateur à une date et une heure."""
    try:
        at = datetime.fromisoformat(moment)
    except ValueError:
        fail(f"Date illisible : {moment!r} (attendu : AAAA-MM-JJTHH:MM).", 2)
    if at.tzinfo is None:
        at = at.replace(tzinfo=PARIS)
    base = national_url(workdir, url)
    sim_request("POST", base, "/_sim/clock", json_body={"now": at.isoformat()})
    _print_clock(sim_request("GET", base, "/_sim/clock"))


@clock_app.command("advance")
def clock_advance(
    seconds: Annotated[float, typer.Argument(help="Secondes (négatif : reculer).")],
    workdir: WorkdirOpt = None,
    url: UrlOpt = None,
) -> None:
    """Avancer l'horloge du simulateur (elle reste figée ensuite)."""
    base = national_url(workdir, url)
    sim_request("POST", base, "/_sim/clock", json_body={"advance_s": seconds})
    _print_clock(sim_request("GET", base, "/_sim/clock"))


@clock_app.command("reset")
def clock_reset(workdir: WorkdirOpt = None, url: UrlOpt = None) -> None:
    """Revenir à l'heure réelle."""
    base = national_url(workdir, url)
    sim_request("POST", base, "/_sim/clock", json_body={"now": None})
    _print_clock(sim_request("GET", base, "/_sim/clock"))


# ---------------------------------------------------------------------------------------------
# MSSanté mailbox
# ---------------------------------------------------------------------------------------------
def _inbox(workdir: Path | None) -> Path:
    return workdir_of(workdir) / "mss" / "inbox"


def _read_message(envelope_file: Path) -> tuple[dict[str, Any], EmailMessage]:
    envelope = json.loads(envelope_file.read_text(encoding="utf-8"))
    raw = envelope_file.with_suffix(".eml").read_bytes()
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return envelope, message


@mss_app.command("inbox")
def mss_inbox(
    show: Annotated[
        int | None, typer.Option(help="Afficher le message n° N en entier (texte).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Sortie JSON.")] = False,
    workdir: WorkdirOpt = None,
) -> None:
    """Messages reçus par le MSSanté simulé de ce banc."""
    files = sorted(_inbox(workdir).glob("*.json"))
    if show is not None:
        _show_message(files, show)
        return
    rows = [_summary(int(f.stem), *_read_message(f)) for f in files]
    if as_json:
        typer.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    if not rows:
        console.print(f"Boîte vide ({_inbox(workdir)}).")
        return
    table = Table("n°", "de", "à", "objet", "pièces jointes")
    for row in rows:
        table.add_row(
            str(row["number"]),
            row["from"],
            ", ".join(row["to"]),
            row["subject"],
            ", ".join(row["attachments"]),
        )
    console.print(table)


def _summary(number: int, envelope: dict[str, Any], message: EmailMessage) -> dict[str, Any]:
    return {
        "number": number,
        "from": envelope["mail_from"],
        "to": envelope["rcpt_tos"],
        "subject": str(message.get("Subject", "")),
        "attachments": [part.get_filename() or "?" for part in message.iter_attachments()],
        "client_certificate": envelope["peer_subject"],
    }


def _show_message(files: list[Path], number: int) -> None:
    wanted = [f for f in files if int(f.stem) == number]
    if not wanted:
        fail(f"Pas de message n° {number} dans la boîte ({len(files)} message(s)).")
    envelope, message = _read_message(wanted[0])
    summary = _summary(number, envelope, message)
    typer.echo(f"De : {summary['from']}\nÀ : {', '.join(summary['to'])}")
    typer.echo(f"Objet : {summary['subject']}\nCertificat client : {summary['client_certificate']}")
    body = message.get_body(preferencelist=("plain", "html"))
    typer.echo("\n" + (body.get_content() if body is not None else "(pas de texte)"))
    for name in summary["attachments"]:
        typer.echo(f"[pièce jointe] {name}")
