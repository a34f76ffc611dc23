"""kill -9, three times, at different points of a run on a real broker: every record is
still predicted, and the recovered model is EXACTLY the model of the label log.

"The same messages" are the topics as the crashed run left them: its request log holds
requests re-sent after each crash (same query id, same record) and its label log holds
the oracle's answers to both copies. A model that learnt every label once, in label-log
order, is a pure function of those two logs, so the crashed daemon's final model must
equal (float for float) the model folded offline from them and the model of a second
daemon that reads the same topics from scratch without interruption.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kafka import KafkaAdminClient

from stream_al.codec import decode_prediction
from stream_al.learner import LearnerConfig
from stream_al.state import Checkpoint
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

CHUNK = 5_000
LEARNER = {"budget": {"fraction": 0.2, "audit_fraction": 0.05}}


@pytest.fixture
def harness(kafka_bootstrap: str, kafka_admin: KafkaAdminClient,
            unique_topic: Callable[..., str], unique_group: Callable[..., str],
            tmp_path: Path) -> Iterator[Harness]:
    topics = make_topics(kafka_admin, unique_topic)
    with Harness(kafka_bootstrap, topics, unique_group(), tmp_path) as harness:
        yield harness


def test_after_three_kill9s_every_record_is_predicted_and_the_model_is_exact(
        harness: Harness, tmp_path: Path) -> None:
    records = floor(3 * CHUNK)
    topics, bootstrap = harness.topics, harness.bootstrap
    state = tmp_path / "crashing-state"
    config = harness.config("crashing", state_dir=state, learner=LEARNER)
    oracle = harness.oracle(harness.config("oracle"),
                            write_truth(tmp_path / "truth.csv", records), delay_s=0.5)

    daemon = harness.daemon("crashing", config)
    produce_floor(bootstrap, topics.inputs[0], records[:CHUNK], partitions=3)
    wait_until(lambda: count(bootstrap, topics.predictions) >= CHUNK // 3, "some predictions")
    daemon.kill9()  # 1: mid-input, before any checkpoint may cover the labels

    daemon = harness.daemon("crashing", config)
    produce_floor(bootstrap, topics.inputs[0], records[CHUNK:2 * CHUNK], partitions=3)
    wait_until(lambda: scored(daemon) >= CHUNK // 2 and applied(daemon) >= 100,
               "the restarted daemon to score records and learn labels")
    daemon.kill9()  # 2: while records and labels flow

    daemon = harness.daemon("crashing", config)
    produce_floor(bootstrap, topics.inputs[0], records[2 * CHUNK:], partitions=3)
    wait_until(lambda: applied(daemon) >= 1, "the restarted daemon to replay a label")
    daemon.kill9()  # 3: while it catches up on the labels since its checkpoint

    daemon = harness.daemon("crashing", config)
    # Once a checkpoint covers every input, no request is added: then wait for answers.
    wait_until(lambda: logs_read_to_end(harness, state)
               and count(bootstrap, topics.labels) == count(bootstrap, topics.requests),
               "every record scored and every request answered")
    assert oracle.terminate() == 0
    wait_until(lambda: logs_read_to_end(harness, state), "every label read")
    assert daemon.terminate() == 0
    crashed = load_checkpoint(state)

    predicted = {decode_prediction(m.value).record_id
                 for m in read_topic(bootstrap, topics.predictions)}
    assert predicted == {r.record["record_id"] for r in records}, "a record lacks a prediction"

    uninterrupted = run_uninterrupted(harness, tmp_path)
    requests = [m.value for m in read_topic(bootstrap, topics.requests)]
    labels = [m.value for m in read_topic(bootstrap, topics.labels)]
    folded, outcomes = fold_logs(LearnerConfig.model_validate(LEARNER), requests, labels)
    assert outcomes["applied"] > 0 and set(outcomes) <= {"applied", "duplicate"}

    assert versions(crashed.learner) == versions(folded) == versions(uninterrupted.learner)
    assert sum(versions(folded).values()) == outcomes["applied"], "a label applied twice or lost"
    probes = floor(300, seed=99)
    expected = probe(folded, probes)
    assert probe(crashed.learner, probes) == expected  # exact float equality
    assert probe(uninterrupted.learner, probes) == expected


def scored(daemon: DaemonProc) -> float:
    return total(daemon.metrics(), "stream_al_records_total")


def applied(daemon: DaemonProc) -> float:
    return total(daemon.metrics(), "stream_al_labels_total", outcome="applied")


def run_uninterrupted(harness: Harness, tmp_path: Path) -> Checkpoint:
    """A second daemon, fresh state and its own group, over the same topics to their end.
    The oracle is gone, so the label log it reads is the one the crashed run read."""
    state = tmp_path / "uninterrupted-state"
    config = harness.config("uninterrupted", state_dir=state, group=f"{harness.group}-2",
                            learner=LEARNER)
    daemon = harness.daemon("uninterrupted", config)
    wait_until(lambda: logs_read_to_end(harness, state), "the second daemon to read it all")
    assert daemon.terminate() == 0
    return load_checkpoint(state)
