"""``lgo stats``: the services-socles dashboard in the terminal (rich tables) or as CSV.

Reads the database directly, like the other offline commands: the figures are those of
``GET /v1/stats`` except the professional session open right now in a running daemon (counted when
it closes) and national calls of the last two seconds (written by the daemon every two seconds).
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from lgo.core.errors import LgoError
from lgo.services.stats import FIGURES, Granularity, Report, report_csv, today_local

stats_app = typer.Typer(help="Tableau de bord des services socles (par jour ou par mois).")
DEFAULT_DAYS = 7


@stats_app.callback(invoke_without_command=True)
def show(
    day_from: Annotated[
        str | None, typer.Option("--from", help="AAAA-MM-JJ (défaut : J-6)")
    ] = None,
    day_to: Annotated[
        str | None, typer.Option("--to", help="AAAA-MM-JJ (défaut : aujourd'hui)")
    ] = None,
    by: Annotated[str, typer.Option(help="day ou month")] = "day",
    csv_file: Annotated[Path | None, typer.Option("--csv", help="Écrire l'export CSV ici.")] = None,
) -> None:
    """Afficher les chiffres d'usage des services nationaux et leurs échecs."""
    from lgo.cli.common import built_container, console, err_console, settings_or_exit

    if by not in ("day", "month"):
        err_console.print("[red]--by attend day ou month[/red]")
        raise typer.Exit(2)
    try:
        last = date.fromisoformat(day_to) if day_to else today_local()
        first = date.fromisoformat(day_from) if day_from else last - timedelta(DEFAULT_DAYS - 1)
    except ValueError:
        err_console.print("[red]Date attendue au format AAAA-MM-JJ[/red]")
        raise typer.Exit(2) from None
    granularity: Granularity = "day" if by == "day" else "month"
    with built_container(settings_or_exit()) as container:
        try:
            report = container.stats.service.report(first, last, granularity)
        except LgoError as exc:
            err_console.print(f"[red]{exc.title}[/red] {exc.detail or ''}")
            raise typer.Exit(2) from None
    if csv_file is not None:
        csv_file.write_bytes(report_csv(report).encode("utf-8"))  # CRLF rows kept as they are
        console.print(f"Export CSV écrit dans {csv_file}")
        return
    for table in figures_tables(report, console.width):
        console.print(table)
    console.print(failures_table(report))
    console.print(backlog_table(report))


def figures_tables(report: Report, width: int) -> list[Table]:
    """The figures × periods table, cut into as many tables as the terminal needs (the periods
    that fit its width each time; the total in the last one)."""
    label_width = max(len(label) for _, label in FIGURES) + 4
    column_width = max(len(_short(b.period)) for b in report.buckets) + 3
    per_table = max(1, (width - label_width - column_width) // column_width)
    chunks = [report.buckets[i : i + per_table] for i in range(0, len(report.buckets), per_table)]
    title = f"Services socles du {report.period.start} au {report.period.end}"
    tables = []
    for index, chunk in enumerate(chunks):
        last = index == len(chunks) - 1
        table = Table(title=title if index == 0 else None)
        table.add_column("Indicateur", no_wrap=True)
        for bucket in chunk:
            table.add_column(_short(bucket.period), justify="right", no_wrap=True)
        if last:
            table.add_column("Total", justify="right", style="bold", no_wrap=True)
        for name, label in FIGURES:
            values = [str(bucket.figures[name]) for bucket in chunk]
            table.add_row(label, *values, *([str(report.totals[name])] if last else []))
        tables.append(table)
    return tables


def _short(period: str) -> str:
    """``DD/MM`` for a day (the year is in the title), ``YYYY-MM`` for a month: narrow columns."""
    return f"{period[8:10]}/{period[5:7]}" if len(period) == 10 else period


def failures_table(report: Report) -> Table:
    table = Table(title="Échecs par erreur")
    for column in ("Source", "Erreur", "Nombre"):
        table.add_column(column, justify="right" if column == "Nombre" else "left")
    for failure in report.failures:
        table.add_row(failure.source, failure.error, str(failure.count))
    if not report.failures:
        table.add_row("—", "aucun échec", "0")
    return table


def backlog_table(report: Report) -> Table:
    table = Table(title="Files d'envoi (maintenant)")
    for column in ("File", "En attente", "En échec", "Plus ancien en attente"):
        table.add_column(column)
    for queue in report.backlog:
        oldest = (
            queue.oldest_pending_at.isoformat(timespec="seconds")
            if queue.oldest_pending_at
            else "—"
        )
        table.add_row(queue.queue, str(queue.pending), str(queue.failed), oldest)
    return table
