"""The ``ivy-gateway`` command line. Composition root: may import every layer."""

from __future__ import annotations

import typer

from ivy_gateway import __version__

app = typer.Typer(
    name="ivy-gateway",
    help="Gateway for 4G electricity meters (DL/T 645-2007 and DLMS/COSEM over TCP).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ivy-gateway {__version__}")
        raise typer.Exit


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Gateway for 4G electricity meters (DL/T 645-2007 and DLMS/COSEM over TCP)."""


def main() -> None:
    app()
