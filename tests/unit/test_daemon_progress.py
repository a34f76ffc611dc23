"""The daemon's progress line at INFO names records, predictions, queries, labels and lag.

The daemon runs in-process on the in-memory bus (its Kafka connection faked around the
bus), with a progress interval short enough to come within the test."""

from __future__ import annotations

import logging
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import pytest

from consumers.daemon.connection import Connection
from consumers.daemon.loop import Daemon
from consumers.daemon.progress import Progress
from consumers.settings import Settings
from stream_al.bus import InMemoryConsumer, InMemorySink
from stream_al.codec import encode
from stream_al.inmemory import InMemoryLogs, InMemoryLoop
from stream_al.oracle import SimulatedOracle
from tests.factories import parametric

LINE = re.compile(r"last \d+ s: (\d+) records \(\d+ /s\), (\d+) predictions, (\d+) queries, "
                  r"(\d+) labels read; input lag (\d+)")


class BusConnection:
    """What ``Daemon._step`` touches of a connection, on the in-memory bus."""

    def __init__(self, logs: InMemoryLogs, inputs: InMemoryConsumer, sink: InMemorySink
                 ) -> None:
        self.logs, self.inputs, self.sink = logs, inputs, sink

    def probe(self) -> None:
        pass


def test_the_progress_line_counts_predictions_and_queries(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings(state_dir=tmp_path, http={"host": "127.0.0.1", "port": 0},
                        checkpoint={"interval_s": 3600},
                        learner={"budget": {"fraction": 1.0, "audit_fraction": 0.0}})
    daemon = Daemon(settings)
    daemon.store.prepare()
    daemon._restore()
    assert daemon.pipeline is not None
    oracle = SimulatedOracle(lambda record_id: "pass")
    loop = InMemoryLoop(daemon.pipeline, oracle)
    for i in range(40):
        loop.publish(settings.topics.inputs[0], None, encode(parametric(f"r-{i}", vdd=0.1 * i)))
    connection = cast(Connection, BusConnection(loop.logs, loop.inputs, loop.sink))
    daemon.progress = Progress(time.monotonic(), every_s=0.05)
    lines: list[tuple[int, ...]] = []
    with caplog.at_level(logging.INFO, logger="stream_al.daemon"):
        for _ in range(20):
            daemon._step(connection)
            loop._answer(datetime.now(UTC))  # the oracle answers at once: labels come back
            time.sleep(0.06)
    for record in caplog.records:
        if match := LINE.fullmatch(record.getMessage()):
            lines.append(tuple(int(n) for n in match.groups()))
    assert lines, caplog.text
    records, predictions, queries, labels, _lag = (sum(c) for c in zip(*lines, strict=True))
    assert records == 40
    assert predictions == 40  # every record is predicted
    assert 0 < queries <= 40 and labels == queries  # all asked while warming up; all answered
