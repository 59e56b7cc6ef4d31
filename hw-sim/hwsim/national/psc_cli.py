"""``hwsim psc ...``: the technician's phone for Pro Santé Connect sign-ins on a bench.

Talks to the national simulator of the bench's work folder over HTTP (or ``--url``):
list pending CIBA sign-in requests, approve / refuse / expire them, or spoil the next ID token to
check that the daemon refuses it. Register with ``app.add_typer(psc_cli.app, name="psc")``.
"""

from __future__ import annotations

from typing import Annotated

import typer

from hwsim.cli_common import WorkdirOpt, fail, national_url, sim_request

app = typer.Typer(
    help="Pro Santé Connect simulé : demandes de connexion e-CPS (CIBA).", no_args_is_help=True
)

UrlOption = Annotated[
    str | None,
    typer.Option("--url", help="Adresse du simulateur national (défaut : celui du banc)."),
]
RppsOption = Annotated[
    str | None,
    typer.Option("--rpps", help="Seulement les demandes de ce professionnel (RPPS ou 8+RPPS)."),
]


def _login_hint(rpps: str | None) -> str | None:
    if rpps is None:
        return None
    return rpps if len(rpps) == 12 else "8" + rpps


DECISIONS = {"approve": "acceptée(s)", "refuse": "refusée(s)", "expire": "expirée(s)"}


def _decide(url: str, decision: str, rpps: str | None) -> None:
    body = {"decision": decision, "login_hint": _login_hint(rpps)}
    changed = sim_request("POST", url, "/_sim/psc/ciba/decide", json_body=body)["changed"]
    if not changed:
        fail("Aucune demande de connexion en attente.")
    typer.echo(f"{len(changed)} demande(s) {DECISIONS[decision]}")


@app.command()
def pending(url: UrlOption = None, workdir: WorkdirOpt = None) -> None:
    """Lister les demandes de connexion en attente (ce que le téléphone afficherait)."""
    items = sim_request("GET", national_url(workdir, url), "/_sim/psc/ciba")
    if not items:
        typer.echo("Aucune demande en attente.")
    for item in items:
        message = item.get("binding_message") or "-"
        typer.echo(f"{item['login_hint']}  {message}  expire dans {item['expires_in']} s")


@app.command()
def approve(url: UrlOption = None, rpps: RppsOption = None, workdir: WorkdirOpt = None) -> None:
    """Accepter la connexion sur le téléphone."""
    _decide(national_url(workdir, url), "approve", rpps)


@app.command()
def refuse(url: UrlOption = None, rpps: RppsOption = None, workdir: WorkdirOpt = None) -> None:
    """Refuser la connexion sur le téléphone."""
    _decide(national_url(workdir, url), "refuse", rpps)


@app.command()
def expire(url: UrlOption = None, rpps: RppsOption = None, workdir: WorkdirOpt = None) -> None:
    """Laisser la demande expirer sans réponse."""
    _decide(national_url(workdir, url), "expire", rpps)


SPOILS = ("bad_signature", "wrong_audience", "wrong_issuer", "expired", "wrong_nonce")


@app.command()
def spoil(
    kind: Annotated[
        str,
        typer.Argument(
            help="bad_signature | wrong_audience | wrong_issuer | expired | wrong_nonce"
        ),
    ],
    url: UrlOption = None,
    workdir: WorkdirOpt = None,
) -> None:
    """Gâcher le prochain jeton d'identité émis (le démon doit le refuser)."""
    if kind not in SPOILS:
        fail(f"Type inconnu : {kind} (types : {', '.join(SPOILS)}).", 2)
    body = {"spoil": kind}
    sim_request("POST", national_url(workdir, url), "/_sim/psc/tokens/next", json_body=body)
    typer.echo(f"Prochain jeton d'identité gâché : {kind}")
