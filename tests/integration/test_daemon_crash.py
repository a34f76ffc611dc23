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

from pathlib import Path

import pytest

from stream_al.state import Checkpoint
from tests.clients_support import CLIENTS
from tests.daemon_support import BUDGETED, Harness, assert_same_models, floor, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CHUNK = 5_000


@pytest.mark.parametrize("kafka_client", CLIENTS)
def test_after_three_kill9s_every_record_is_predicted_and_the_model_is_exact(
        harness: Harness, tmp_path: Path) -> None:
    records = floor(3 * CHUNK)
    state = tmp_path / "crashing-state"
    config = harness.config("crashing", state_dir=state, learner=BUDGETED)
    oracle = harness.oracle(records, delay_s=0.5)

    daemon = harness.daemon("crashing", config)
    harness.produce_floor(records[:CHUNK])
    wait_until(lambda: harness.count(harness.topics.predictions) >= CHUNK // 3,
               "some predictions")
    daemon.kill9()  # 1: mid-input, before any checkpoint may cover the labels

    daemon = harness.daemon("crashing", config)
    harness.produce_floor(records[CHUNK:2 * CHUNK])
    wait_until(lambda: daemon.scored() >= CHUNK // 2 and daemon.labels_read("applied") >= 100,
               "the restarted daemon to score records and learn labels")
    daemon.kill9()  # 2: while records and labels flow

    daemon = harness.daemon("crashing", config)
    harness.produce_floor(records[2 * CHUNK:])
    wait_until(lambda: daemon.labels_read("applied") >= 1,
               "the restarted daemon to replay a label")
    daemon.kill9()  # 3: while it catches up on the labels since its checkpoint

    daemon = harness.daemon("crashing", config)
    # Once a checkpoint covers every input, no request is added: then wait for answers.
    harness.drain(daemon, oracle, state)
    crashed = harness.checkpoint(state)

    predicted = set(harness.predicted())
    assert predicted == {r.record["record_id"] for r in records}, "a record lacks a prediction"

    uninterrupted = run_uninterrupted(harness, tmp_path)
    folded = harness.fold(BUDGETED)
    assert folded.outcomes["applied"] > 0 and set(folded.outcomes) <= {"applied", "duplicate"}
    assert folded.learnt == folded.outcomes["applied"], "a label applied twice or lost"
    assert_same_models(folded.learner, crashed.learner, uninterrupted.learner, probes=300)


def run_uninterrupted(harness: Harness, tmp_path: Path) -> Checkpoint:
    """A second daemon, fresh state and its own group, over the same topics to their end.
    The oracle is gone, so the label log it reads is the one the crashed run read."""
    state = tmp_path / "uninterrupted-state"
    config = harness.config("uninterrupted", state_dir=state, group=f"{harness.group}-2",
                            learner=BUDGETED)
    daemon = harness.daemon("uninterrupted", config)
    wait_until(lambda: harness.logs_read_to_end(state), "the second daemon to read it all")
    assert daemon.terminate() == 0
    return harness.checkpoint(state)
