"""End to end on a real broker: 20,000 floor records through ``stream-al run`` with a
simulated oracle answering. Every record is predicted exactly once, queries keep the
budget in every window, audited accuracy improves, and /metrics agrees with the topics.
"""

from __future__ import annotations

import base64
import json
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable

import pytest

from stream_al.codec import decode_label, decode_prediction, decode_request
from stream_al.learner import LearnerConfig
from stream_al.records import OracleLabel, OracleRequest, Prediction
from tests.clients_support import CLIENTS
from tests.daemon_support import DaemonProc, Harness, Samples, floor, total, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RECORDS = 20_000
BUDGET, AUDIT, WINDOW = 0.2, 0.05, 1000
LEARNER = {"budget": {"fraction": BUDGET, "audit_fraction": AUDIT, "window": WINDOW}}
CHUNK = 1000
EDGE_AUDITS = 150  # audit labels that make "the start" and "the end" of the run
GARBAGE = b"\x00\xffnot json at all"
_CHECKPOINT_TS = "stream_al_last_checkpoint_timestamp_seconds"


@pytest.mark.parametrize("kafka_client", CLIENTS)
def test_every_record_is_predicted_once_within_budget_and_the_model_improves(
        harness: Harness) -> None:
    records = floor(RECORDS)
    topics = harness.topics
    daemon = harness.daemon("daemon", harness.config("daemon", learner=LEARNER))
    wait_until(lambda: daemon.readyz()[0] == 200, "the daemon to be ready")
    oracle = harness.oracle(records)

    [garbage_at] = harness.produce(topics.inputs[0], [(1, b"bad", GARBAGE)])
    for start in range(0, RECORDS, CHUNK):
        # A floor's labels come back while it runs: pace the records so that each
        # chunk is scored by models that learnt every label of the chunks before.
        harness.produce_floor(records[start:start + CHUNK])
        consumed = start + CHUNK + 1  # the garbage record counts too
        wait_until(lambda: settled(daemon, harness, consumed), "the chunk's labels")  # noqa: B023
    assert oracle.terminate() == 0
    samples = published(daemon)
    assert daemon.terminate() == 0

    predictions = [decode_prediction(m.value) for m in harness.read(topics.predictions)]
    requests = [decode_request(m.value) for m in harness.read(topics.requests)]
    label_log = [decode_label(m.value) for m in harness.read(topics.labels)]

    predicted = Counter(p.record_id for p in predictions)
    assert set(predicted) == {r.record["record_id"] for r in records}
    assert max(predicted.values()) == 1, "no crash, so no prediction may be sent twice"

    queried = [p.query_id for p in predictions if p.queried]
    assert Counter(queried) == Counter(r.query_id for r in requests)
    for model_key, most in most_queries_per_window(predictions).items():
        assert most <= BUDGET * WINDOW + 1, f"{model_key}: {most} queries in {WINDOW} records"

    first, last, by_model = audit_accuracy(requests, label_log)
    assert last > first, f"audit accuracy fell from {first:.3f} to {last:.3f}"
    for model_key, rolling in by_model.items():
        assert samples[("stream_al_model_accuracy",
                        (("model_key", model_key), ("window", "audit")))] == rolling

    assert_metrics_match_topics(samples, harness, predictions=len(predictions),
                                requests=len(requests), labels=len(label_log))
    assert_garbage_dead_lettered(harness, garbage_at)


def published(daemon: DaemonProc) -> Samples:
    """Metrics once gauges reflect the current state: they are published right after a
    checkpoint is marked, so wait for two checkpoints from now."""
    def checkpoint_after(moment: float) -> Callable[[], bool]:
        return lambda: total(daemon.metrics(), _CHECKPOINT_TS) > moment

    now = time.time()
    wait_until(checkpoint_after(now), "a checkpoint")
    first = total(daemon.metrics(), _CHECKPOINT_TS)
    wait_until(checkpoint_after(first), "the next checkpoint")
    return daemon.metrics()


def settled(daemon: DaemonProc, harness: Harness, consumed: int) -> bool:
    """Has the daemon consumed ``consumed`` records, and learnt every label they asked for?"""
    samples = daemon.metrics()
    if total(samples, "stream_al_records_total") < consumed:
        return False
    requests = harness.count(harness.topics.requests)
    labels = harness.count(harness.topics.labels)
    return labels == requests == total(samples, "stream_al_labels_total")


def most_queries_per_window(predictions: list[Prediction]) -> dict[str, int]:
    """Per model, the most queries in any WINDOW consecutive records of that model, in
    the order the daemon decided (the single prediction partition's order)."""
    windows: dict[str, deque[bool]] = defaultdict(lambda: deque(maxlen=WINDOW))
    most: Counter[str] = Counter()
    for prediction in predictions:
        window = windows[prediction.model_key]
        window.append(prediction.queried)
        most[prediction.model_key] = max(most[prediction.model_key], sum(window))
    return dict(most)


def audit_accuracy(requests: list[OracleRequest], labels: list[OracleLabel]
                   ) -> tuple[float, float, dict[str, float]]:
    """Accuracy of the predictions made on audited records, judged by their labels:
    over the first and the last EDGE_AUDITS audits answered (all models), and per model
    over its last accuracy_window (what the rolling audit gauge shows)."""
    asked = {r.query_id: r for r in requests if r.reason == "audit"}
    hits = [(asked[label.query_id].model_key, asked[label.query_id].predicted == label.label)
            for label in labels if label.query_id in asked]
    assert len(hits) >= 2 * EDGE_AUDITS, f"only {len(hits)} audits were answered"
    start = sum(hit for _, hit in hits[:EDGE_AUDITS]) / EDGE_AUDITS
    end = sum(hit for _, hit in hits[-EDGE_AUDITS:]) / EDGE_AUDITS
    per_model: dict[str, list[bool]] = defaultdict(list)
    for model_key, hit in hits:
        per_model[model_key].append(hit)
    size = LearnerConfig().accuracy_window
    rolling = {key: sum(h[-size:]) / len(h[-size:]) for key, h in per_model.items()}
    return start, end, rolling


def assert_metrics_match_topics(samples: Samples, harness: Harness, *, predictions: int,
                                requests: int, labels: int) -> None:
    scored = (total(samples, "stream_al_records_total", outcome="predicted")
              + total(samples, "stream_al_records_total", outcome="queried"))
    assert scored == predictions
    assert total(samples, "stream_al_queries_total") == requests
    assert total(samples, "stream_al_labels_total", outcome="applied") == labels
    assert total(samples, "stream_al_labels_total") == labels, "every label was applied"
    dead = harness.count(harness.topics.dlq)
    assert total(samples, "stream_al_dead_letters_total") == dead == 1
    assert total(samples, "stream_al_records_total", outcome="dead_letter") == 1


def assert_garbage_dead_lettered(harness: Harness, landed: tuple[int, int]) -> None:
    [letter] = harness.read(harness.topics.dlq)
    body = json.loads(letter.value)
    assert (body["source_topic"], body["partition"], body["offset"]) == (
        harness.topics.inputs[0], *landed)
    assert base64.b64decode(body["payload_b64"]) == GARBAGE
    assert "not valid UTF-8" in body["error"]

