"""hwsim command line (placeholder until the hw-sim issue lands)."""

import typer

from hwsim import __version__

app = typer.Typer(help="Simulateur matériel et services nationaux pour lgo.")


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)
