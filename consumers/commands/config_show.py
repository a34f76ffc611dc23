"""``stream-al config show``: the effective settings, secrets masked."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import typer

from consumers.cli import Cli
from consumers.commands._options import ConfigOption, settings_or_exit


def register(cli: Cli) -> None:
    @cli.config.command("show")
    def show(
        config: ConfigOption = None,
        output: Annotated[Literal["yaml", "json", "toml"], typer.Option(
            "--format", help="yaml, json or toml")] = "yaml",
    ) -> None:
        """Print the settings the daemon would run with (file + environment)."""
        import json

        import yaml

        from consumers.settings import masked

        data = masked(settings_or_exit("config show", config))
        if output == "json":
            typer.echo(json.dumps(data, indent=2))
        elif output == "toml":
            import tomli_w

            typer.echo("# Unset settings are left out: TOML has no null.")
            typer.echo(tomli_w.dumps(_without_nulls(data)).rstrip())
        else:
            typer.echo(yaml.safe_dump(data, sort_keys=False).rstrip())


def _without_nulls(data: dict[str, Any]) -> dict[str, Any]:
    return {key: _without_nulls(value) if isinstance(value, dict) else value
            for key, value in data.items() if value is not None}
