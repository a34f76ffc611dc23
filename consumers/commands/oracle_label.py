"""``stream-al oracle label``: answer oracle queries from a terminal."""

from __future__ import annotations

import logging

import typer

from consumers.cli import Cli
from consumers.commands import _options as shared
from consumers.commands.desk import (
    ClaimMinutesOption,
    LabelerOption,
    LocalClaimsOption,
    desk_overrides,
)


def register(cli: Cli) -> None:
    @cli.oracle.command("label")
    def label(
        config: shared.ConfigOption = None,
        bootstrap_servers: shared.BootstrapOption = None,
        labeler: LabelerOption = None,
        claim_minutes: ClaimMinutesOption = None,
        local_claims: LocalClaimsOption = None,
    ) -> None:
        """Label queries one card at a time, one key each: a class number, n (new class),
        s (skip), ] and [ (more measurements), q (quit). From a pipe: one line each."""
        import getpass
        import os
        import sys
        from contextlib import nullcontext

        from rich.console import Console

        from consumers.kafka.reach import EXIT_NO_BROKER, announce
        from consumers.oracle.desk.service import DeskService
        from consumers.oracle.terminal.labeller import FileLines, TerminalKeys, TerminalLabeller
        from stream_al.errors import BrokerUnavailable, StreamAlError

        # Warnings only: connection chatter would scroll the card away.
        shared.setup_logging(logging.WARNING, fmt="%(levelname)s %(message)s")
        overrides = desk_overrides(labeler=labeler, claim_minutes=claim_minutes,
                                   local_claims=local_claims)
        settings = shared.settings_or_exit("oracle label", config, bootstrap_servers,
                                           **overrides)
        service = DeskService(settings)
        announce(settings.kafka)
        try:
            service.start()
        except BrokerUnavailable as error:
            shared.fail("oracle label", error, EXIT_NO_BROKER)
        except StreamAlError as error:
            shared.fail("oracle label", error)
        try:
            name = settings.desk.labeler or getpass.getuser()
            # No markup or emoji parsing at all: the labeller prints records as Text, and
            # a string that slipped through must still show as typed.
            console = Console(highlight=False, markup=False, emoji=False)
            fd = sys.stdin.fileno()
            # A terminal answers on one keypress (its mode restored however we leave).
            keys = TerminalKeys(fd) if os.isatty(fd) else FileLines(fd)
            with keys if isinstance(keys, TerminalKeys) else nullcontext(keys):
                code = TerminalLabeller(service, name, console, keys).run()
            raise typer.Exit(code)
        finally:
            service.stop()
