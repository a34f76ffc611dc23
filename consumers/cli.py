"""The ``stream-al`` command line.

Each command imports its heavy dependencies (River, Kafka) inside its body so that
``stream-al --help`` answers at once.
"""

from __future__ import annotations

import typer

from stream_al import __version__

app = typer.Typer(
    name="stream-al",
    help="Streaming active learning for ATE test floors.",
    no_args_is_help=True,
    add_completion=False,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"stream-al {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """Streaming active learning for ATE test floors."""


@app.command()
def demo() -> None:
    """Run the whole loop in one process on a simulated floor (no broker needed)."""
    typer.echo("stream-al demo: the embedded demo is coming (issue: observability and demo).")


def main() -> None:
    app()
