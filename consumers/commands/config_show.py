"""``stream-al config show``: the effective settings, secrets masked."""

from __future__ import annotations

from typing import Annotated

import typer

from consumers.cli import Cli
from consumers.commands._options import ConfigOption, settings_or_exit


def register(cli: Cli) -> None:
    @cli.config.command("show")
    def show(
        config: ConfigOption = None,
        output: Annotated[str, typer.Option("--format", help="yaml or json")] = "yaml",
    ) -> None:
        """Print the settings the daemon would run with (file + environment)."""
        import json

        import yaml

        from consumers.settings import masked

        data = masked(settings_or_exit("config show", config))
        if output == "json":
            typer.echo(json.dumps(data, indent=2))
        else:
            typer.echo(yaml.safe_dump(data, sort_keys=False).rstrip())
