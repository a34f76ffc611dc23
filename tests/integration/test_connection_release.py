"""A Connection dropped at a broker outage leaves nothing behind: after each rebuild its
kafka-python clients are garbage and no thread of theirs is left running.

The daemon drops its whole Connection at each outage, with predictions still
unacknowledged. kafka-python 3.0.12's producer ``close`` raised on its flush timeout
before stopping its sender thread, so every outage left a live sender, its client and its
buffered batches behind (the daemon's RSS stepped up at each outage and never came back,
docs/benchmarks.md, "Soak").

The broker here is a LocalKafka of this test's own, so stopping it hurts no other test.
"""

from __future__ import annotations

import gc
import os
import threading
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest

from consumers.daemon.connection import Connection
from consumers.kafka_local import LocalKafka, reap_orphans
from consumers.kafka_local.config import free_port
from consumers.settings import Settings
from stream_al.bus import Outgoing
from tests.daemon_support import Harness

pytestmark = [pytest.mark.integration, pytest.mark.slow]

OUTAGES = 2
SENDS = 20
FLUSH_S = 1.0
#: Only bounds a broken test: a thread kafka-python has been told to stop ends at once.
THREAD_JOIN_S = 30.0
_PREFIX = "pytest-release-"  # + the pid of the session, so an orphan can be reaped


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[LocalKafka]:
    """A broker of this test's own on fixed ports, restartable on the same data."""
    reap_orphans(_PREFIX)
    port = free_port()
    kafka = LocalKafka(f"{_PREFIX}{os.getpid()}", port=port,
                       controller_port=free_port(avoid=frozenset({port})),
                       data_dir=tmp_path / "kafka-data", die_with_parent=True)
    kafka.start()
    try:
        yield kafka
    finally:
        kafka.discard()


@pytest.fixture
def harness_bootstrap(broker: LocalKafka) -> str:
    """The ``harness`` (tests/integration/conftest.py) lives on this test's own broker."""
    return broker.bootstrap


def test_connections_dropped_at_outages_leave_no_clients_or_threads(
        broker: LocalKafka, harness: Harness, tmp_path: Path) -> None:
    settings = Settings.model_validate_json(
        harness.config("daemon", state_dir=tmp_path / "state").read_text(encoding="utf-8"))
    threads_before = set(threading.enumerate())
    dropped: list[weakref.ref[object]] = []
    for outage in range(OUTAGES):
        if outage:
            broker.start()
        connection = Connection.open(settings, {}, listener=None)
        connection.sink.send(Outgoing(harness.topics.predictions, b"k", b"before"))
        connection.sink.flush()  # delivered: the producer now knows the topic's leader
        assert connection.sink.take_failures() == []
        broker.stop()
        for n in range(SENDS):  # queued for the known leader, never acknowledged
            connection.sink.send(Outgoing(harness.topics.predictions, b"k", b"%d" % n))
        connection.sink.flush(FLUSH_S)
        unacknowledged = connection.sink.take_failures()
        # The case under test: the connection is dropped with sends still pending.
        assert len(unacknowledged) == SENDS, f"outage {outage}: {unacknowledged[:3]}"
        assert all(failure.timed_out for failure in unacknowledged)
        dropped += [weakref.ref(client) for client in
                    (connection, connection.consumer, connection.logs.consumer,
                     connection.sink, connection.sink._producer)]  # noqa: SLF001
        connection.close()
        del connection, unacknowledged

    left = [thread for thread in threading.enumerate() if thread not in threads_before]
    for thread in left:
        thread.join(THREAD_JOIN_S)
    still_running = sorted(thread.name for thread in left if thread.is_alive())
    assert still_running == [], f"threads of dropped connections still running: {still_running}"
    gc.collect()
    alive = [type(ref()).__name__ for ref in dropped if ref() is not None]
    assert alive == [], f"objects of dropped connections still referenced: {alive}"
