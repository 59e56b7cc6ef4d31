"""``lgo ordonnancier``: prove the hash chain, export by patient / medicine / chronology."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from lgo.services.ordonnancier import ExportOrder

ordonnancier_app = typer.Typer(help="Ordonnancier : vérification de la chaîne et éditions.")


@ordonnancier_app.command("verify")
def verify() -> None:
    """Vérifier la chaîne d'intégrité (code 1 et première inscription altérée sinon)."""
    from lgo.cli.common import built_container, console, err_console, settings_or_exit
    from lgo.services import ordonnancier

    with built_container(settings_or_exit()) as container:
        report = ordonnancier.verify(container.db)
    if report.ok:
        console.print(f"[green]Ordonnancier intègre[/green] : {report.checked} inscription(s).")
        return
    err_console.print(
        f"[red]Ordonnancier altéré[/red] : première inscription en cause n° {report.first_broken} "
        f"({report.problem}) ; {report.checked} inscription(s) vérifiée(s) avant."
    )
    raise typer.Exit(1)


@ordonnancier_app.command("export")
def export(
    output: Annotated[Path, typer.Argument(help="Fichier à écrire (.csv ou .html).")],
    order: Annotated[ExportOrder, typer.Option(help="Ordre d'édition.")] = (
        ExportOrder.CHRONOLOGICAL
    ),
    patient_id: Annotated[str | None, typer.Option(help="Un seul patient.")] = None,
    product_code: Annotated[str | None, typer.Option(help="Un seul médicament.")] = None,
    day_from: Annotated[str | None, typer.Option("--from", help="AAAA-MM-JJ")] = None,
    day_to: Annotated[str | None, typer.Option("--to", help="AAAA-MM-JJ")] = None,
) -> None:
    """Éditer l'ordonnancier en CSV ou en HTML imprimable (nom et adresse sur chaque page)."""
    from lgo.cli.common import built_container, console, settings_or_exit
    from lgo.services import ordonnancier

    settings = settings_or_exit()
    with built_container(settings) as container:
        q = ordonnancier.Query(
            patient_id,
            product_code,
            date.fromisoformat(day_from) if day_from else None,
            date.fromisoformat(day_to) if day_to else None,
            limit=10_000_000,
        )
        entries = ordonnancier.query(container.db, q, order)
    if output.suffix.lower() == ".csv":
        output.write_text(ordonnancier.to_csv(entries), encoding="utf-8")
    else:
        pharmacy = settings.pharmacy
        text = ordonnancier.to_html(entries, pharmacy.name, pharmacy.address, order)
        output.write_text(text, encoding="utf-8")
    console.print(f"{len(entries)} inscription(s) écrite(s) dans {output}")


dispensations_app = typer.Typer(help="Dispensations : export de portabilité (FHIR R4).")


@dispensations_app.command("export-fhir")
def export_fhir(
    output: Annotated[Path, typer.Argument(help="Fichier NDJSON à écrire (un Bundle par ligne).")],
    patient_id: Annotated[str | None, typer.Option(help="Un seul patient.")] = None,
) -> None:
    """Exporter chaque dispensation en Bundle FHIR R4 de MedicationDispense (validé)."""
    import json
    from dataclasses import asdict

    from lgo.cli.common import built_container, console, settings_or_exit
    from lgo.services.fhir_export import dispensation_bundle

    with (
        built_container(settings_or_exit()) as container,
        output.open("w", encoding="utf-8") as out,
    ):
        bodies = container.dispensing.service.list(patient_id=patient_id, limit=10_000_000)
        identity = container.identity.service  # the patient's qualified INS, as the API adds it
        for body in reversed(bodies):  # oldest first
            bundle = dispensation_bundle(asdict(body), identity)
            out.write(json.dumps(bundle, ensure_ascii=False) + "\n")
    console.print(f"{len(bodies)} dispensation(s) exportée(s) dans {output}")
