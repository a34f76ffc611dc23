"""``stream-al run``: the daemon."""

from __future__ import annotations

import typer

from consumers.cli import Cli
from consumers.commands._options import (
    BootstrapOption,
    ConfigOption,
    fail,
    settings_or_exit,
    setup_logging,
)


def register(cli: Cli) -> None:
    @cli.app.command()
    def run(config: ConfigOption = None, bootstrap_servers: BootstrapOption = None) -> None:
        """Consume records, predict, query the oracle within budget, learn from labels.

        Kafka unreachable, at start or later: the daemon says so and keeps retrying (it
        never exits for it; /readyz answers 503 meanwhile).
        """
        from consumers.daemon.loop import Daemon
        from stream_al.errors import ConfigError, StreamAlError

        settings = settings_or_exit("run", config, bootstrap_servers)
        setup_logging(settings.log_level)
        try:
            daemon = Daemon(settings)
            daemon.install_signal_handlers()
            raise typer.Exit(daemon.run())
        except ConfigError as error:
            fail("run", error)
        except StreamAlError as error:
            fail("run", error, code=1)
