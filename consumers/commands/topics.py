"""``stream-al topics create``: every topic the daemon uses, idempotently."""

from __future__ import annotations

from typing import Annotated

import typer

from consumers.cli import Cli
from consumers.commands._options import BootstrapOption, ConfigOption, fail, settings_or_exit


def register(cli: Cli) -> None:
    @cli.topics.command("create")
    def create(
        config: ConfigOption = None,
        bootstrap_servers: BootstrapOption = None,
        input_partitions: Annotated[int, typer.Option(
            min=1, help="partitions of the input and prediction topics")] = 6,
        replication: Annotated[int, typer.Option(min=1, help="replication factor")] = 1,
        apply_retention: Annotated[bool, typer.Option(
            help="also set the retention.* settings on topics that exist already (a "
                 "shorter retention deletes what is older)")] = False,
    ) -> None:
        """Create the input, prediction, request, label, dead-letter and claim topics, each
        kept as long as the retention.* settings say."""
        from consumers.kafka.gateway import ClientError
        from consumers.kafka.reach import EXIT_NO_BROKER, announce
        from consumers.kafka.topics import create_topics, topic_plan
        from stream_al.errors import BrokerUnavailable

        settings = settings_or_exit("topics create", config, bootstrap_servers)
        plans = topic_plan(settings.topics, input_partitions, settings.retention)
        announce(settings.kafka)
        try:
            outcome = create_topics(settings.kafka, plans, replication, apply_retention)
        except BrokerUnavailable as error:
            fail("topics create", error, EXIT_NO_BROKER)
        except ClientError as error:
            fail("topics create", f"Kafka at {','.join(settings.kafka.bootstrap_servers)} "
                 f"refused: {error}", code=1)
        for name, result in outcome.items():
            typer.echo(f"{name}: {result}")
