"""``stream-al produce --simulate``: the synthetic floor as a producer, for the compose
demo profile and for trying the daemon without a tester.

The records go through the same validation and delivery accounting as records read
from files. Each carries its true class in ``label`` (an evaluation run), so that
``stream-al oracle simulate`` can answer from the request's record; the daemon counts
such records as inline-labelled and, by default, does not learn from them.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from itertools import count, islice

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from consumers.kafka.reach import EXIT_NO_BROKER, announce
from consumers.produce.items import Item, Parsed
from consumers.produce.publish import DryRunSink, KafkaRecordSink, Pacer, Sink, publish_items
from consumers.produce.run import EXIT_OK, EXIT_PROBLEMS, say_no_broker, stop_on_signals
from consumers.settings import KafkaSettings
from consumers.stopping import StopRequest
from stream_al.errors import BrokerUnavailable
from stream_al.simulate.floor import FloorConfig, FloorSimulator

SOURCE = "simulated-floor"
_CHUNK = 1000


def floor_items(records: int, seed: int, with_truth: bool = True) -> Iterator[Parsed]:
    """``records`` simulated devices (0: without end), as items for ``publish_items``."""
    run_length = records or 100_000  # the scenario (drift, rare mode) repeats past it
    simulator = FloorSimulator(FloorConfig(run_length=max(run_length, 100)), seed)
    chunks = (simulator.stream(_CHUNK) for _ in count())
    devices = (device for chunk in chunks for device in chunk)
    for index, device in enumerate(islice(devices, records or None)):
        record = dict(device.record)
        if with_truth:
            record["label"] = device.truth
        yield Parsed(record, SOURCE, str(index))


def run_simulated(records: int, seed: int, rate: float, topic: str, kafka: KafkaSettings,
                  dry_run: bool, key_field: str, flush_timeout: float) -> int:
    console = Console(stderr=True)
    if not dry_run:
        announce(kafka)
    try:
        sink: Sink = (DryRunSink(sys.stdout) if dry_run
                      else KafkaRecordSink.connect(topic, kafka, flush_timeout))
    except BrokerUnavailable as error:
        say_no_broker(console, error)
        return EXIT_NO_BROKER
    stop = StopRequest()
    columns = (TextColumn("simulated devices"), BarColumn(), MofNCompleteColumn())
    with stop_on_signals(stop), Progress(*columns, console=console) as progress:
        task = progress.add_task("devices", total=records or None)

        def advance(_item: Item) -> None:
            progress.advance(task)

        outcome = publish_items(floor_items(records, seed), sink, key_field, Pacer(rate),
                                advance, stop.is_set)
        sink.close()
    console.print(f"simulated devices: {outcome.records_read:,} read, {sink.delivered:,} "
                  f"delivered to {topic}, {len(outcome.problems) + len(sink.failures)} "
                  "problems")
    return EXIT_PROBLEMS if outcome.problems or sink.failures else EXIT_OK
