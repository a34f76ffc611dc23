"""The daemon probes the broker only when it has heard nothing from it for a while: a
poll that brought records is a broker that answered, and with confluent-kafka the
probe's offsets request waits behind the consumer's long poll (it cost the daemon
about a tenth of its time while records flowed). A quiet loop still probes, which is
how an outage is noticed with kafka-python (whose polls then return nothing)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import cast

import pytest

from consumers.daemon import loop as daemon_loop
from consumers.daemon.connection import Connection
from consumers.daemon.loop import Daemon
from consumers.settings import Settings
from stream_al.bus import InMemoryConsumer, InMemorySink
from stream_al.codec import encode
from stream_al.inmemory import InMemoryLogs, InMemoryLoop
from stream_al.oracle import SimulatedOracle
from tests.factories import parametric

PROBE_EVERY_S = 0.5


class CountingConnection:
    """What ``Daemon._step`` touches of a connection, on the in-memory bus."""

    def __init__(self, logs: InMemoryLogs, inputs: InMemoryConsumer, sink: InMemorySink
                 ) -> None:
        self.logs, self.inputs, self.sink = logs, inputs, sink
        self.probes = 0

    def probe(self) -> None:
        self.probes += 1


@pytest.fixture
def running(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
            ) -> tuple[Daemon, InMemoryLoop, CountingConnection]:
    monkeypatch.setattr(daemon_loop, "_PROBE_EVERY_S", PROBE_EVERY_S)
    settings = Settings(state_dir=tmp_path, http={"host": "127.0.0.1", "port": 0},
                        checkpoint={"interval_s": 3600}, poll_max_records=1)
    daemon = Daemon(settings)
    daemon.store.prepare()
    daemon._restore()
    assert daemon.pipeline is not None
    loop = InMemoryLoop(daemon.pipeline, SimulatedOracle(lambda record_id: "pass"))
    return daemon, loop, CountingConnection(loop.logs, loop.inputs, loop.sink)


def publish(loop: InMemoryLoop, count: int) -> None:
    for i in range(count):
        loop.publish("ate.parametric", None, encode(parametric(f"r-{i}", vdd=0.1 * i)))


def test_no_probe_while_records_flow(
        running: tuple[Daemon, InMemoryLoop, CountingConnection]) -> None:
    daemon, loop, connection = running
    publish(loop, 12)
    for _ in range(12):  # one record a turn, five turns an interval: 2.4 intervals in all
        time.sleep(PROBE_EVERY_S / 5)
        daemon._step(cast(Connection, connection))
    assert connection.probes == 1, "only the first turn, before anything was heard"


def test_a_quiet_loop_probes_every_interval(
        running: tuple[Daemon, InMemoryLoop, CountingConnection]) -> None:
    daemon, loop, connection = running
    publish(loop, 1)
    daemon._step(cast(Connection, connection))  # probe, then the record
    for _ in range(3):  # nothing comes
        time.sleep(1.2 * PROBE_EVERY_S)
        daemon._step(cast(Connection, connection))
    assert connection.probes == 4
