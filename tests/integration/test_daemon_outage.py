"""The broker goes away for 20 s mid-run and comes back on the same port and data: the
daemon says so on /readyz (503 with a reason) while it is down, recovers by itself, and
loses nothing (every record predicted, every label applied exactly once).

The broker here is a LocalKafka of this test's own, so stopping it hurts no other test.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kafka import KafkaAdminClient

from consumers.kafka_local import LocalKafka, reap_orphans
from consumers.kafka_local.config import free_port
from stream_al.codec import decode_prediction
from stream_al.learner import LearnerConfig
from tests.daemon_support import (
    Harness,
    count,
    floor,
    fold_logs,
    load_checkpoint,
    logs_read_to_end,
    make_topics,
    probe,
    produce_floor,
    read_topic,
    total,
    versions,
    wait_until,
    write_truth,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

OUTAGE_S = 20.0
RECORDS = 6_000
LEARNER = {"budget": {"fraction": 0.2, "audit_fraction": 0.05}}
_PREFIX = "pytest-outage-"  # + the pid of the session, so an orphan can be reaped


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
def harness(broker: LocalKafka, unique_topic: Callable[..., str],
            unique_group: Callable[..., str], tmp_path: Path) -> Iterator[Harness]:
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, client_id="outage-test")
    try:
        topics = make_topics(admin, unique_topic)
    finally:
        admin.close()
    with Harness(broker.bootstrap, topics, unique_group(), tmp_path) as harness:
        yield harness


def test_a_broker_outage_is_reported_and_survived_without_loss(
        broker: LocalKafka, harness: Harness, tmp_path: Path) -> None:
    records = floor(RECORDS)
    half = RECORDS // 2
    topics, bootstrap = harness.topics, harness.bootstrap
    state = tmp_path / "state"
    # No checkpoint falls in the outage: the daemon must notice it without one failing.
    config = harness.config("daemon", state_dir=state, learner=LEARNER, checkpoint_s=30.0,
                            checkpoint_labels=100_000)
    daemon = harness.daemon("daemon", config)
    oracle = harness.oracle(harness.config("oracle"),
                            write_truth(tmp_path / "truth.csv", records))
    produce_floor(bootstrap, topics.inputs[0], records[:half], partitions=3)
    wait_until(lambda: total(daemon.metrics(), "stream_al_labels_total") >= 100,
               "records and labels to flow")

    broker.stop()
    down = time.monotonic()
    wait_until(lambda: daemon.readyz()[0] == 503, "/readyz to report the outage while it lasts",
               guard_s=OUTAGE_S)
    detected = time.monotonic() - down
    time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - down)))
    status, body = daemon.readyz()
    assert status == 503 and any("Kafka" in reason for reason in body["reasons"]), body
    assert daemon.alive() and oracle.alive()

    broker.start()
    up = time.monotonic()
    wait_until(lambda: daemon.readyz()[0] == 200, "the daemon to recover by itself")
    print(f"outage noticed after {detected:.1f} s; ready {time.monotonic() - up:.1f} s "
          "after the broker answered again")
    produce_floor(bootstrap, topics.inputs[0], records[half:], partitions=3)
    wait_until(lambda: logs_read_to_end(harness, state)
               and count(bootstrap, topics.labels) == count(bootstrap, topics.requests),
               "every record scored and every request answered")
    assert oracle.terminate() == 0
    wait_until(lambda: logs_read_to_end(harness, state), "every label read")
    assert daemon.terminate() == 0

    predicted = {decode_prediction(m.value).record_id
                 for m in read_topic(bootstrap, topics.predictions)}
    assert predicted == {r.record["record_id"] for r in records}, "a record lacks a prediction"
    requests = [m.value for m in read_topic(bootstrap, topics.requests)]
    labels = [m.value for m in read_topic(bootstrap, topics.labels)]
    folded, outcomes = fold_logs(LearnerConfig.model_validate(LEARNER), requests, labels)
    assert set(outcomes) <= {"applied", "duplicate"}  # re-sent requests are answered twice
    recovered = load_checkpoint(state).learner
    assert versions(recovered) == versions(folded)
    assert sum(versions(folded).values()) == outcomes["applied"]
    probes = floor(200, seed=99)
    assert probe(recovered, probes) == probe(folded, probes)
