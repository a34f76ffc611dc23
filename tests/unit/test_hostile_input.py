"""Hostile and unlucky input against the pipeline, in process: whatever arrives on any
topic, the pipeline returns messages (never raises), what it refuses is a dead letter
with a reason, and what it keeps is bounded.

Each case here was reproduced against a real daemon before it was fixed: a tombstone or a
1e200 reading was a crash loop, a 979 KB record a permanent stall, forged requests and
backdated labels taught or silenced the model.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from stream_al.auth import HEADER, RequestSigner
from stream_al.bus import Message, Outgoing
from stream_al.codec import decode_prediction, decode_request, encode
from stream_al.learner import Learner, LearnerConfig
from stream_al.metrics import Metrics
from stream_al.pipeline import Pipeline
from stream_al.records import DeadLetter, OracleLabel
from stream_al.topics import TopicNames
from tests.factories import T0, parametric, request

TOPICS = TopicNames()
ALWAYS: dict[str, Any] = {"budget": {"fraction": 1.0, "audit_fraction": 0.0},
                          "gate": {"strategy": "fixed", "threshold": 0.0}}
SIGNER = RequestSigner(b"a-deployment-key-of-32-bytes-...")


def pipeline(signer: RequestSigner | None = None, **learner: Any
             ) -> tuple[Pipeline, CollectorRegistry]:
    registry = CollectorRegistry()
    config = LearnerConfig.model_validate(learner)
    return Pipeline(Learner(config), TOPICS, Metrics(registry), signer=signer), registry


class Offsets:
    """Hands out increasing offsets per topic, as a log would."""

    def __init__(self) -> None:
        self.next: dict[str, int] = {}

    def msg(self, topic: str, value: bytes | None, timestamp_ms: int = 0,
            headers: tuple[tuple[str, bytes], ...] = ()) -> Message:
        offset = self.next.get(topic, 0)
        self.next[topic] = offset + 1
        return Message(topic, 0, offset, b"k", value, timestamp_ms, headers)


def letters(out: list[Outgoing]) -> list[DeadLetter]:
    return [DeadLetter.model_validate_json(o.value) for o in out if o.topic == TOPICS.dlq]


def dead(registry: CollectorRegistry, reason: str) -> float:
    return registry.get_sample_value("stream_al_dead_letters_total", {"reason": reason}) or 0


def ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def label_bytes(query_id: str, value: str = "fail", at: datetime = T0) -> bytes:
    return encode(OracleLabel(query_id=query_id, label=value, labeler="eng", labeled_at=at))


def device(record_id: str, measurements: dict[str, float | None]) -> bytes:
    return encode(parametric(record_id).model_copy(update={"measurements": measurements}))


def ask(pipe: Pipeline, log: Offsets, record_id: str, **measurements: float | None
        ) -> tuple[Message, list[Outgoing]]:
    """A record through the pipeline, and its request read back from the log."""
    payload = device(record_id, measurements) if measurements else encode(parametric(record_id))
    out = pipe.handle(log.msg(TOPICS.parametric, payload), T0)
    [sent] = [o for o in out if o.topic == TOPICS.requests]
    return log.msg(TOPICS.requests, sent.value, headers=sent.headers), out


# -- one bad message never stops the pipeline ----------------------------------------------


@pytest.mark.parametrize("topic", [TOPICS.parametric, TOPICS.requests, TOPICS.labels])
def test_a_null_value_on_any_topic_is_a_dead_letter_with_an_empty_payload(topic: str) -> None:
    pipe, registry = pipeline()
    out = pipe.handle(Offsets().msg(topic, None), T0)
    out += pipe.drain_labels(requests_caught_up=True, now=T0)
    [letter] = letters(out)
    assert "no value" in letter.error and letter.payload() == b""
    assert letter.payload_bytes == 0
    assert pipe.offsets[(topic, 0)] == 1


def test_a_reading_of_1e200_is_refused_at_decode_naming_the_field() -> None:
    pipe, registry = pipeline(**ALWAYS)
    payload = encode(parametric("d-1", vdd=0.9)).replace(b'"vdd":0.9', b'"vdd":1e200')
    [letter] = letters(pipe.handle(Offsets().msg(TOPICS.parametric, payload), T0))
    assert letter.error.startswith("measurements.vdd: measurement is 1e+200, beyond")
    assert "learner.limits.max_abs_value" in letter.error
    assert dead(registry, "record_invalid") == 1


@pytest.mark.parametrize("template", ["logistic", "hoeffding_tree", "arf", "naive_bayes"])
def test_extreme_but_allowed_readings_never_stop_any_template(template: str) -> None:
    pipe, _ = pipeline(**ALWAYS, model={"template": template})
    log = Offsets()
    for i, value in enumerate([1e12, -1e12, 0.5, 1e12, 3e-300, -1e12] * 3):
        request_message, out = ask(pipe, log, f"d-{i}", vdd=value, idd=1.0)
        assert out[0].topic == TOPICS.predictions
        out = pipe.handle(request_message, T0)
        query_id = json.loads(request_message.value or b"{}")["query_id"]
        pipe.handle(log.msg(TOPICS.labels, label_bytes(query_id, "fail" if i % 2 else "pass")),
                    T0)
        prediction = decode_prediction(pipe.handle(log.msg(
            TOPICS.parametric, encode(parametric(f"p-{i}", vdd=0.9, idd=1.0))), T0)[0].value)
        assert all(0.0 <= p <= 1.0 for p in prediction.proba.values())


def test_an_exception_inside_a_model_dead_letters_that_record_and_the_next_is_scored(
        monkeypatch: pytest.MonkeyPatch) -> None:
    pipe, registry = pipeline()
    log = Offsets()
    pipe.handle(log.msg(TOPICS.parametric, encode(parametric("warm"))), T0)
    model = pipe.learner.registry.get("PMIC-A7").model
    real = model.predict_proba_one

    def explode(x: dict[str, Any]) -> dict[str, float]:
        if x.get("vdd") == 7.0:
            raise OverflowError("math range error")
        result: dict[str, float] = real(x)
        return result

    monkeypatch.setattr(model, "predict_proba_one", explode)
    [letter] = letters(pipe.handle(log.msg(TOPICS.parametric,
                                           encode(parametric("bad", vdd=7.0))), T0))
    assert "OverflowError: math range error" in letter.error
    assert dead(registry, "record_failed") == 1
    good = pipe.handle(log.msg(TOPICS.parametric, encode(parametric("good"))), T0)
    assert good[0].topic == TOPICS.predictions


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(topic=st.sampled_from([TOPICS.parametric, TOPICS.transactions, TOPICS.requests,
                              TOPICS.labels]),
       value=st.none() | st.binary(max_size=300) | st.builds(
           lambda d: json.dumps(d).encode(),
           st.dictionaries(st.sampled_from(["schema_version", "kind", "record_id", "ts",
                                            "product", "measurements", "query_id", "label",
                                            "labeled_at", "numeric", "record"]),
                           st.none() | st.integers() | st.floats() | st.text(max_size=5)
                           | st.dictionaries(st.text(max_size=3), st.floats()),
                           max_size=8)))
def test_no_payload_on_any_topic_makes_the_pipeline_raise(topic: str,
                                                          value: bytes | None) -> None:
    pipe, _ = pipeline()
    out = pipe.handle(Message(topic, 0, 0, None, value), T0)
    out += pipe.drain_labels(requests_caught_up=True, now=T0)
    assert all(isinstance(o, Outgoing) for o in out)
    assert pipe.offsets[(topic, 0)] == 1 or pipe.waiting_labels


# -- nothing produced can exceed what Kafka accepts -----------------------------------------


def test_a_record_whose_request_would_not_fit_is_predicted_but_never_asked() -> None:
    pipe, registry = pipeline(**ALWAYS, limits={"max_request_bytes": 20_000})
    big = {f"test_{i:05d}": 0.5 for i in range(1500)}  # ~30 KB of JSON
    out = pipe.handle(Offsets().msg(TOPICS.parametric, device("big", dict(big))), T0)
    assert [o.topic for o in out] == [TOPICS.predictions]
    assert not decode_prediction(out[0].value).queried
    assert registry.get_sample_value("stream_al_query_skips_total",
                                     {"reason": "too_large"}) == 1
    assert pipe.learner.budget.spent_ratio("PMIC-A7") == 0


def test_a_huge_dead_letter_keeps_the_start_the_size_and_the_digest() -> None:
    pipe, _ = pipeline(limits={"max_dead_letter_payload_bytes": 1000})
    payload = b"{" + b"x" * 50_000
    [letter] = letters(pipe.handle(Offsets().msg(TOPICS.parametric, payload), T0))
    assert letter.payload_truncated and letter.payload() == payload[:1000]
    assert letter.payload_bytes == len(payload)
    import hashlib
    assert letter.payload_sha256 == hashlib.sha256(payload).hexdigest()


def test_predictions_carry_only_the_top_classes() -> None:
    pipe, _ = pipeline(**ALWAYS, limits={"prediction_top_k": 3})
    log = Offsets()
    for i in range(8):  # eight classes learnt
        request_message, _ = ask(pipe, log, f"d-{i}", vdd=float(i))
        pipe.handle(request_message, T0)
        query_id = json.loads(request_message.value or b"{}")["query_id"]
        pipe.handle(log.msg(TOPICS.labels, label_bytes(query_id, f"bin-{i}")), T0)
    out = pipe.handle(log.msg(TOPICS.parametric, encode(parametric("x", vdd=3.0))), T0)
    assert len(decode_prediction(out[0].value).proba) == 3
    assert len(decode_request(out[1].value).proba) == 3


def test_a_broker_refusal_becomes_a_dead_letter_of_the_message_it_answered() -> None:
    pipe, registry = pipeline()
    refused = Outgoing(TOPICS.predictions, b"d-1", b'{"big": true}', "ate.parametric[4]@17")
    letter = DeadLetter.model_validate_json(
        pipe.dead_letter_for(refused, "MessageSizeTooLargeError", T0).value)
    assert (letter.source_topic, letter.partition, letter.offset) == ("ate.parametric", 4, 17)
    assert "stream-al.predictions" in letter.error and "MessageSizeTooLarge" in letter.error
    assert dead(registry, "output_refused") == 1


# -- bounded resources -----------------------------------------------------------------------


def test_model_keys_beyond_the_cap_are_dead_lettered_and_cost_nothing() -> None:
    pipe, registry = pipeline(limits={"max_model_keys": 50})
    log = Offsets()
    for i in range(10_000):
        pipe.handle(log.msg(TOPICS.parametric, encode(parametric(f"d-{i}", product=f"P{i}"))),
                    T0)
    assert len(pipe.learner.registry) == 50 and len(pipe.learner.policies) == 50
    assert dead(registry, "record_refused") == 10_000 - 50
    [letter] = letters(pipe.handle(log.msg(TOPICS.parametric,
                                           encode(parametric("x", product="NEW"))), T0))
    assert "learner.limits.max_model_keys (50)" in letter.error


def test_model_keys_must_match_the_pattern_when_one_is_set() -> None:
    pipe, _ = pipeline(limits={"model_key_pattern": "PMIC-[A-Z0-9]+"})
    log = Offsets()
    assert pipe.handle(log.msg(TOPICS.parametric, encode(parametric("a"))), T0)[0].topic == \
        TOPICS.predictions
    [letter] = letters(pipe.handle(log.msg(TOPICS.parametric,
                                           encode(parametric("b", product="junk"))), T0))
    assert "model_key_pattern" in letter.error


def test_a_label_that_would_add_90000_features_is_refused() -> None:
    pipe, registry = pipeline(**ALWAYS, limits={"max_features_per_model": 1000,
                                                "max_record_bytes": 3_000_000,
                                                "max_request_bytes": 3_000_000})
    log = Offsets()
    wide = {f"m{i}": 0.1 for i in range(90_000)}
    request_message, _ = ask(pipe, log, "wide", **wide)
    pipe.handle(request_message, T0)
    query_id = json.loads(request_message.value or b"{}")["query_id"]
    [letter] = letters(pipe.handle(log.msg(TOPICS.labels, label_bytes(query_id)), T0))
    assert "max_features_per_model (1000)" in letter.error
    assert pipe.learner.registry.get("PMIC-A7").version == 0


def test_a_label_naming_class_5001_is_refused() -> None:
    pipe, _ = pipeline(**ALWAYS, limits={"max_classes_per_model": 5000},
                       warmup_max_labels=1)
    entry = pipe.learner.registry.get("PMIC-A7")
    entry.class_counts.update({f"bin-{i}": 1 for i in range(5000)})
    log = Offsets()
    request_message, _ = ask(pipe, log, "d")
    pipe.handle(request_message, T0)
    query_id = json.loads(request_message.value or b"{}")["query_id"]
    [letter] = letters(pipe.handle(log.msg(TOPICS.labels, label_bytes(query_id, "bin-new")),
                                   T0))
    assert "already knows 5000 classes" in letter.error


# -- strangers cannot teach or silence the model ---------------------------------------------


def test_a_forged_request_is_dead_lettered_and_its_label_is_an_unknown_query() -> None:
    pipe, registry = pipeline(signer=SIGNER)
    log = Offsets()
    forged = request("forged", expires_at=datetime(9999, 1, 1, tzinfo=UTC))
    out = pipe.handle(log.msg(TOPICS.requests, encode(forged),
                              headers=((HEADER, b"0" * 64),)), T0)
    assert "not signed" in letters(out)[0].error
    assert dead(registry, "request_forged") == 1 and len(pipe.learner.pending) == 0
    pipe.handle(log.msg(TOPICS.labels, label_bytes(forged.query_id, "invented")), T0)
    out = pipe.drain_labels(requests_caught_up=True, now=T0)
    assert letters(out)[0].error.startswith("no open query")
    assert "invented" not in pipe.learner.registry.get("PMIC-A7").class_counts


def test_the_daemons_own_signed_requests_are_accepted() -> None:
    pipe, _ = pipeline(signer=SIGNER, **ALWAYS)
    log = Offsets()
    request_message, _ = ask(pipe, log, "d-1")
    assert dict(request_message.headers)[HEADER] == SIGNER.sign(request_message.value or b"")
    other = Pipeline(Learner(pipe.learner.config), TOPICS, signer=SIGNER)  # another replica
    assert other.handle(request_message, T0) == [] and len(other.learner.pending) == 1


def test_a_backdated_label_is_judged_on_the_logs_time_not_its_own() -> None:
    pipe, registry = pipeline(**ALWAYS, query_ttl_s=60)
    log = Offsets()
    request_message, _ = ask(pipe, log, "d-1")
    pipe.handle(request_message, T0)
    query_id = json.loads(request_message.value or b"{}")["query_id"]
    year_ago = T0 - timedelta(days=365)
    out = pipe.handle(log.msg(TOPICS.labels, label_bytes(query_id, at=year_ago),
                              timestamp_ms=ms(T0 + timedelta(seconds=90))), T0)
    assert letters(out)[0].error.startswith(f"query {query_id} expired at")
    assert registry.get_sample_value("stream_al_label_latency_seconds_sum") == 90.0


def test_queries_that_expire_unanswered_stop_holding_back_new_ones() -> None:
    pipe, _ = pipeline(gate=ALWAYS["gate"], query_ttl_s=60,
                       budget={"fraction": 1.0, "audit_fraction": 0, "max_pending": 3})
    log = Offsets()
    for i in range(3):
        ask(pipe, log, f"d-{i}")
    blocked = pipe.handle(log.msg(TOPICS.parametric, encode(parametric("blocked"))), T0)
    assert [o.topic for o in blocked] == [TOPICS.predictions]
    later = T0 + timedelta(minutes=2)
    out = pipe.handle(log.msg(TOPICS.parametric, encode(parametric("later"))), later)
    assert [o.topic for o in out] == [TOPICS.predictions, TOPICS.requests]
    pipe.publish_state(later)
    assert pipe.metrics is not None
    assert pipe.metrics.registry.get_sample_value("stream_al_pending_queries") == 1


def test_replayed_messages_after_a_restore_are_not_counted_twice() -> None:
    counted: dict[tuple[str, int], int] = {}
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    records = [encode(parametric(f"d-{i}")) for i in range(5)]
    for _attempt in range(2):  # the second pass is the replay after a restore
        pipe = Pipeline(Learner(LearnerConfig()), TOPICS, metrics, counted=counted)
        for offset, value in enumerate(records):
            pipe.handle(Message(TOPICS.parametric, 0, offset, None, value), T0)
    total = sum(registry.get_sample_value("stream_al_records_total",
                                          {"kind": "parametric", "outcome": outcome}) or 0
                for outcome in ("predicted", "queried"))
    assert total == 5


def test_a_part_with_no_measurements_is_not_asked_for_uncertainty() -> None:
    # Half the parts of a real lot stopped before any parametric test; being maximally
    # uncertain, they took 75 % of the uncertainty queries.
    pipe, registry = pipeline(gate=ALWAYS["gate"], warmup_max_labels=1,
                              budget={"fraction": 1.0, "audit_fraction": 0.0})
    log = Offsets()
    request_message, _ = ask(pipe, log, "warm")  # warm-up ends after one label
    pipe.handle(request_message, T0)
    query_id = json.loads(request_message.value or b"{}")["query_id"]
    pipe.handle(log.msg(TOPICS.labels, label_bytes(query_id, "pass")), T0)
    empty = pipe.handle(log.msg(TOPICS.parametric, device("empty", {"a": None, "b": None})),
                        T0)
    assert [o.topic for o in empty] == [TOPICS.predictions]
    assert registry.get_sample_value("stream_al_query_skips_total",
                                     {"reason": "little_data"}) == 1
    full = pipe.handle(log.msg(TOPICS.parametric, device("full", {"a": 0.5, "b": 0.7})), T0)
    assert [o.topic for o in full] == [TOPICS.predictions, TOPICS.requests]
