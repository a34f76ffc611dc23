"""``stream-al tail``: look at the predictions, requests, labels or dead letters as a person
would, without writing a consumer (and without joining the daemon's group)."""

from __future__ import annotations

import signal
from enum import StrEnum
from typing import Annotated

import typer

from consumers.cli import Cli
from consumers.commands import _options as shared
from consumers.stopping import StopRequest


class Family(StrEnum):
    PREDICTIONS = "predictions"
    REQUESTS = "requests"
    LABELS = "labels"
    DLQ = "dlq"


def register(cli: Cli) -> None:
    @cli.app.command()
    def tail(
        family: Annotated[Family, typer.Argument(
            case_sensitive=False, help="which topic: predictions, requests, labels or dlq "
                                       "(the names in topics.*)")],
        config: shared.ConfigOption = None,
        bootstrap_servers: shared.BootstrapOption = None,
        last: Annotated[int, typer.Option(
            min=0, help="start with the last N messages (0: only new ones, with --follow)")]
        = 20,
        from_start: Annotated[bool, typer.Option(
            "--from-start", help="start with every message the topic holds")] = False,
        follow: Annotated[bool, typer.Option(
            "--follow", "-f", help="then keep printing new messages until Ctrl-C")] = False,
        model_key: Annotated[str | None, typer.Option(
            help="only the predictions or requests of this model")] = None,
        json_lines: Annotated[bool, typer.Option(
            "--json", help="one JSON object a line (topic, partition, offset, timestamp, "
                           "key, value) instead of the readable line")] = False,
    ) -> None:
        """Print the messages of one topic, oldest first: one line each, as a person reads
        them, or JSON lines. Joins no consumer group and commits nothing."""
        from rich.console import Console

        from consumers.kafka.reach import EXIT_NO_BROKER, announce
        from consumers.kafka.tail import WITH_MODEL_KEY, as_json, as_text, model_filter, read
        from stream_al.errors import BrokerUnavailable

        name = family.value
        if model_key is not None and name not in WITH_MODEL_KEY:
            shared.fail("tail", f"--model-key filters predictions and requests; {name} do "
                                "not name their model")
        settings = shared.settings_or_exit("tail", config, bootstrap_servers)
        topic = getattr(settings.topics, name)
        stop = StopRequest()
        stop.install(signal.SIGTERM, signal.SIGINT)
        # highlight off: rich would colour numbers and URLs inside untrusted text.
        console = Console(highlight=False, soft_wrap=True)
        announce(settings.kafka)
        try:
            for shown in read(settings.kafka, topic, last=None if from_start else last,
                              follow=follow, keep=model_filter(model_key), stop=stop):
                if json_lines:
                    console.out(as_json(shown), highlight=False)
                else:
                    console.print(as_text(name, shown))
        except BrokerUnavailable as error:
            shared.fail("tail", error, EXIT_NO_BROKER)
