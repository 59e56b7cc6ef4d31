"""``hwsim psc ...``: the technician's phone for Pro Santé Connect sign-ins on a bench.

Talks to a running simulator over HTTP (``--url``, default the simulator's loopback address):
list pending CIBA sign-in requests, approve / refuse / expire them, or spoil the next ID token to
check that the daemon refuses it. Register with ``app.add_typer(psc_cli.app, name="psc")``.
"""

from __future__ import annotations

from typing import Annotated

import httpx
import typer

DEFAULT_URL = "http://127.0.0.1:8765"
TIMEOUT_S = 5.0

app = typer.Typer(help="Pro Santé Connect simulé : demandes de connexion e-CPS (CIBA).")

UrlOption = Annotated[str, typer.Option("--url", help="Adresse du simulateur national.")]
RppsOption = Annotated[
    str | None,
    typer.Option("--rpps", help="Seulement les demandes de ce professionnel (RPPS ou 8+RPPS)."),
]


def _login_hint(rpps: str | None) -> str | None:
    if rpps is None:
        return None
    return rpps if len(rpps) == 12 else "8" + rpps


def _decide(url: str, decision: str, rpps: str | None) -> None:
    body = {"decision": decision, "login_hint": _login_hint(rpps)}
    response = httpx.post(f"{url}/_sim/psc/ciba/decide", json=body, timeout=TIMEOUT_S)
    response.raise_for_status()
    changed = response.json()["changed"]
    typer.echo(f"{len(changed)} demande(s) : {decision}")
    if not changed:
        raise typer.Exit(1)


@app.command()
def pending(url: UrlOption = DEFAULT_URL) -> None:
    """Lister les demandes de connexion en attente (ce que le téléphone afficherait)."""
    response = httpx.get(f"{url}/_sim/psc/ciba", timeout=TIMEOUT_S)
    response.raise_for_status()
    for item in response.json():
        message = item.get("binding_message") or "-"
        typer.echo(f"{item['login_hint']}  {message}  expire dans {item['expires_in']} s")


@app.command()
def approve(url: UrlOption = DEFAULT_URL, rpps: RppsOption = None) -> None:
    """Accepter la connexion sur le téléphone."""
    _decide(url, "approve", rpps)


@app.command()
def refuse(url: UrlOption = DEFAULT_URL, rpps: RppsOption = None) -> None:
    """Refuser la connexion sur le téléphone."""
    _decide(url, "refuse", rpps)


@app.command()
def expire(url: UrlOption = DEFAULT_URL, rpps: RppsOption = None) -> None:
    """Laisser la demande expirer sans réponse."""
    _decide(url, "expire", rpps)


@app.command()
def spoil(
    kind: Annotated[str, typer.Argument(
        help="bad_signature | wrong_audience | wrong_issuer | expired | wrong_nonce"
    )],
    url: UrlOption = DEFAULT_URL,
) -> None:
    """Gâcher le prochain jeton d'identité émis (le démon doit le refuser)."""
    response = httpx.post(f"{url}/_sim/psc/tokens/next", json={"spoil": kind}, timeout=TIMEOUT_S)
    if response.status_code == 422:
        typer.echo(f"type inconnu : {kind}", err=True)
        raise typer.Exit(2)
    response.raise_for_status()
    typer.echo(f"prochain jeton : {kind}")
