"""Two replicas in one consumer group on a real broker: they split the input
partitions, each reads the whole request and label logs, so both learn every label in
the same order and end with identical models (DESIGN §7)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kafka import KafkaAdminClient

from stream_al.codec import decode_prediction
from stream_al.learner import LearnerConfig
from stream_al.simulate.base import SimulatedRecord
from tests.daemon_support import (
    DaemonProc,
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

RECORDS = 9_000
LEARNER = {"budget": {"fraction": 0.2, "audit_fraction": 0.05}}


@pytest.fixture
def harness(kafka_bootstrap: str, kafka_admin: KafkaAdminClient,
            unique_topic: Callable[..., str], unique_group: Callable[..., str],
            tmp_path: Path) -> Iterator[Harness]:
    topics = make_topics(kafka_admin, unique_topic)
    with Harness(kafka_bootstrap, topics, unique_group(), tmp_path) as harness:
        yield harness


def test_two_replicas_split_the_partitions_and_end_with_identical_models(
        harness: Harness, tmp_path: Path) -> None:
    records = floor(RECORDS)
    topics, bootstrap = harness.topics, harness.bootstrap
    states = [tmp_path / "a-state", tmp_path / "b-state"]
    replicas = [harness.daemon(name, harness.config(name, state_dir=state, learner=LEARNER))
                for name, state in zip(("a", "b"), states, strict=True)]
    wait_until(lambda: all(r.readyz()[0] == 200 for r in replicas), "both replicas assigned")
    oracle = harness.oracle(harness.config("oracle"),
                            write_truth(tmp_path / "truth.csv", records))
    produce_floor(bootstrap, topics.inputs[0], records, partitions=3)

    wait_until(lambda: count(bootstrap, topics.labels) == count(bootstrap, topics.requests)
               and every_record_predicted(harness, records)
               and all(logs_read_to_end(harness, s, inputs=False) for s in states),
               "every record scored, every request answered and every label read")
    assert oracle.terminate() == 0
    wait_until(lambda: all(logs_read_to_end(harness, s, inputs=False) for s in states),
               "both replicas to read every label")
    assert all(replica.terminate() == 0 for replica in replicas)

    a, b = (load_checkpoint(state) for state in states)
    owned = [{tp for tp in c.offsets if tp[0] == topics.inputs[0]} for c in (a, b)]
    assert owned[0] and owned[1], "each replica scores a share of the partitions"
    assert not owned[0] & owned[1]
    assert len(owned[0] | owned[1]) == 3

    requests = [m.value for m in read_topic(bootstrap, topics.requests)]
    labels = [m.value for m in read_topic(bootstrap, topics.labels)]
    folded, outcomes = fold_logs(LearnerConfig.model_validate(LEARNER), requests, labels)
    assert set(outcomes) == {"applied"}
    assert versions(a.learner) == versions(b.learner) == versions(folded)
    probes = floor(200, seed=99)
    assert probe(a.learner, probes) == probe(b.learner, probes) == probe(folded, probes)


def every_record_predicted(harness: Harness, records: list[SimulatedRecord]) -> bool:
    predicted = {decode_prediction(m.value).record_id
                 for m in read_topic(harness.bootstrap, harness.topics.predictions)}
    return predicted == {r.record["record_id"] for r in records}


def test_a_replica_joining_mid_stream_takes_over_where_the_first_stopped(
        harness: Harness, tmp_path: Path) -> None:
    """The first replica checkpoints and commits as its partitions are revoked, and
    keeps scoring the ones it retains from where it was: across the rebalance no
    record is scored twice (so no query is sent twice) and the models still agree."""
    records = floor(RECORDS)
    third = RECORDS // 3
    topics, bootstrap = harness.topics, harness.bootstrap
    states = [tmp_path / "a-state", tmp_path / "b-state"]
    configs = [harness.config(name, state_dir=state, learner=LEARNER, checkpoint_s=60.0,
                              checkpoint_labels=100_000)  # only rebalances checkpoint
               for name, state in zip(("a", "b"), states, strict=True)]
    oracle = harness.oracle(harness.config("oracle"),
                            write_truth(tmp_path / "truth.csv", records))
    first = harness.daemon("a", configs[0])
    produce_floor(bootstrap, topics.inputs[0], records[:third], partitions=3)
    wait_until(lambda: scored(first) == third, "the first replica to score the first third")
    second = harness.daemon("b", configs[1])
    wait_until(lambda: second.readyz()[0] == 200, "the second replica to get partitions")
    produce_floor(bootstrap, topics.inputs[0], records[third:], partitions=3)

    replicas = (first, second)
    wait_until(lambda: sum(scored(r) for r in replicas) >= RECORDS
               and count(bootstrap, topics.labels) == count(bootstrap, topics.requests)
               and all(read(r) == count(bootstrap, topics.labels) for r in replicas),
               "every record scored, every request answered and every label read")
    assert oracle.terminate() == 0
    assert scored(second) > 0
    assert first.terminate() == 0 and second.terminate() == 0

    predicted = Counter(decode_prediction(m.value).record_id
                        for m in read_topic(bootstrap, topics.predictions))
    assert set(predicted) == {r.record["record_id"] for r in records}
    twice = sorted(record_id for record_id, times in predicted.items() if times > 1)
    assert not twice, f"{len(twice)} records scored twice across the rebalance, e.g. {twice[0]}"
    a, b = (load_checkpoint(state).learner for state in states)
    assert versions(a) == versions(b)
    probes = floor(200, seed=99)
    assert probe(a, probes) == probe(b, probes)


def scored(daemon: DaemonProc) -> float:
    return total(daemon.metrics(), "stream_al_records_total")


def read(daemon: DaemonProc) -> float:
    return total(daemon.metrics(), "stream_al_labels_total")
