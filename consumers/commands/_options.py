"""What every command shares: the ``--config`` and ``--bootstrap-servers`` options,
settings loaded or a one-line error with exit 2, and logging set-up.

Not a command (the leading underscore keeps the CLI from registering it).
"""

from __future__ import annotations

import logging
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from typer.core import TyperGroup

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


class LogLevel(StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


#: The level given by ``--log-level``, which wins over each command's own default.
_requested_level: int | None = None
_DEFAULT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_early_handler = logging.StreamHandler()


#: kafka-python narrates every connection at INFO and every failed attempt at WARNING and
#: ERROR (60 lines before our one-line "no broker answers"); what matters of it reaches
#: the user through our own messages, so it is off unless ``--log-level debug``.
KAFKA_QUIET = logging.CRITICAL


def quiet_kafka() -> None:
    """The Kafka client's own log off (the default of every command)."""
    logging.getLogger("kafka").setLevel(KAFKA_QUIET)


def setup_logging(level: int | str = logging.INFO, *, kafka_level: int = KAFKA_QUIET,
                  handler: logging.Handler | None = None, fmt: str = _DEFAULT_FORMAT) -> None:
    """Our log lines at ``level`` (``--log-level`` wins); kafka-python at ``kafka_level``
    (by default off: see :data:`KAFKA_QUIET`) or quieter, unless ``--log-level debug``
    asks for everything."""
    if _requested_level is not None:
        level = _requested_level
        if _requested_level <= logging.DEBUG:
            fmt = _DEFAULT_FORMAT  # debugging needs to know which library said what
    if _early_handler in logging.root.handlers:
        logging.root.removeHandler(_early_handler)  # the command's own handler and format
    logging.basicConfig(level=level, format=fmt, handlers=[handler] if handler else None)
    if _requested_level is not None:
        logging.root.setLevel(level)  # basicConfig leaves a configured root alone
        if _requested_level <= logging.DEBUG:
            kafka_level = logging.DEBUG
    logging.getLogger("kafka").setLevel(max(kafka_level, logging.root.level))


def _request_log_level(value: LogLevel | None) -> None:
    global _requested_level  # one process runs one command: the option sets it once
    if value is None:
        return
    _requested_level = logging.getLevelNamesMapping()[value.value.upper()]
    # For commands that never call setup_logging; one that does replaces this handler.
    if not logging.root.handlers:
        _early_handler.setFormatter(logging.Formatter(_DEFAULT_FORMAT))
        logging.root.addHandler(_early_handler)
    logging.root.setLevel(_requested_level)
    logging.getLogger("kafka").setLevel(KAFKA_QUIET if _requested_level > logging.DEBUG
                                        else logging.DEBUG)


def log_level_option() -> Any:
    """``--log-level`` as a parameter object to add to any command (see ``add_log_level``),
    made by typer itself from a declaration, so it parses and shows in help like the
    command's own options."""
    probe = typer.Typer()

    @probe.command()
    def declaration(log_level: Annotated[LogLevel | None, typer.Option(
        case_sensitive=False, callback=_request_log_level, is_eager=True,
        help="how much to log on stderr (default: info for stream-al's lines, none of "
             "the Kafka client's own; debug shows both)")] = None) -> None:
        """Only declares the option."""

    parameter = typer.main.get_command(probe).params[0]
    parameter.expose_value = False  # the command functions do not take it
    return parameter


def add_log_level(command: Any) -> None:
    """Give ``command`` and everything under it ``--log-level``."""
    if not any(param.name == "log_level" for param in command.params):
        command.params.append(log_level_option())
    for child in getattr(command, "commands", {}).values():
        add_log_level(child)


class LoggingGroup(TyperGroup):
    """The root group: every command under it takes ``--log-level``, so no command module
    has to declare it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        add_log_level(self)

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        global _requested_level  # each run of the CLI starts from the commands' defaults
        _requested_level = None
        # Before any option is parsed (--log-level debug turns it back on): commands that
        # never call setup_logging would otherwise print its warnings through logging's
        # last-resort handler.
        quiet_kafka()
        return super().make_context(*args, **kwargs)
