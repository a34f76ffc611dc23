"""``stream-al desk``: the labelling desk, a web page for engineers answering queries."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from consumers.cli import Cli

LABELER_ENV = "STREAM_AL_DESK__LABELER"
CLAIMS_ENV = "STREAM_AL_DESK__CLAIMS_TOPIC"


def register(cli: Cli) -> None:
    @cli.app.command()
    def desk(
        config: Annotated[Path | None, typer.Option("--config", help="settings file")] = None,
        host: Annotated[str, typer.Option(help="address to listen on (0.0.0.0: the LAN)")]
        = "127.0.0.1",
        port: Annotated[int, typer.Option(min=0, max=65535, help="0 picks a free port")] = 8765,
        labeler: Annotated[str | None, typer.Option(
            envvar=LABELER_ENV, help="name on every label; default: each person logs in")]
        = None,
        claim_minutes: Annotated[float, typer.Option(
            min=0.05, help="minutes a card stays reserved for whoever opened it")] = 5.0,
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
        """Serve the labelling desk: a live queue of oracle requests, one key per class."""
        import logging
        from datetime import timedelta

        from consumers.oracle.desk.claims import DEFAULT_CLAIMS_TOPIC
        from consumers.oracle.desk.serve import serve
        from consumers.settings import load_settings
        from stream_al.errors import StreamAlError

        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
        logging.getLogger("kafka").setLevel(logging.WARNING)  # one line per connection is noise
        overrides = {"kafka": {"bootstrap_servers": bootstrap_servers}} if bootstrap_servers \
            else {}
        try:
            settings = load_settings(config, **overrides)
            claims = None if local_claims else claims_topic or DEFAULT_CLAIMS_TOPIC
            serve(settings, host, port, labeler, timedelta(minutes=claim_minutes), claims)
        except (StreamAlError, OSError) as error:
            typer.echo(f"stream-al desk: {error}", err=True)
            raise typer.Exit(2) from None
