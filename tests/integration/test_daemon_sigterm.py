"""SIGTERM on a real broker: the daemon finishes its batch, checkpoints and exits 0
within seconds; restarted on the same state it resumes exactly where it stopped, with
no record missed or scored twice and no label lost or applied twice."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from tests.clients_support import CLIENTS
from tests.daemon_support import BUDGETED, Harness, assert_same_models, floor, wait_until

# Every test here runs on each Kafka client.
pytestmark = [pytest.mark.integration, pytest.mark.slow,
              pytest.mark.parametrize("kafka_client", CLIENTS)]

RECORDS = 8_000
STOP_WITHIN_S = 10  # DESIGN §6: "exit 0 within seconds"


def test_sigterm_checkpoints_exits_0_and_a_restart_resumes_without_a_gap(
        harness: Harness, tmp_path: Path) -> None:
    records = floor(RECORDS)
    state = tmp_path / "state"
    # No periodic checkpoint near the signal: the fresh one must come from the stop.
    config = harness.config("daemon", state_dir=state, learner=BUDGETED, checkpoint_s=60.0,
                            checkpoint_labels=100_000)
    oracle = harness.oracle(records)
    daemon = harness.daemon("daemon", config)
    harness.produce_floor(records)
    wait_until(lambda: daemon.labels_read() >= 100, "records and labels to flow")

    signalled = time.time()
    daemon.popen.terminate()
    try:
        assert daemon.popen.wait(timeout=STOP_WITHIN_S) == 0
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running {STOP_WITHIN_S} s after SIGTERM")
    print(f"exited {time.time() - signalled:.2f} s after SIGTERM")
    checkpoint = state / "checkpoint.bin"
    assert checkpoint.stat().st_mtime >= signalled, "no checkpoint written on the way out"
    taken_at = harness.checkpoint(state).taken_at
    assert taken_at is not None and taken_at.timestamp() >= signalled

    daemon = harness.daemon("daemon", harness.config("restarted", state_dir=state,
                                                     learner=BUDGETED))
    harness.drain(daemon, oracle, state)

    predicted = harness.predicted()
    assert set(predicted) == {r.record["record_id"] for r in records}
    assert max(predicted.values()) == 1, "a clean stop must resume exactly where it stopped"
    folded = harness.fold(BUDGETED)
    assert set(folded.outcomes) == {"applied"}, "no request was sent twice, so no label repeats"
    assert_same_models(harness.checkpoint(state).learner, folded.learner)
