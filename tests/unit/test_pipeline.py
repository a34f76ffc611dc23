"""The byte-level pipeline on the in-memory bus: dead letters, label order, offsets,
checkpoints, and the whole loop with a simulated oracle."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from stream_al.bus import Message
from stream_al.codec import decode_prediction, decode_request, encode
from stream_al.inmemory import InMemoryLoop
from stream_al.learner import Learner, LearnerConfig
from stream_al.metrics import Metrics
from stream_al.oracle import SimulatedOracle
from stream_al.pipeline import Pipeline
from stream_al.simulate.floor import FloorConfig, FloorSimulator
from stream_al.state import dumps, loads
from stream_al.topics import TopicNames
from tests.factories import T0, label, parametric

TOPICS = TopicNames()
ALWAYS = {"budget": {"fraction": 1.0, "audit_fraction": 0.0},
          "gate": {"strategy": "fixed", "threshold": 0.0}}


def pipeline(**learner: object) -> tuple[Pipeline, CollectorRegistry]:
    registry = CollectorRegistry()
    return Pipeline(Learner(LearnerConfig.model_validate(learner)), TOPICS,
                    Metrics(registry)), registry


def msg(topic: str, value: bytes, offset: int = 0, partition: int = 0) -> Message:
    return Message(topic, partition, offset, b"k", value)


def test_a_bad_record_becomes_a_dead_letter_with_where_and_why() -> None:
    pipe, registry = pipeline()
    [letter] = pipe.handle(msg("ate.parametric", b'{"kind": "parametric"', 7, 2), T0)
    assert letter.topic == TOPICS.dlq
    body = json.loads(letter.value)
    assert (body["source_topic"], body["partition"], body["offset"]) == ("ate.parametric", 2, 7)
    assert base64.b64decode(body["payload_b64"]) == b'{"kind": "parametric"'
    assert "JSON" in body["error"]
    assert pipe.offsets[("ate.parametric", 2)] == 8
    assert registry.get_sample_value("stream_al_dead_letters_total",
                                     {"reason": "record_invalid"}) == 1


def test_a_good_record_yields_a_prediction_and_maybe_a_request() -> None:
    pipe, _ = pipeline(**ALWAYS)
    out = pipe.handle(msg("ate.parametric", encode(parametric("d-1"))), T0)
    assert [o.topic for o in out] == [TOPICS.predictions, TOPICS.requests]
    prediction, request = decode_prediction(out[0].value), decode_request(out[1].value)
    assert prediction.queried and prediction.query_id == request.query_id
    assert out[0].key == b"d-1" and out[1].key == request.query_id.encode()


def test_a_label_waits_for_its_request_until_the_request_log_is_caught_up() -> None:
    pipe, registry = pipeline()
    assert pipe.handle(msg(TOPICS.labels, encode(label("q-later")), 0), T0) == []
    assert pipe.waiting_labels and (TOPICS.labels, 0) not in pipe.offsets
    [letter] = pipe.drain_labels(requests_caught_up=True, now=T0)
    assert "no open query" in json.loads(letter.value)["error"]
    assert pipe.offsets[(TOPICS.labels, 0)] == 1
    assert registry.get_sample_value("stream_al_labels_total",
                                     {"outcome": "unknown_query"}) == 1


def test_labels_are_applied_in_log_order_once_the_request_arrives() -> None:
    producer, _ = pipeline(**ALWAYS)
    out = producer.handle(msg("ate.parametric", encode(parametric("d-1"))), T0)
    request_bytes = out[1].value
    replica, registry = pipeline(**ALWAYS)  # has not seen the request yet
    query_id = decode_request(request_bytes).query_id
    replica.handle(msg(TOPICS.labels, encode(label(query_id)), 0), T0)
    replica.handle(msg(TOPICS.labels, encode(label("q-x")), 1), T0)
    assert len(replica.waiting_labels) == 2
    replica.handle(msg(TOPICS.requests, request_bytes, 0), T0)
    assert len(replica.waiting_labels) == 1  # the second still waits: it could be in flight
    assert replica.learner.registry.get("PMIC-A7").version == 1
    assert registry.get_sample_value("stream_al_labels_total", {"outcome": "applied"}) == 1


def test_its_own_request_read_back_is_not_decoded_again_but_a_look_alike_is(
        monkeypatch: pytest.MonkeyPatch) -> None:
    pipe, registry = pipeline(**ALWAYS)
    [_, sent] = pipe.handle(msg("ate.parametric", encode(parametric("d-1"))), T0)
    decoded: list[bytes] = []

    def counting_decode(value: bytes, **limits: Any) -> Any:
        decoded.append(value)
        return decode_request(value, **limits)

    monkeypatch.setattr("stream_al.pipeline.decode_request", counting_decode)
    own = Message(TOPICS.requests, 0, 0, sent.key, sent.value)
    assert pipe.handle(own, T0) == [] and decoded == []
    assert pipe.offsets[(TOPICS.requests, 0)] == 1
    # The same key with other bytes (forged, or another replica's) is decoded and judged
    # as before: this one is not JSON, so it is a dead letter.
    forged = Message(TOPICS.requests, 0, 1, sent.key, sent.value[:-1])
    [letter] = pipe.handle(forged, T0)
    assert decoded == [sent.value[:-1]] and letter.topic == TOPICS.dlq
    assert registry.get_sample_value("stream_al_dead_letters_total",
                                     {"reason": "request_invalid"}) == 1
    # Read back once: a replay of the same bytes is decoded (and, already open, ignored).
    assert pipe.handle(Message(TOPICS.requests, 0, 2, sent.key, sent.value), T0) == []
    assert decoded[-1] == sent.value and len(pipe.learner.pending) == 1


def test_a_malformed_label_is_a_dead_letter_and_counted() -> None:
    pipe, registry = pipeline()
    [letter] = pipe.handle(msg(TOPICS.labels, b'{"query_id": 3}'), T0)
    assert letter.topic == TOPICS.dlq
    assert registry.get_sample_value("stream_al_labels_total", {"outcome": "invalid"}) == 1


def test_the_whole_loop_predicts_every_record_once_and_learns_within_budget() -> None:
    n = 3000
    simulator = FloorSimulator(FloorConfig(run_length=n), seed=3)
    stream = list(simulator.stream(n))
    truth = {s.record["record_id"]: s.truth for s in stream}
    pipe, registry = pipeline(budget={"fraction": 0.1})
    loop = InMemoryLoop(pipe, SimulatedOracle(lambda r: truth[r.record_id],
                                              timedelta(seconds=5)))
    for simulated in stream:
        loop.publish("ate.parametric", simulated.record["record_id"].encode(),
                     json.dumps(simulated.record).encode())
    now = T0
    while loop.step(now, max_records=200):
        now += timedelta(seconds=10)
    loop.step(now + timedelta(seconds=10))
    predicted = [decode_prediction(m.value or b"").record_id for m in
                 loop.bus.messages(TOPICS.predictions)]
    assert sorted(predicted) == sorted(truth)
    queries = len(loop.bus.messages(TOPICS.requests))
    assert 0 < queries <= 0.1 * n + 3 * 3  # B·n plus one window's slack per model
    applied = registry.get_sample_value("stream_al_labels_total", {"outcome": "applied"})
    assert applied == queries == loop.counts.labels_sent
    assert registry.get_sample_value("stream_al_records_total",
                                     {"kind": "parametric", "outcome": "queried"}) == queries


def test_a_checkpoint_resumes_with_the_same_offsets_and_decisions() -> None:
    pipe, _ = pipeline(**ALWAYS)
    pipe.handle(msg("ate.parametric", encode(parametric("d-1")), 4), T0)
    restored = Pipeline.from_checkpoint(loads(dumps(pipe.checkpoint(T0))), TOPICS)
    assert restored.offsets == {("ate.parametric", 0): 5}
    probe = encode(parametric("d-2"))
    assert pipe.handle(msg("ate.parametric", probe, 5), T0) == \
        restored.handle(msg("ate.parametric", probe, 5), T0)
