"""``stream-al run``: the daemon."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from consumers.cli import Cli

ConfigOption = Annotated[Path | None, typer.Option(
    "--config", help="YAML/TOML/JSON settings file (default: $STREAM_AL_CONFIG)")]


def register(cli: Cli) -> None:
    @cli.app.command()
    def run(config: ConfigOption = None) -> None:
        """Consume records, predict, query the oracle within budget, learn from labels."""
        from consumers.daemon.loop import Daemon
        from consumers.settings import load_settings
        from stream_al.errors import StreamAlError

        try:
            settings = load_settings(config)
        except StreamAlError as error:
            typer.echo(f"stream-al run: {error}", err=True)
            raise typer.Exit(2) from None
        logging.basicConfig(level=settings.log_level,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        # kafka-python narrates every connection at INFO; its warnings still show.
        logging.getLogger("kafka").setLevel(max(logging.WARNING, logging.root.level))
        daemon = Daemon(settings)
        daemon.install_signal_handlers()
        try:
            raise typer.Exit(daemon.run())
        except StreamAlError as error:
            typer.echo(f"stream-al run: {error}", err=True)
            raise typer.Exit(1) from None
