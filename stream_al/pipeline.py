"""Bytes in, bytes out: the daemon's per-message logic, shared by Kafka and the demo.

The pipeline decodes each consumed message once, hands it to the learner, and returns
the messages to produce (predictions, oracle requests, dead letters). It tracks the
next offset of every partition it has processed, so a checkpoint taken between two
calls says exactly where to resume.

Labels are applied strictly in label-log order. A label whose request has not been
read yet waits at the head of a queue (the request may still be in flight on another
partition) until the caller says the request log is caught up; only then is it an
unknown query. Every replica therefore applies the same labels in the same order.
"""

from __future__ import annotations

import base64
import time
from collections import deque
from datetime import datetime

from stream_al.bus import Message, Outgoing
from stream_al.codec import decode_label, decode_record, decode_request, encode
from stream_al.errors import DecodeError
from stream_al.learner import Decision, LabelResult, Learner
from stream_al.metrics import Metrics
from stream_al.records import DeadLetter
from stream_al.state import Checkpoint, Offsets
from stream_al.topics import TopicNames


class Pipeline:
    def __init__(self, learner: Learner, topics: TopicNames, metrics: Metrics | None = None,
                 offsets: Offsets | None = None, max_waiting_labels: int = 10_000) -> None:
        self.learner = learner
        self.topics = topics
        self.metrics = metrics
        self.offsets: Offsets = dict(offsets or {})
        self.waiting_labels: deque[Message] = deque()
        self.max_waiting_labels = max_waiting_labels

    @classmethod
    def from_checkpoint(cls, checkpoint: Checkpoint, topics: TopicNames,
                        metrics: Metrics | None = None) -> Pipeline:
        return cls(checkpoint.learner, topics, metrics, checkpoint.offsets)

    def checkpoint(self, now: datetime) -> Checkpoint:
        return Checkpoint(self.learner, dict(self.offsets), now)

    # -- dispatch ------------------------------------------------------------------

    def handle(self, message: Message, now: datetime) -> list[Outgoing]:
        """Process one consumed message of any of our topics."""
        if message.topic == self.topics.labels:
            self.waiting_labels.append(message)
            return self.drain_labels(requests_caught_up=False, now=now)
        self._advance(message)
        if message.topic == self.topics.requests:
            out = self._on_request(message, now)
            return out + self.drain_labels(requests_caught_up=False, now=now)
        return self._on_record(message, now)

    # -- records ---------------------------------------------------------------------

    def _on_record(self, message: Message, now: datetime) -> list[Outgoing]:
        started = time.perf_counter()
        try:
            record = decode_record(message.value)
        except DecodeError as error:
            self._count_record("unknown", "dead_letter")
            return [self._dead_letter(message, error.reason, "record_invalid", now)]
        decision = self.learner.decide(record, now)
        out = [Outgoing(self.topics.predictions, record.record_id.encode(),
                        encode(decision.prediction))]
        if decision.request is not None:
            out.append(Outgoing(self.topics.requests, decision.request.query_id.encode(),
                                encode(decision.request)))
        self._observe_decision(record.kind, decision, time.perf_counter() - started)
        return out

    # -- requests and labels -----------------------------------------------------------

    def _on_request(self, message: Message, now: datetime) -> list[Outgoing]:
        try:
            self.learner.accept_request(decode_request(message.value))
        except DecodeError as error:
            return [self._dead_letter(message, error.reason, "request_invalid", now)]
        return []

    def drain_labels(self, requests_caught_up: bool, now: datetime,
                     labels_below: int | None = None) -> list[Outgoing]:
        """Apply waiting labels in order; stop at one whose request may still come.

        ``requests_caught_up`` says the request log has been read past every request
        written before the waiting labels were read. With ``labels_below`` it says so
        only for labels at offsets below it: a label read after the caller looked at
        the request log's end may still have its request in flight, so it waits.

        >>> from datetime import UTC, datetime
        >>> from stream_al.learner import Learner, LearnerConfig
        >>> pipe = Pipeline(Learner(LearnerConfig()), TopicNames())
        >>> now = datetime(2026, 1, 1, tzinfo=UTC)
        >>> for offset in (0, 1):  # labels for queries whose requests were not read
        ...     value = (b'{"schema_version": 1, "query_id": "q-%d", "label": "pass", '
        ...              b'"labeled_at": "2026-01-01T00:00:00Z"}' % offset)
        ...     pipe.handle(Message(pipe.topics.labels, 0, offset, None, value), now)
        []
        []
        >>> [letter.topic for letter in pipe.drain_labels(True, now, labels_below=1)]
        ['stream-al.dlq']
        >>> [waiting.offset for waiting in pipe.waiting_labels]
        [1]
        """
        out: list[Outgoing] = []
        while self.waiting_labels:
            message = self.waiting_labels[0]
            caught_up = requests_caught_up and (labels_below is None
                                                or message.offset < labels_below)
            room_to_wait = len(self.waiting_labels) <= self.max_waiting_labels
            if room_to_wait and not caught_up and self._awaits_request(message):
                break
            self.waiting_labels.popleft()
            self._advance(message)
            out.extend(self._on_label(message, now))
        return out

    def _awaits_request(self, message: Message) -> bool:
        try:
            query_id = decode_label(message.value).query_id
        except DecodeError:
            return False
        return query_id not in self.learner.pending and not self.learner.pending.was_answered(
            query_id)

    def _on_label(self, message: Message, now: datetime) -> list[Outgoing]:
        try:
            label = decode_label(message.value)
        except DecodeError as error:
            self._count_label("invalid", None)
            return [self._dead_letter(message, error.reason, "label_invalid", now)]
        result = self.learner.apply(label)
        self._observe_label(result)
        if result.outcome == "applied":
            return []
        return [self._dead_letter(message, result.detail, f"label_{result.outcome}", now)]

    def publish_state(self) -> None:
        """Gauges that describe state rather than events: call after each batch."""
        metrics, learner = self.metrics, self.learner
        if metrics is None:
            return
        metrics.set_pending_queries(len(learner.pending))
        for key in learner.registry.keys():
            windows = learner.policies[key].scores.rolling() if key in learner.policies else {}
            metrics.set_model_state(
                key, threshold=learner.threshold(key),
                queried_fraction=learner.budget.spent_ratio(key),
                budget_fraction=learner.config.budget.fraction, accuracies=windows,
                labels=learner.registry.get(key).version)

    # -- helpers -------------------------------------------------------------------

    def _advance(self, message: Message) -> None:
        self.offsets[(message.topic, message.partition)] = message.offset + 1

    def _dead_letter(self, message: Message, reason: str, code: str,
                     now: datetime) -> Outgoing:
        if self.metrics:
            self.metrics.observe_dead_letter(code)
        letter = DeadLetter(
            source_topic=message.topic, partition=message.partition, offset=message.offset,
            error=reason, payload_b64=base64.b64encode(message.value).decode("ascii"), ts=now,
        )
        return Outgoing(self.topics.dlq, message.key, encode(letter))

    def _count_record(self, kind: str, outcome: str) -> None:
        if self.metrics:
            self.metrics.observe_record(kind, outcome)

    def _count_label(self, outcome: str, latency: float | None) -> None:
        if self.metrics:
            self.metrics.observe_label(outcome, latency)

    def _observe_decision(self, kind: str, decision: Decision, seconds: float) -> None:
        metrics = self.metrics
        if metrics is None:
            return
        request = decision.request
        metrics.observe_record(kind, "queried" if request else "predicted")
        metrics.observe_uncertainty(decision.prediction.uncertainty)
        metrics.observe_processing(seconds)
        if request is not None:
            metrics.observe_query(decision.model_key, request.reason)

    def _observe_label(self, result: LabelResult) -> None:
        self._count_label(result.outcome, result.latency_s)
