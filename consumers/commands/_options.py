"""What every command shares: the ``--config`` and ``--bootstrap-servers`` options,
settings loaded or a one-line error with exit 2, and logging set-up.

Not a command (the leading underscore keeps the CLI from registering it).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

if TYPE_CHECKING:
    from consumers.settings import Settings

ConfigOption = Annotated[Path | None, typer.Option(
    "--config", help="YAML/TOML/JSON settings file (default: $STREAM_AL_CONFIG)")]
BootstrapOption = Annotated[str | None, typer.Option(
    "--bootstrap-servers",
    help="Kafka host:port,… (default: $STREAM_AL_KAFKA__BOOTSTRAP_SERVERS or the config)")]
#: Exit status for a bad command line or configuration: nothing was done.
EXIT_USAGE = 2


def fail(command: str, message: object, code: int = EXIT_USAGE) -> NoReturn:
    """One line on stderr, naming the command, then exit with ``code``."""
    typer.echo(f"stream-al {command}: {message}", err=True)
    raise typer.Exit(code)


def settings_or_exit(command: str, config: Path | None, bootstrap_servers: str | None = None,
                     **overrides: Any) -> Settings:
    """The effective settings (file, environment, then these options), or exit 2 with the
    field and the fix named."""
    from consumers.settings import load_settings
    from stream_al.errors import ConfigError

    if bootstrap_servers:
        overrides["kafka"] = {**overrides.get("kafka", {}),
                              "bootstrap_servers": bootstrap_servers}
    try:
        return load_settings(config, **overrides)
    except ConfigError as error:
        fail(command, error)


def setup_logging(level: int | str = logging.INFO, *, kafka_level: int = logging.WARNING,
                  handler: logging.Handler | None = None,
                  fmt: str = "%(asctime)s %(levelname)s %(name)s: %(message)s") -> None:
    """Our log lines at ``level``; kafka-python, which narrates every connection at INFO,
    at ``kafka_level`` or quieter."""
    logging.basicConfig(level=level, format=fmt, handlers=[handler] if handler else None)
    logging.getLogger("kafka").setLevel(max(kafka_level, logging.root.level))
