"""The ``lgo`` command."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from lgo import __version__
from lgo.cli import french  # noqa: F401 (Click's and Typer's texts in French)
from lgo.cli.catalog import catalog_app
from lgo.cli.common import (
    ConfigOption,
    State,
    console,
    err_console,
    migrated_db,
    settings_or_exit,
)
from lgo.cli.ordonnancier import dispensations_app, ordonnancier_app
from lgo.cli.stats import stats_app
from lgo.core.errors import LgoError
from lgo.core.settings import Settings, SettingsError
from lgo.store.db import Database

if TYPE_CHECKING:
    pass

app = typer.Typer(
    help="lgo — service de dispensation au comptoir (officine, Ségur numérique).",
    no_args_is_help=True,
    add_completion=False,
)
counters_app = typer.Typer(help="Postes de comptoir autorisés à appeler l'API (jetons).")
app.add_typer(counters_app, name="counters")
app.add_typer(ordonnancier_app, name="ordonnancier")
app.add_typer(dispensations_app, name="dispensations")
app.add_typer(stats_app, name="stats")
app.add_typer(catalog_app, name="catalog")


def _version(value: bool) -> None:
    if value:
        console.print(f"lgo {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    config: ConfigOption = None,
    version: Annotated[  # noqa: ARG001 (handled by its eager callback)
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Afficher la version."),
    ] = False,
) -> None:
    State.config = config


@app.command()
def serve(
    migrate_first: Annotated[
        bool, typer.Option("--migrate", help="Appliquer les migrations avant de démarrer.")
    ] = False,
    check_only: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Vérifier la configuration et la base, puis quitter sans "
            "servir (code 0 : le service démarrera).",
        ),
    ] = False,
) -> None:
    """Démarrer le service (API locale, lecteurs, file d'envoi)."""
    from lgo.api.server import serve as run
    from lgo.store import migrate

    settings = settings_or_exit()
    _refuse_bench_settings_in_production(settings)
    # Whatever the daemon writes (database, exports, logs) is the service user's alone, also
    # when started from a terminal with umask 022 (the unit sets UMask=0077 too).
    os.umask(0o077)
    settings.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    db = Database(settings.database_url, busy_timeout_ms=settings.database.busy_timeout_ms)
    try:
        if migrate_first:
            migrate.upgrade(db)
        migrate.check(db)
    except LgoError as exc:
        err_console.print(f"[red]{exc.title}[/red] ({exc.detail})")
        raise typer.Exit(3) from None
    finally:
        db.dispose()
    if check_only:
        console.print("Configuration et base prêtes : le service peut démarrer.")
        return
    # deploy (issue 12): serve the API socket passed by systemd (lgo.socket), if any.
    from lgo.runtime.supervision import activated_socket

    try:
        sock = activated_socket(settings)
    except SettingsError as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    run(settings, sock=sock)


def _refuse_bench_settings_in_production(settings: Settings) -> None:
    from lgo.core.production import missing_files, production_problems, refusal_message

    missing = missing_files(settings)
    if missing:
        lines = "\n".join(f"  - {line}" for line in missing)
        typer.echo(f"Fichiers de la configuration absents :\n{lines}", err=True)
        raise typer.Exit(2)
    if settings.mode != "production":
        return
    problems = production_problems(settings)
    if problems:
        typer.echo(refusal_message(problems), err=True)  # unwrapped: one setting per line
        raise typer.Exit(2)


@app.command()
def migrate() -> None:
    """Créer ou mettre à jour le schéma de la base de données."""
    from lgo.store import migrate as migrations

    settings = settings_or_exit()
    settings.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    db = Database(settings.database_url)
    try:
        migrations.upgrade(db)
        heads = sorted(migrations.current_heads(db))
    finally:
        db.dispose()
    console.print(f"[green]Base à jour[/green] ({db.dialect}) : {', '.join(heads)}")


@counters_app.command("add")
def counters_add(
    name: Annotated[str, typer.Argument(help="Nom du poste, ex. comptoir-1.")],
) -> None:
    """Créer un poste et afficher son jeton (une seule fois)."""
    from lgo.services.counters import add_counter

    settings = settings_or_exit()
    db = migrated_db(settings)
    try:
        info, token = add_counter(db, name)
    except LgoError as exc:
        err_console.print(f"[red]{exc.title}[/red] : {exc.detail}")
        raise typer.Exit(1) from None
    finally:
        db.dispose()
    err_console.print(f"Poste [bold]{info.name}[/bold] créé. Jeton (affiché une seule fois) :")
    typer.echo(token)


@counters_app.command("list")
def counters_list() -> None:
    """Lister les postes (jamais les jetons)."""
    from lgo.services.counters import list_counters

    settings = settings_or_exit()
    db = migrated_db(settings)
    try:
        rows = list_counters(db)
    finally:
        db.dispose()
    table = Table("id", "nom", "début du jeton", "créé le", "révoqué le")
    for row in rows:
        revoked = row.revoked_at.isoformat(timespec="seconds") if row.revoked_at else "-"
        table.add_row(
            str(row.id),
            row.name,
            row.token_prefix + "…",
            row.created_at.isoformat(timespec="seconds"),
            revoked,
        )
    console.print(table)


@counters_app.command("revoke")
def counters_revoke(name: str) -> None:
    """Révoquer le jeton d'un poste (effet immédiat sur chaque service lgo)."""
    from lgo.services.counters import revoke

    settings = settings_or_exit()
    db = migrated_db(settings)
    try:
        done = revoke(db, name)
    except LgoError as exc:
        err_console.print(f"[red]{exc.title}[/red] : {exc.detail}")
        raise typer.Exit(1) from None
    finally:
        db.dispose()
    console.print(f"Poste [bold]{done.counter.name}[/bold] révoqué.")
    if done.unconfirmed:  # PostgreSQL: docs/api.md, "Authentification"
        err_console.print(
            f"[yellow]{done.unconfirmed} service(s) lgo n'ont pas confirmé[/yellow] : ils "
            "refuseront ce jeton dès que leur connexion à la base sera rétablie."
        )


@app.command()
def doctor() -> None:
    """Vérifier l'installation : chaque contrôle en vert ou en rouge, avec la raison."""
    from lgo.doctor import run_checks

    settings = settings_or_exit()
    results = run_checks(settings)
    table = Table("", "contrôle", "détail")
    for result in results:
        if result.info:
            mark = "[blue]INFO[/blue]"
        else:
            mark = "[green]OK[/green]" if result.ok else "[red]KO[/red]"
        table.add_row(mark, result.name, result.detail)
    console.print(table)
    failed = sum(not r.ok for r in results)
    if failed:
        err_console.print(
            f"[red]{failed} contrôle(s) en rouge[/red] : chaque ligne dit quoi faire."
        )
        raise typer.Exit(1)
    console.print("[green]Tout est en ordre.[/green]")
