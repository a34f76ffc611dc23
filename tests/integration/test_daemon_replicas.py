"""Two replicas in one consumer group on a real broker: they split the input
partitions, each reads the whole request and label logs, so both learn every label in
the same order and end with identical models (DESIGN §7)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.clients_support import CLIENTS
from tests.daemon_support import BUDGETED, Harness, assert_same_models, floor, wait_until

# Every test here runs on each Kafka client.
pytestmark = [pytest.mark.integration, pytest.mark.slow,
              pytest.mark.parametrize("kafka_client", CLIENTS)]

RECORDS = 9_000


def test_two_replicas_split_the_partitions_and_end_with_identical_models(
        harness: Harness, tmp_path: Path) -> None:
    records = floor(RECORDS)
    topics = harness.topics
    states = [tmp_path / "a-state", tmp_path / "b-state"]
    replicas = [harness.daemon(name, harness.config(name, state_dir=state, learner=BUDGETED))
                for name, state in zip(("a", "b"), states, strict=True)]
    wait_until(lambda: all(r.readyz()[0] == 200 for r in replicas), "both replicas assigned")
    oracle = harness.oracle(records)
    harness.produce_floor(records)

    every_id = {r.record["record_id"] for r in records}
    wait_until(lambda: harness.answered() and set(harness.predicted()) == every_id
               and all(harness.logs_read_to_end(s, inputs=False) for s in states),
               "every record scored, every request answered and every label read")
    assert oracle.terminate() == 0
    wait_until(lambda: all(harness.logs_read_to_end(s, inputs=False) for s in states),
               "both replicas to read every label")
    assert all(replica.terminate() == 0 for replica in replicas)

    a, b = (harness.checkpoint(state) for state in states)
    owned = [{tp for tp in c.offsets if tp[0] == topics.inputs[0]} for c in (a, b)]
    assert owned[0] and owned[1], "each replica scores a share of the partitions"
    assert not owned[0] & owned[1]
    assert len(owned[0] | owned[1]) == 3

    folded = harness.fold(BUDGETED)
    assert set(folded.outcomes) == {"applied"}
    assert_same_models(a.learner, b.learner, folded.learner)


def test_a_replica_joining_mid_stream_takes_over_where_the_first_stopped(
        harness: Harness, tmp_path: Path) -> None:
    """The first replica checkpoints and commits as its partitions are revoked, and
    keeps scoring the ones it retains from where it was: across the rebalance no
    record is scored twice (so no query is sent twice) and the models still agree."""
    records = floor(RECORDS)
    third = RECORDS // 3
    states = [tmp_path / "a-state", tmp_path / "b-state"]
    configs = [harness.config(name, state_dir=state, learner=BUDGETED, checkpoint_s=60.0,
                              checkpoint_labels=100_000)  # only rebalances checkpoint
               for name, state in zip(("a", "b"), states, strict=True)]
    oracle = harness.oracle(records)
    first = harness.daemon("a", configs[0])
    harness.produce_floor(records[:third])
    wait_until(lambda: first.scored() == third, "the first replica to score the first third")
    second = harness.daemon("b", configs[1])
    wait_until(lambda: second.readyz()[0] == 200, "the second replica to get partitions")
    harness.produce_floor(records[third:])

    replicas = (first, second)
    wait_until(lambda: sum(r.scored() for r in replicas) >= RECORDS and harness.answered()
               and all(r.labels_read() == harness.count(harness.topics.labels)
                       for r in replicas),
               "every record scored, every request answered and every label read")
    assert oracle.terminate() == 0
    assert second.scored() > 0
    assert first.terminate() == 0 and second.terminate() == 0

    predicted = harness.predicted()
    assert set(predicted) == {r.record["record_id"] for r in records}
    twice = sorted(record_id for record_id, times in predicted.items() if times > 1)
    assert not twice, f"{len(twice)} records scored twice across the rebalance, e.g. {twice[0]}"
    a, b = (harness.checkpoint(state).learner for state in states)
    assert_same_models(a, b)
