"""SIGTERM on a real broker: the daemon finishes its batch, checkpoints and exits 0
within seconds; restarted on the same state it resumes exactly where it stopped, with
no record missed or scored twice and no label lost or applied twice."""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kafka import KafkaAdminClient

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

RECORDS = 8_000
STOP_WITHIN_S = 10  # DESIGN §6: "exit 0 within seconds"
LEARNER = {"budget": {"fraction": 0.2, "audit_fraction": 0.05}}


@pytest.fixture
def harness(kafka_bootstrap: str, kafka_admin: KafkaAdminClient,
            unique_topic: Callable[..., str], unique_group: Callable[..., str],
            tmp_path: Path) -> Iterator[Harness]:
    topics = make_topics(kafka_admin, unique_topic)
    with Harness(kafka_bootstrap, topics, unique_group(), tmp_path) as harness:
        yield harness


def test_sigterm_checkpoints_exits_0_and_a_restart_resumes_without_a_gap(
        harness: Harness, tmp_path: Path) -> None:
    records = floor(RECORDS)
    topics, bootstrap = harness.topics, harness.bootstrap
    state = tmp_path / "state"
    # No periodic checkpoint near the signal: the fresh one must come from the stop.
    config = harness.config("daemon", state_dir=state, learner=LEARNER, checkpoint_s=60.0,
                            checkpoint_labels=100_000)
    oracle = harness.oracle(harness.config("oracle"),
                            write_truth(tmp_path / "truth.csv", records))
    daemon = harness.daemon("daemon", config)
    produce_floor(bootstrap, topics.inputs[0], records, partitions=3)
    wait_until(lambda: total(daemon.metrics(), "stream_al_labels_total") >= 100,
               "records and labels to flow")

    signalled = time.time()
    daemon.popen.terminate()
    try:
        assert daemon.popen.wait(timeout=STOP_WITHIN_S) == 0
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running {STOP_WITHIN_S} s after SIGTERM")
    print(f"exited {time.time() - signalled:.2f} s after SIGTERM")
    checkpoint = state / "checkpoint.bin"
    assert checkpoint.stat().st_mtime >= signalled, "no checkpoint written on the way out"
    taken_at = load_checkpoint(state).taken_at
    assert taken_at is not None and taken_at.timestamp() >= signalled

    daemon = harness.daemon("daemon", harness.config("restarted", state_dir=state,
                                                     learner=LEARNER))
    wait_until(lambda: logs_read_to_end(harness, state)
               and count(bootstrap, topics.labels) == count(bootstrap, topics.requests),
               "every record scored and every request answered")
    assert oracle.terminate() == 0
    wait_until(lambda: logs_read_to_end(harness, state), "every label read")
    assert daemon.terminate() == 0

    predicted = Counter(decode_prediction(m.value).record_id
                        for m in read_topic(bootstrap, topics.predictions))
    assert set(predicted) == {r.record["record_id"] for r in records}
    assert max(predicted.values()) == 1, "a clean stop must resume exactly where it stopped"
    requests = [m.value for m in read_topic(bootstrap, topics.requests)]
    labels = [m.value for m in read_topic(bootstrap, topics.labels)]
    folded, outcomes = fold_logs(LearnerConfig.model_validate(LEARNER), requests, labels)
    assert set(outcomes) == {"applied"}, "no request was sent twice, so no label repeats"
    resumed = load_checkpoint(state).learner
    assert versions(resumed) == versions(folded)
    probes = floor(200, seed=99)
    assert probe(resumed, probes) == probe(folded, probes)
