"""Bad input on a real broker: every bad record, request or label ends in the dead-letter
topic with where it came from, its exact bytes and a reason a person can act on (or in
the right ``stream_al_labels_total`` outcome), and the daemon scores the good records
around it. A label naming a class never seen before is learnt, not rejected.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from stream_al.codec import encode
from stream_al.features import extract
from stream_al.learner import LearnerConfig
from stream_al.records import OracleLabel, OracleRequest, ParametricRecord, query_id_for
from tests.clients_support import CLIENTS
from tests.daemon_support import DaemonProc, Harness, floor, total, wait_until

# Every test here runs on each Kafka client.
pytestmark = [pytest.mark.integration,
              pytest.mark.parametrize("kafka_client", CLIENTS)]

CODEC_LIMIT = 1_000_000  # stream_al.codec.MAX_BYTES
DEAD_LETTER_KEEP = 262_144  # learner.limits.max_dead_letter_payload_bytes
BACKLOG = 30_000
WARM_UP = 2_000  # records scored before the backlog, so that labels flow


def padded(record: dict[str, Any], size: int) -> bytes:
    """``record`` as JSON of exactly ``size`` bytes (an extra field, kept as unknown)."""
    base = json.dumps({**record, "pad": ""}).encode()
    return json.dumps({**record, "pad": "x" * (size - len(base))}).encode()


def with_measurement(record: dict[str, Any], record_id: str, value: float) -> bytes:
    """``record`` renamed, its first measurement replaced (JSON's NaN/Infinity literals)."""
    first = next(iter(record["measurements"]))
    measurements = {**record["measurements"], first: value}
    return json.dumps({**record, "record_id": record_id, "measurements": measurements}).encode()


def bad_records(good: dict[str, Any]) -> dict[bytes, str]:
    """Payload → a phrase its dead letter's reason must contain."""
    infinite = with_measurement(good, "inf-1", math.inf)
    return {
        b"\x00\xff\xfe garbage": "not valid UTF-8",
        b"{not json": "not valid JSON",
        b"[1, 2, 3]": "expected a JSON object",
        b'{"schema_version": 1, "kind": "parametric"}': "record_id: required field is missing",
        json.dumps({**good, "schema_version": 2}).encode(): "schema_version: expected 1",
        json.dumps({**good, "kind": "wafer-map"}).encode(): 'unknown record kind "wafer-map"',
        infinite: "Infinity",
        padded({**good, "record_id": "huge-1"}, CODEC_LIMIT + 1): "the limit is 1,000,000",
    }


def test_bad_records_are_dead_lettered_while_good_ones_are_scored(harness: Harness) -> None:
    records = floor(900)
    topics = harness.topics
    good = records[0].record
    nan = with_measurement(good, "nan-1", math.nan)  # a skipped test: imputed, not refused
    just_fits = padded({**good, "record_id": "big-1"}, CODEC_LIMIT)
    bad = bad_records(good)
    daemon = harness.daemon("daemon", harness.config("daemon"))

    harness.produce_floor(records[:300])
    landed = harness.produce(topics.inputs[0],
                             [(i % 3, None, value) for i, value in enumerate(bad)])
    harness.produce_floor(records[300:600])
    harness.produce(topics.inputs[0], [(0, None, nan), (1, None, just_fits)])
    harness.produce_floor(records[600:])
    expected = len(records) + 2 + len(bad)
    wait_until(lambda: total(daemon.metrics(), "stream_al_records_total") == expected,
               "every record consumed")
    samples = daemon.metrics()

    # A record is counted when it is scored; its prediction is delivered a moment later
    # (the producer batches), so wait for the deliveries before judging what came.
    scored = {r.record["record_id"] for r in records} | {"nan-1", "big-1"}
    wait_until(lambda: set(harness.predicted()) >= scored, "every prediction delivered")
    assert set(harness.predicted()) == scored
    letters = {(m["source_topic"], m["partition"], m["offset"]): m
               for m in (json.loads(m.value) for m in harness.read(topics.dlq))}
    assert len(letters) == len(bad)
    for (value, phrase), (partition, offset) in zip(bad.items(), landed, strict=True):
        letter = letters[(topics.inputs[0], partition, offset)]
        kept = base64.b64decode(letter["payload_b64"])
        # A dead letter keeps at most 256 KiB of the payload, with the size and digest
        # of the whole: the exact bytes for every small payload, the start of a huge one.
        assert kept == value[:DEAD_LETTER_KEEP] and letter["payload_bytes"] == len(value)
        assert letter["payload_truncated"] == (len(value) > DEAD_LETTER_KEEP)
        assert letter["payload_sha256"] == hashlib.sha256(value).hexdigest()
        assert phrase in letter["error"], letter["error"]
    assert total(samples, "stream_al_records_total", outcome="dead_letter") == len(bad)
    assert total(samples, "stream_al_dead_letters_total", reason="record_invalid") == len(bad)
    assert daemon.terminate() == 0


def test_bad_labels_are_counted_and_dead_lettered_and_a_new_class_is_learnt(
        harness: Harness, tmp_path: Path) -> None:
    records = floor(1200)
    topics = harness.topics
    state = tmp_path / "state"
    daemon = harness.daemon("daemon", harness.config("daemon", state_dir=state))
    oracle = harness.oracle(records)
    harness.produce_floor(records[:600])
    wait_until(lambda: settled(daemon, harness, 600), "the first labels")

    expired, fresh = crafted_request("expired", timedelta(0)), crafted_request("fresh")
    answered = harness.read(topics.labels)[0].value
    at = datetime.now(UTC) + timedelta(minutes=1)
    bad_request = harness.produce(topics.requests, [(0, None, b"[]")])
    harness.produce(topics.requests, [(1, None, encode(expired)), (2, None, encode(fresh))])
    bad = {  # label payload → (outcome, phrase of the reason or None when applied)
        encode(label("q-never-asked", "pass", at)): ("unknown_query", "no open query"),
        b"\x00 not a label": ("invalid", "not valid JSON"),
        b'{"schema_version": 1, "query_id": "q-x"}': ("invalid", "label: required field"),
        encode(label(fresh.query_id, "   ", at)): ("invalid", "label is empty"),
        encode(label(fresh.query_id, "scratched-die", at)): ("applied", None),
        encode(label(fresh.query_id, "pass", at)): ("duplicate", "already answered"),
        encode(label(expired.query_id, "pass", at)): ("expired", "expired at"),
        answered: ("duplicate", "already answered"),
    }
    landed = harness.produce(topics.labels, [(0, None, value) for value in bad])
    harness.produce_floor(records[600:])
    # The oracle knows no truth for the crafted records, nor can it read the bad request.
    wait_until(lambda: settled(daemon, harness, len(records), unanswerable=3,
                               extra_labels=len(bad)), "every label read")
    samples = daemon.metrics()
    assert oracle.terminate() == 0
    assert daemon.terminate() == 0

    oracle_labels = harness.count(topics.labels) - len(bad)
    outcomes = [outcome for outcome, _ in bad.values()]
    for outcome in ("unknown_query", "invalid", "duplicate", "expired"):
        assert total(samples, "stream_al_labels_total", outcome=outcome) == outcomes.count(outcome)
    assert total(samples, "stream_al_labels_total", outcome="applied") == oracle_labels + 1
    letters = {(m["source_topic"], m["partition"], m["offset"]): m
               for m in (json.loads(m.value) for m in harness.read(topics.dlq))}
    for (value, (_, phrase)), (partition, offset) in zip(bad.items(), landed, strict=True):
        letter = letters.pop((topics.labels, partition, offset), None)
        assert (letter is None) == (phrase is None), value
        if letter is not None:
            assert base64.b64decode(letter["payload_b64"]) == value
            assert phrase in letter["error"], letter["error"]
    [request_letter] = letters.values()
    assert (request_letter["source_topic"], request_letter["partition"],
            request_letter["offset"]) == (topics.requests, *bad_request[0])
    assert "expected a JSON object" in request_letter["error"]
    model = harness.checkpoint(state).learner.registry.get(fresh.model_key)
    assert model.class_counts["scratched-die"] == 1
    x = dict(extract(fresh.record, LearnerConfig().features))
    assert "scratched-die" in model.model.predict_proba_one(x)


def settled(daemon: DaemonProc, harness: Harness, records: int, unanswerable: int = 0,
            extra_labels: int = 0) -> bool:
    """All ``records`` consumed, the oracle has answered every request it can, and the
    daemon has read every label (the test's own ``extra_labels`` too)."""
    samples = daemon.metrics()
    if total(samples, "stream_al_records_total") < records:
        return False
    answerable = harness.count(harness.topics.requests) - unanswerable
    labels = harness.count(harness.topics.labels)
    return (labels - extra_labels == answerable
            and total(samples, "stream_al_labels_total") == labels)


def crafted_request(name: str, ttl: timedelta = timedelta(hours=1)) -> OracleRequest:
    """A request as another replica would write it, for a record the oracle cannot answer."""
    now = datetime.now(UTC)
    record = ParametricRecord(record_id=f"crafted-{name}", ts=now, product="PMIC-A7",
                              measurements={"leak_ua": 0.2})
    return OracleRequest(
        query_id=query_id_for(record.record_id, "PMIC-A7"), record_id=record.record_id,
        kind="parametric", model_key="PMIC-A7", reason="uncertainty", uncertainty=0.9,
        threshold=0.5, proba={"pass": 0.5, "fail": 0.5}, predicted="pass", model_version=1,
        created_at=now, expires_at=now + ttl, record=record)


def label(query_id: str, value: str, at: datetime) -> OracleLabel:
    return OracleLabel(query_id=query_id, label=value, labeler="test", labeled_at=at)


def test_a_label_for_an_unknown_query_does_not_stall_learning_while_records_flow(
        harness: Harness) -> None:
    """Labels are applied strictly in order, so a bogus label holds back every label
    behind it until it is judged unknown. That must happen as soon as the request log
    has been read past where it stood when the label was read, not when the floor
    falls quiet: the daemon must judge it while it still has a backlog to score.

    The backlog is written only once labels flow: a daemon that scores faster than the
    oracle starts would otherwise have finished it before the bogus label exists."""
    records = floor(WARM_UP + BACKLOG)
    topics = harness.topics
    harness.produce_floor(records[:WARM_UP])
    daemon = harness.daemon("daemon", harness.config("daemon"))
    harness.oracle(records)
    wait_until(lambda: daemon.labels_read() >= 50, "labels to flow")
    harness.produce_floor(records[WARM_UP:])
    harness.produce(topics.labels,
                    [(0, None, encode(label("q-never-asked", "pass", datetime.now(UTC))))])

    def judged_or_done() -> bool:
        samples = daemon.metrics()
        return (total(samples, "stream_al_labels_total", outcome="unknown_query") == 1
                or total(samples, "stream_al_records_total") == len(records))

    wait_until(judged_or_done, "the bogus label to be judged")
    samples = daemon.metrics()
    assert total(samples, "stream_al_labels_total", outcome="unknown_query") == 1
    assert total(samples, "stream_al_records_total") < len(records), "judged only once idle"
