"""``stream-al oracle label``: answer oracle queries from a terminal."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from consumers.cli import Cli

LABELER_ENV = "STREAM_AL_DESK__LABELER"
CLAIMS_ENV = "STREAM_AL_DESK__CLAIMS_TOPIC"


def register(cli: Cli) -> None:
    @cli.oracle.command("label")
    def label(
        config: Annotated[Path | None, typer.Option("--config", help="settings file")] = None,
        labeler: Annotated[str | None, typer.Option(
            envvar=LABELER_ENV, help="name on every label (default: your login name)")] = None,
        claim_minutes: Annotated[float, typer.Option(
            min=0.05, help="minutes a card stays reserved for you")] = 5.0,
        bootstrap_servers: Annotated[str | None, typer.Option(
            help="Kafka host:port list (default: settings)")] = None,
        claims_topic: Annotated[str | None, typer.Option(
            envvar=CLAIMS_ENV, help="topic shared by every desk and terminal so no two "
            "people get one card (default: stream-al.oracle.claims, created if missing)")]
        = None,
        local_claims: Annotated[bool, typer.Option(
            "--local-claims", help="keep claims in this process only (then run no other "
            "desk or terminal on these topics)")] = False,
    ) -> None:
        """Label queries one card at a time: a class number, n (new class), s (skip), q."""
        import getpass
        import logging
        from datetime import timedelta

        from rich.console import Console

        from consumers.oracle.desk.claims import DEFAULT_CLAIMS_TOPIC
        from consumers.oracle.desk.service import DeskService
        from consumers.oracle.terminal.labeller import FileLines, TerminalLabeller
        from consumers.settings import load_settings
        from stream_al.errors import StreamAlError

        # Warnings only: connection chatter would scroll the card away.
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
        logging.getLogger("kafka").setLevel(logging.ERROR)
        overrides = {"kafka": {"bootstrap_servers": bootstrap_servers}} if bootstrap_servers \
            else {}
        try:
            settings = load_settings(config, **overrides)
        except StreamAlError as error:
            typer.echo(f"stream-al oracle label: {error}", err=True)
            raise typer.Exit(2) from None
        claims = None if local_claims else claims_topic or DEFAULT_CLAIMS_TOPIC
        service = DeskService(settings, timedelta(minutes=claim_minutes), claims)
        service.start()
        try:
            name = labeler or getpass.getuser()
            raise typer.Exit(TerminalLabeller(service, name, Console(highlight=False),
                                               FileLines()).run())
        finally:
            service.stop()
