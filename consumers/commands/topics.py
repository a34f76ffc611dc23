"""``stream-al topics create``: every topic the daemon uses, idempotently."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from consumers.cli import Cli


def register(cli: Cli) -> None:
    @cli.topics.command("create")
    def create(
        config: Annotated[Path | None, typer.Option(
            "--config", help="settings file (default: $STREAM_AL_CONFIG)")] = None,
        input_partitions: Annotated[int, typer.Option(
            min=1, help="partitions of the input and prediction topics")] = 6,
        replication: Annotated[int, typer.Option(min=1, help="replication factor")] = 1,
    ) -> None:
        """Create the input, prediction, request, label and dead-letter topics."""
        from kafka.errors import KafkaError

        from consumers.kafka.clients import create_topics, topic_plan
        from consumers.settings import load_settings
        from stream_al.errors import ConfigError

        try:
            settings = load_settings(config)
            plans = topic_plan(settings.topics, input_partitions)
            outcome = create_topics(settings.kafka, plans, replication)
        except ConfigError as error:
            typer.echo(f"stream-al topics create: {error}", err=True)
            raise typer.Exit(2) from None
        except KafkaError as error:
            typer.echo(f"stream-al topics create: Kafka at "
                       f"{','.join(settings.kafka.bootstrap_servers)} failed: {error}",
                       err=True)
            raise typer.Exit(1) from None
        for name, result in outcome.items():
            typer.echo(f"{name}: {result}")
