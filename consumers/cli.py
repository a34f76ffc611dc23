"""The ``stream-al`` command line.

Commands live one concept per module in ``consumers/commands/``; each module exposes
``register(cli: Cli)`` and is discovered here, so adding a command never edits this file
(``commands/_options.py`` holds what they share).
Command modules import heavy dependencies (River, Kafka) inside their functions so that
``stream-al --help`` answers at once.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import Any

import typer

from consumers import commands
from consumers.commands._options import LoggingGroup
from stream_al import __version__


def _group(name: str, help_text: str, **options: Any) -> typer.Typer:
    return typer.Typer(name=name, help=help_text, no_args_is_help=True, add_completion=False,
                       **options)


@dataclass(frozen=True)
class Cli:
    """The root app and its command groups, handed to every command module."""

    app: typer.Typer
    oracle: typer.Typer = field(default_factory=lambda: _group("oracle", "Answer queries."))
    bench: typer.Typer = field(default_factory=lambda: _group("bench", "Run benchmarks."))
    topics: typer.Typer = field(default_factory=lambda: _group("topics", "Manage topics."))
    config: typer.Typer = field(default_factory=lambda: _group("config", "Inspect config."))


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"stream-al {__version__}")
        raise typer.Exit()


def build_cli() -> typer.Typer:
    # LoggingGroup gives every command --log-level.
    app = _group("stream-al", "Streaming active learning for ATE test floors.",
                 cls=LoggingGroup)

    @app.callback()
    def _root(
        version: bool = typer.Option(
            False, "--version", callback=_print_version, is_eager=True, help="Print the version."
        ),
    ) -> None:
        """Streaming active learning for ATE test floors."""

    cli = Cli(app=app)
    for module in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if module.name.startswith("_"):
            continue  # shared helpers, not a command
        importlib.import_module(f"{commands.__name__}.{module.name}").register(cli)
    for group in (cli.oracle, cli.bench, cli.topics, cli.config):
        if group.registered_commands:
            app.add_typer(group)
    return app


def main() -> None:
    build_cli()()
