"""The broker goes away for 20 s mid-run and comes back on the same port and data: the
daemon says so on /readyz (503 with a reason) while it is down, recovers by itself, and
loses nothing (every record predicted, every label applied exactly once).

The broker here is a LocalKafka of this test's own, so stopping it hurts no other test.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from consumers.kafka_local import LocalKafka
from tests.clients_support import CLIENTS
from tests.daemon_support import (
    BUDGETED,
    Harness,
    assert_same_models,
    floor,
    restartable_broker,
    wait_until,
)

# Every test here runs on each Kafka client.
pytestmark = [pytest.mark.integration, pytest.mark.slow,
              pytest.mark.parametrize("kafka_client", CLIENTS)]

OUTAGE_S = 20.0
RECORDS = 6_000
_PREFIX = "pytest-outage-"  # + the pid of the session, so an orphan can be reaped


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[LocalKafka]:
    """A broker of this test's own on fixed ports, restartable on the same data."""
    with restartable_broker(_PREFIX, tmp_path / "kafka-data") as kafka:
        yield kafka


@pytest.fixture
def harness_bootstrap(broker: LocalKafka) -> str:
    """The ``harness`` (tests/integration/conftest.py) lives on this test's own broker."""
    return broker.bootstrap


def test_a_broker_outage_is_reported_and_survived_without_loss(
        broker: LocalKafka, harness: Harness, tmp_path: Path) -> None:
    records = floor(RECORDS)
    half = RECORDS // 2
    state = tmp_path / "state"
    # No checkpoint falls in the outage: the daemon must notice it without one failing.
    config = harness.config("daemon", state_dir=state, learner=BUDGETED, checkpoint_s=30.0,
                            checkpoint_labels=100_000)
    daemon = harness.daemon("daemon", config)
    oracle = harness.oracle(records)
    harness.produce_floor(records[:half])
    wait_until(lambda: daemon.labels_read() >= 100, "records and labels to flow")

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
    harness.produce_floor(records[half:])
    harness.drain(daemon, oracle, state)

    predicted = set(harness.predicted())
    assert predicted == {r.record["record_id"] for r in records}, "a record lacks a prediction"
    folded = harness.fold(BUDGETED)
    assert set(folded.outcomes) <= {"applied", "duplicate"}  # re-sent requests are answered twice
    assert folded.learnt == folded.outcomes["applied"]
    assert_same_models(harness.checkpoint(state).learner, folded.learner)
    # What an operator reads at INFO: the restore once (not once per retry), the
    # partitions, and the recovery.
    log = daemon.output()
    assert log.count("restored checkpoint of") + log.count("no checkpoint in") == 1, log
    assert "reconnected to Kafka at" in log and "assigned 3 input partitions" in log
