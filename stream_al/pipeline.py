"""Bytes in, bytes out: the daemon's per-message logic, shared by Kafka and the demo.

The pipeline decodes each consumed message once, hands it to the learner, and returns
the messages to produce (predictions, oracle requests, dead letters). It tracks the
next offset of every partition it has processed, so a checkpoint taken between two
calls says exactly where to resume.

One message can never stop it: whatever goes wrong with one (bytes that do not decode,
a bound of ``Limits`` crossed, an exception from a model) becomes that message's dead
letter with the reason, and the next message is handled as usual.

Labels are applied strictly in label-log order. A label whose request has not been
read yet waits at the head of a queue (the request may still be in flight on another
partition) until the caller says the request log is caught up; only then is it an
unknown query. Every replica therefore applies the same labels in the same order.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TypeVar

from stream_al.auth import HEADER, RequestSigner
from stream_al.bus import Message, Outgoing
from stream_al.codec import decode_label, decode_record, decode_request, encode
from stream_al.errors import DecodeError, Refused
from stream_al.learner import Decision, LabelResult, Learner
from stream_al.metrics import Metrics
from stream_al.records import DeadLetter, Record
from stream_al.state import Checkpoint, Offsets
from stream_al.topics import TopicNames

#: Own requests remembered until read back. The read-back trails the send by a few poll
#: batches; a request log this far behind is decoded as any other replica's would be.
_UNREAD_OWN_REQUESTS_KEPT = 10_000

T = TypeVar("T")


class Pipeline:
    def __init__(self, learner: Learner, topics: TopicNames, metrics: Metrics | None = None,
                 offsets: Offsets | None = None, max_waiting_labels: int = 10_000,
                 counted: Offsets | None = None, signer: RequestSigner | None = None) -> None:
        self.learner = learner
        self.topics = topics
        self.metrics = metrics
        self.offsets: Offsets = dict(offsets or {})
        self.waiting_labels: deque[Message] = deque()
        self.max_waiting_labels = max_waiting_labels
        #: Per partition, the offset up to which messages were already counted in the
        #: metrics: after a restore to an older checkpoint, replayed messages are
        #: processed again but not counted again. Shared with the caller across restores.
        self.counted: Offsets = counted if counted is not None else {}
        #: Signs the requests produced and checks those read; None trusts every request.
        self.signer = signer
        #: The requests this pipeline produced and has not read back yet, by Kafka key.
        #: Reading one back byte for byte adds nothing: its query is already open here
        #: (or closed or evicted since, which a second ``add`` would not undo anyway), so
        #: it is not decoded and validated again (7 % of a record's cost at a 10 % budget).
        self._unread_own_requests: dict[bytes, bytes] = {}

    @classmethod
    def from_checkpoint(cls, checkpoint: Checkpoint, topics: TopicNames,
                        metrics: Metrics | None = None, counted: Offsets | None = None,
                        signer: RequestSigner | None = None) -> Pipeline:
        return cls(checkpoint.learner, topics, metrics, checkpoint.offsets,
                   counted=counted, signer=signer)

    def checkpoint(self, now: datetime) -> Checkpoint:
        return Checkpoint(self.learner, dict(self.offsets), now)

    # -- dispatch ------------------------------------------------------------------

    def handle(self, message: Message, now: datetime) -> list[Outgoing]:
        """Process one consumed message of any of our topics."""
        if message.topic == self.topics.labels:
            self.waiting_labels.append(message)
            return self.drain_labels(requests_caught_up=False, now=now)
        fresh = self._advance(message)
        if message.topic == self.topics.requests:
            out = self._contained(self._on_request, message, now, "request", fresh)
            return out + self.drain_labels(requests_caught_up=False, now=now)
        return self._contained(self._on_record, message, now, "record", fresh)

    def _contained(self, handler: Callable[[Message, datetime, bool], T],
                   message: Message, now: datetime, what: str, fresh: bool
                   ) -> T | list[Outgoing]:
        if message.value is None:
            return [self._dead_letter(message, "message has no value (null, e.g. a Kafka "
                                      "tombstone): nothing to decode; send a JSON object",
                                      f"{what}_invalid", now, fresh)]
        try:
            return handler(message, now, fresh)
        except Exception as error:  # noqa: BLE001 - one message must never stop the daemon
            return [self._failed(message, what, error, now, fresh)]

    def _failed(self, message: Message, what: str, error: Exception, now: datetime,
                fresh: bool) -> Outgoing:
        reason = (f"processing this {what} failed ({type(error).__name__}: {error}); "
                  "the daemon went on without it")
        return self._dead_letter(message, reason, f"{what}_failed", now, fresh)

    # -- records ---------------------------------------------------------------------

    def handle_inputs(self, messages: Sequence[Message], now: datetime) -> list[Outgoing]:
        """``handle`` for each message of a poll batch, in order, the same outputs in the
        same order; the records among them are decided together
        (``Learner.decide_each``), which shares the work of a run of one model's
        records. Decoding changes nothing in the learner, so each stretch of records
        is decoded first, then decided."""
        out: list[Outgoing] = []
        stretch: list[Message] = []
        for message in messages:
            if message.topic in (self.topics.labels, self.topics.requests):
                out += self._records(stretch, now)
                stretch = []
                out += self.handle(message, now)
            else:
                stretch.append(message)
        return out + self._records(stretch, now)

    def _records(self, messages: Sequence[Message], now: datetime) -> list[Outgoing]:
        slots: list[list[Outgoing] | tuple[Message, Record, bool, float]] = []
        for message in messages:
            fresh = self._advance(message)
            started = time.perf_counter()
            decoded = self._contained(self._decoded, message, now, "record", fresh)
            if isinstance(decoded, list):  # its dead letter
                slots.append(decoded)
            else:
                slots.append((message, decoded, fresh, time.perf_counter() - started))
        decisions = self.learner.decide_each(
            [slot[1] for slot in slots if isinstance(slot, tuple)], now)
        out: list[Outgoing] = []
        for slot in slots:
            if isinstance(slot, list):
                out += slot
                continue
            message, record, fresh, decoding = slot
            started = time.perf_counter()
            try:
                decided = next(decisions)
                out += self._outputs(message, record, decided, now, fresh,
                                     decoding + time.perf_counter() - started)
            except Exception as error:  # noqa: BLE001 - one message must never stop the daemon
                out.append(self._failed(message, "record", error, now, fresh))
        return out

    def _on_record(self, message: Message, now: datetime, fresh: bool) -> list[Outgoing]:
        started = time.perf_counter()
        decoded = self._decoded(message, now, fresh)
        if isinstance(decoded, list):  # its dead letter
            return decoded
        try:
            decided: Decision | Exception = self.learner.decide(decoded, now)
        except Refused as error:
            decided = error
        return self._outputs(message, decoded, decided, now, fresh,
                             time.perf_counter() - started)

    def _decoded(self, message: Message, now: datetime, fresh: bool
                 ) -> Record | list[Outgoing]:
        limits = self.learner.config.limits
        assert message.value is not None
        try:
            return decode_record(message.value, max_bytes=limits.max_record_bytes,
                                 max_abs_value=limits.max_abs_value)
        except DecodeError as error:
            self._count_record("unknown", "dead_letter", fresh)
            return [self._dead_letter(message, error.reason, "record_invalid", now, fresh)]

    def _outputs(self, message: Message, record: Record, decided: Decision | Exception,
                 now: datetime, fresh: bool, seconds: float) -> list[Outgoing]:
        if isinstance(decided, Refused):
            self._count_record(record.kind, "dead_letter", fresh)
            return [self._dead_letter(message, decided.reason, "record_refused", now, fresh)]
        if isinstance(decided, Exception):
            raise decided  # _contained makes it this record's dead letter
        decision, where = decided, message.where
        out = [Outgoing(self.topics.predictions, record.record_id.encode(),
                        encode(decision.prediction), where)]
        if decision.request is not None:
            value = encode(decision.request)
            headers = ((HEADER, self.signer.sign(value)),) if self.signer else ()
            key = decision.request.query_id.encode()
            out.append(Outgoing(self.topics.requests, key, value, where, headers))
            self._remember_own_request(key, value)
        if fresh:
            self._observe_decision(record.kind, decision, seconds)
        return out

    # -- requests and labels -----------------------------------------------------------

    def _remember_own_request(self, key: bytes, value: bytes) -> None:
        unread = self._unread_own_requests
        unread[key] = value
        if len(unread) > _UNREAD_OWN_REQUESTS_KEPT:  # never read back: the oldest goes
            del unread[next(iter(unread))]

    def _on_request(self, message: Message, now: datetime, fresh: bool) -> list[Outgoing]:
        assert message.value is not None
        if message.key is not None and \
                self._unread_own_requests.pop(message.key, None) == message.value:
            return []
        if self.signer is not None and not self.signer.verify(message):
            return [self._dead_letter(message, "request is not signed with this deployment's "
                                      "key (forged, or from a daemon with another "
                                      "security.request_key): ignored", "request_forged",
                                      now, fresh)]
        limits = self.learner.config.limits
        try:
            self.learner.accept_request(decode_request(
                message.value, max_bytes=max(limits.max_request_bytes, limits.max_record_bytes),
                max_abs_value=limits.max_abs_value))
        except DecodeError as error:
            return [self._dead_letter(message, error.reason, "request_invalid", now, fresh)]
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
            fresh = self._advance(message)
            out.extend(self._contained(self._on_label, message, now, "label", fresh))
        return out

    def _awaits_request(self, message: Message) -> bool:
        if message.value is None:
            return False
        try:
            query_id = decode_label(message.value).query_id
        except DecodeError:
            return False
        return query_id not in self.learner.pending and not self.learner.pending.was_answered(
            query_id)

    def _on_label(self, message: Message, now: datetime, fresh: bool) -> list[Outgoing]:
        assert message.value is not None
        try:
            label = decode_label(message.value)
        except DecodeError as error:
            self._count_label("invalid", None, fresh)
            return [self._dead_letter(message, error.reason, "label_invalid", now, fresh)]
        result = self.learner.apply(label, received_at=_received_at(message))
        if fresh:
            self._observe_label(result)
        if result.outcome == "applied":
            return []
        return [self._dead_letter(message, result.detail, f"label_{result.outcome}", now,
                                  fresh)]

    def publish_state(self, now: datetime) -> None:
        """Gauges that describe state rather than events: call after each batch."""
        metrics, learner = self.metrics, self.learner
        if metrics is None:
            return
        metrics.set_pending_queries(learner.pending.live_count(now))
        for key in learner.registry.keys():
            windows = learner.policies[key].scores.rolling() if key in learner.policies else {}
            metrics.set_model_state(
                key, threshold=learner.threshold(key),
                queried_fraction=learner.budget.spent_ratio(key),
                budget_fraction=learner.config.budget.fraction, accuracies=windows,
                labels=learner.registry.get(key).version)

    def dead_letter_for(self, refused: Outgoing, reason: str, now: datetime) -> Outgoing:
        """A dead letter for a message the broker refused to take (e.g. too large)."""
        topic, _, rest = (refused.source or f"{refused.topic}[0]@0").partition("[")
        partition, _, offset = rest.rstrip("]").partition("]@")
        source = Message(topic, int(partition or 0), int(offset or 0), refused.key,
                         refused.value)
        return self._dead_letter(source, f"could not produce its {refused.topic} message: "
                                 f"{reason}", "output_refused", now, fresh=True)

    # -- helpers -------------------------------------------------------------------

    def _advance(self, message: Message) -> bool:
        """Move past ``message``; True when it has not been counted in the metrics yet."""
        tp = (message.topic, message.partition)
        self.offsets[tp] = message.offset + 1
        if message.offset < self.counted.get(tp, 0):
            return False
        self.counted[tp] = message.offset + 1
        return True

    def _dead_letter(self, message: Message, reason: str, code: str, now: datetime,
                     fresh: bool) -> Outgoing:
        if self.metrics and fresh:
            self.metrics.observe_dead_letter(code)
        letter = DeadLetter.from_payload(
            message.value, reason, source_topic=message.topic, partition=message.partition,
            offset=message.offset, ts=now,
            keep_bytes=self.learner.config.limits.max_dead_letter_payload_bytes)
        return Outgoing(self.topics.dlq, message.key, encode(letter), message.where)

    def _count_record(self, kind: str, outcome: str, fresh: bool) -> None:
        if self.metrics and fresh:
            self.metrics.observe_record(kind, outcome)

    def _count_label(self, outcome: str, latency: float | None, fresh: bool) -> None:
        if self.metrics and fresh:
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
        if decision.skipped is not None:
            metrics.observe_query_skip(decision.skipped)

    def _observe_label(self, result: LabelResult) -> None:
        self._count_label(result.outcome, result.latency_s, True)


def _received_at(message: Message) -> datetime | None:
    """The label log's time for this label (broker append time), if known."""
    if message.timestamp_ms <= 0:
        return None
    return datetime.fromtimestamp(message.timestamp_ms / 1000, tz=UTC)
