"""What every ``lgo`` subcommand shares: the consoles, the settings, the composition root."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from lgo.core.errors import LgoError
from lgo.core.logs import configure_logging
from lgo.core.settings import Settings, SettingsError, load_settings
from lgo.store.db import Database

if TYPE_CHECKING:
    from lgo.bootstrap import Container

console = Console()
err_console = Console(stderr=True)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="Fichier TOML de configuration (sinon LGO_CONFIG).",
        show_default=False,
    ),
]


class State:
    config: Path | None = None


def settings_or_exit() -> Settings:
    try:
        settings = load_settings(State.config)
    except SettingsError as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    configure_logging(settings.logging.level, settings.logging.json_output)
    return settings


@contextlib.contextmanager
def built_container(settings: Settings) -> Iterator[Container]:
    """The daemon's composition root on a migrated database, for a command: no worker starts."""
    from lgo.bootstrap import Container

    container = Container(settings, migrated_db(settings))
    try:
        yield container
    finally:
        container.db.dispose()


def migrated_db(settings: Settings) -> Database:
    from lgo.store import migrate as migrations

    db = Database(settings.database_url)
    try:
        migrations.check(db)
    except LgoError as exc:
        db.dispose()
        err_console.print(f"[red]{exc.title}[/red] ({exc.detail})")
        raise typer.Exit(3) from None
    return db
