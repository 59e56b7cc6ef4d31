"""``lgo catalog``: import the public drug database (BDPM) into the product catalogue, look a pack
up. The daemon reads the catalogue at start: restart it after an import."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

catalog_app = typer.Typer(help="Catalogue des produits (import de la base publique BDPM).")


@catalog_app.command("import-bdpm")
def import_bdpm(
    folder: Annotated[
        Path,
        typer.Argument(
            help="Dossier des fichiers BDPM (CIS_bdpm.txt, CIS_CIP_bdpm.txt, CIS_GENER_bdpm.txt, "
            "CIS_COMPO_bdpm.txt, CIS_CPD_bdpm.txt).",
            exists=True,
            file_okay=False,
        ),
    ],
) -> None:
    """Remplacer le catalogue par celui des fichiers BDPM (inchangé en cas d'erreur)."""
    from lgo.cli.common import console, err_console, settings_or_exit
    from lgo.services.bdpm import BdpmError
    from lgo.services.bdpm import import_bdpm as run_import

    # Not the composition root: the catalogue is files in state_dir (no database), and an import
    # must work before the first `lgo migrate` (the daemon reads it at start).
    settings = settings_or_exit()
    try:
        summary = run_import(folder, settings.state_dir)
    except (BdpmError, OSError) as exc:
        err_console.print(f"[red]Import BDPM impossible[/red] : {exc}")
        raise typer.Exit(1) from None
    console.print(
        f"Catalogue importé : {summary.products} produit(s), {summary.packs} présentation(s), "
        f"{summary.generic_groups} groupe(s) générique(s), {summary.skipped_rows} ligne(s) "
        f"ignorée(s) → {summary.path}. Redémarrer le service pour le prendre en compte."
    )


@catalog_app.command("show")
def show(cip13: Annotated[str, typer.Argument(help="Code CIP13 de la présentation.")]) -> None:
    """Afficher la fiche d'une présentation du catalogue (code 1 si inconnue)."""
    from lgo.cli.common import console, err_console, settings_or_exit
    from lgo.services.bdpm import find_pack
    from lgo.services.prescriptions import CatalogError

    settings = settings_or_exit()  # files in state_dir, no database: see import_bdpm
    try:
        found = find_pack(settings.state_dir, cip13.strip())
    except CatalogError as exc:
        err_console.print(f"[red]Catalogue illisible[/red] : {exc}")
        raise typer.Exit(1) from None
    if found is None:
        err_console.print(f"CIP13 {cip13} absent du catalogue.")
        raise typer.Exit(1)
    product, pack, generic_type = found
    rows = [
        ("CIP13", pack.cip13),
        ("Présentation", pack.label or "—"),
        ("Unités par boîte", str(pack.units)),
        ("Conditionnement", pack.form.value),
        ("Prix", f"{pack.price_cents / 100:.2f} €".replace(".", ",")),
        ("Spécialité (CIS)", product.code),
        ("Dénomination", product.name),
        ("Substance(s)", product.molecule or "—"),
        ("Groupe générique", product.generic_group or "—"),
        ("Type", generic_type or "—"),
        ("Liste", product.regulatory_list.value),
    ]
    for name, value in rows:
        console.print(f"{name} : {value}", highlight=False)
