"""``stream-al demo``: the embedded default, no broker needed."""

from __future__ import annotations

import typer

from consumers.cli import Cli


def register(cli: Cli) -> None:
    @cli.app.command()
    def demo() -> None:
        """Run the whole loop in one process on a simulated floor (no broker needed)."""
        typer.echo("stream-al demo: the embedded demo is coming (issue: observability and demo).")
