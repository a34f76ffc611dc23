"""``stream-al config show``: the effective settings, secrets masked."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from consumers.cli import Cli


def register(cli: Cli) -> None:
    @cli.config.command("show")
    def show(
        config: Annotated[Path | None, typer.Option(
            "--config", help="settings file (default: $STREAM_AL_CONFIG)")] = None,
        output: Annotated[str, typer.Option("--format", help="yaml or json")] = "yaml",
    ) -> None:
        """Print the settings the daemon would run with (file + environment)."""
        import json

        import yaml

        from consumers.settings import load_settings, masked
        from stream_al.errors import ConfigError

        try:
            settings = load_settings(config)
        except ConfigError as error:
            typer.echo(f"stream-al config show: {error}", err=True)
            raise typer.Exit(2) from None
        data = masked(settings)
        if output == "json":
            typer.echo(json.dumps(data, indent=2))
        else:
            typer.echo(yaml.safe_dump(data, sort_keys=False).rstrip())
