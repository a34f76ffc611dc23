"""The soak's traffic, each in a thread of its own: a steady producer of simulated
records, an oracle answering in bursts, and a watcher of the predictions topic.

All three outlive broker stops: kafka-python's polls return nothing while the broker is
away, and a send it could not deliver is sent again, so nothing the soak counts as sent
was merely dropped by the soak itself.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import KafkaError

from consumers.kafka.kafka_python import native_consumer, native_partitions_of, native_producer
from consumers.settings import KafkaSettings
from stream_al.codec import decode_request, encode
from stream_al.errors import DecodeError
from stream_al.oracle import SimulatedOracle
from stream_al.simulate.floor import FloorConfig, FloorSimulator

log = logging.getLogger("stream_al.bench.soak")
#: A pending send: (topic, key, value, what it is, for the accounting).
_Send = tuple[str, bytes, bytes, str]
_MEASUREMENTS = 20  # smaller records than the throughput bench: 20 min at 200/s is 240k
_BLOCK_MS = 1_000
_SETTLE_S = 120.0


def floor_records(count: int, seed: int) -> Iterator[tuple[str, bytes, bytes, str]]:
    """(record_id, key, value, truth) of simulated parametric records, made one at a
    time (a soak's worth held at once would be hundreds of MB)."""
    config = FloorConfig(run_length=max(count, 100), tests_per_product=_MEASUREMENTS)
    for simulated in FloorSimulator(config, seed).stream(count):
        record = simulated.record
        yield (record["record_id"], str(record["lot_id"]).encode(),
               json.dumps(record, separators=(",", ":")).encode(), simulated.truth)


class _Sender:
    """A producer whose undelivered sends come back for another try."""

    def __init__(self, kafka: KafkaSettings) -> None:
        # A short block: while the broker is away, a send fails fast and the rest of the
        # round waits in ``retry`` instead of blocking 10 s each.
        self.producer: KafkaProducer = native_producer(kafka, max_block_ms=_BLOCK_MS)
        self.retry: deque[_Send] = deque()
        self.acked: set[str] = set()
        self.acks = 0
        #: Why sends failed (and were tried again), by error type.
        self.failures: Counter[str] = Counter()

    def send_all(self, items: list[_Send]) -> None:
        """Send in order; at the first that cannot even be queued, keep the rest."""
        for index, item in enumerate(items):
            if not self._send(item):
                self.retry.extend(items[index:])
                return

    def send_retries(self) -> None:
        waiting = list(self.retry)
        self.retry.clear()
        self.send_all(waiting)

    def flush(self, timeout_s: float) -> bool:
        """True once everything sent is acknowledged or refused (and so in ``retry``)."""
        try:
            self.producer.flush(timeout=timeout_s)
        except KafkaError:  # still pending when the timeout ran out
            return False
        return True

    def close(self) -> None:
        self.flush(30)
        try:
            self.producer.close(timeout=10)  # flushes again, and raises if that times out
        except KafkaError as error:
            log.warning("closing a producer with sends still pending: %r", error)

    def _send(self, item: _Send) -> bool:
        topic, key, value, what = item
        try:
            future = self.producer.send(topic, key=key, value=value)
        except KafkaError:  # no metadata within max_block_ms: the broker is away
            return False
        future.add_callback(self._acked, what)
        future.add_errback(self._failed, item)
        return True

    def _acked(self, what: str, _metadata: object) -> None:
        self.acked.add(what)
        self.acks += 1

    def _failed(self, item: _Send, error: BaseException) -> None:
        kind = type(error).__name__
        if not self.failures[kind]:
            log.warning("a send failed (%r): it and the like are tried again", error)
        self.failures[kind] += 1
        self.retry.append(item)


class SteadyProducer(threading.Thread):
    """``rate`` records a second into ``topic``, catching up after an outage."""

    def __init__(self, kafka: KafkaSettings, topic: str, count: int, rate: float,
                 seed: int) -> None:
        super().__init__(name="soak-producer", daemon=True)
        self.kafka, self.topic, self.rate = kafka, topic, rate
        self.records = floor_records(count, seed)
        self.truth: dict[str, str] = {}
        self.sent = 0  # handed to the producer; ``acked`` is what the broker confirmed
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self._sender: _Sender | None = None

    @property
    def acked(self) -> set[str]:
        return self._sender.acked if self._sender else set()

    @property
    def backlog(self) -> int:
        return len(self._sender.retry) if self._sender else 0

    @property
    def failures(self) -> dict[str, int]:
        return dict(self._sender.failures) if self._sender else {}

    def run(self) -> None:
        try:
            self._sender = sender = _Sender(self.kafka)
            try:
                self._loop(sender)
                self._settle(sender)
            finally:
                sender.close()
        except BaseException as error:  # reported by the run, never lost in a thread
            self.error = error

    def _loop(self, sender: _Sender) -> None:
        started = time.monotonic()
        while not self.stop.is_set():
            sender.send_retries()
            due = int((time.monotonic() - started) * self.rate)
            batch = self._take(due - self.sent)
            self.sent += len(batch)
            sender.send_all(batch)
            time.sleep(0.01)

    def _take(self, count: int) -> list[_Send]:
        batch = []
        for _, (record_id, key, value, truth) in zip(range(max(0, count)), self.records,
                                                     strict=False):
            self.truth[record_id] = truth  # before the send: the oracle may need it soon
            batch.append((self.topic, key, value, record_id))
        return batch

    def _settle(self, sender: _Sender) -> None:
        """Deliver what is still pending or waiting to be sent again (a record never
        acknowledged is not counted as sent, so it cannot count as lost)."""
        deadline = time.monotonic() + _SETTLE_S
        while time.monotonic() < deadline:
            sender.send_retries()
            if sender.flush(10) and not sender.retry:
                return


class BurstOracle(threading.Thread):
    """Reads every request (all partitions, no group) and answers from the truth, all
    held answers at once every ``every_s`` seconds: a person clearing a queue."""

    def __init__(self, kafka: KafkaSettings, requests: str, labels: str,
                 truth: dict[str, str], every_s: float) -> None:
        super().__init__(name="soak-oracle", daemon=True)
        self.kafka, self.requests, self.labels, self.every_s = kafka, requests, labels, every_s
        self.oracle = SimulatedOracle(lambda request: truth.get(request.record_id),
                                      labeler="soak")
        self.stop = threading.Event()
        self.bursts: list[tuple[float, int]] = []  # (time.time(), labels in the burst)
        self.requests_read = 0
        self.error: BaseException | None = None
        self._sender: _Sender | None = None

    @property
    def labels_sent(self) -> int:
        return self._sender.acks if self._sender else 0

    @property
    def queries_answered(self) -> set[str]:
        return self._sender.acked if self._sender else set()

    @property
    def held(self) -> int:
        return len(self.oracle)

    def run(self) -> None:
        try:
            consumer = _from_start(self.kafka, self.requests)
            self._sender = sender = _Sender(self.kafka)
            try:
                self._loop(consumer, sender)
            finally:
                consumer.close()
                sender.close()
        except BaseException as error:
            self.error = error

    def _loop(self, consumer: KafkaConsumer, sender: _Sender) -> None:
        next_burst = time.monotonic() + self.every_s
        while not self.stop.is_set():
            now = datetime.now(UTC)
            for records in consumer.poll(timeout_ms=200).values():
                for record in records:
                    self._offer(record.value, now)
            sender.send_retries()
            if time.monotonic() >= next_burst:
                next_burst = time.monotonic() + self.every_s
                answers = self.oracle.due(now)
                sender.send_all([(self.labels, label.query_id.encode(), encode(label),
                                  label.query_id) for label in answers])
                if answers:
                    self.bursts.append((time.time(), len(answers)))

    def _offer(self, value: bytes | None, now: datetime) -> None:
        self.requests_read += 1
        try:
            self.oracle.offer(decode_request(value or b""), now)
        except DecodeError as error:
            log.warning("a request the oracle cannot read: %s", error.reason)


class PredictionWatcher(threading.Thread):
    """Which records have a prediction so far (the message key is the record id)."""

    def __init__(self, kafka: KafkaSettings, topic: str) -> None:
        super().__init__(name="soak-watcher", daemon=True)
        self.kafka, self.topic = kafka, topic
        self.predicted: set[str] = set()
        self.messages = 0
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            consumer = _from_start(self.kafka, self.topic)
            try:
                while not self.stop.is_set():
                    for records in consumer.poll(timeout_ms=200).values():
                        self.messages += len(records)
                        self.predicted.update(r.key.decode() for r in records if r.key)
            finally:
                consumer.close()
        except BaseException as error:
            self.error = error


def read_keys(kafka: KafkaSettings, topic: str, timeout_s: float = 120.0) -> tuple[set[str], int]:
    """Every key in ``topic`` as it stands now, and the number of messages: the final
    count, read afresh rather than trusted to the watcher."""
    consumer = _from_start(kafka, topic)
    keys: set[str] = set()
    messages = 0
    try:
        ends = consumer.end_offsets(list(consumer.assignment()))
        deadline = time.monotonic() + timeout_s
        while any(consumer.position(tp) < end for tp, end in ends.items()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading {topic} back took over {timeout_s:.0f} s")
            for records in consumer.poll(timeout_ms=500, max_records=5000).values():
                messages += len(records)
                keys.update(r.key.decode() for r in records if r.key)
    finally:
        consumer.close()
    return keys, messages


def _from_start(kafka: KafkaSettings, topic: str, **extra: Any) -> KafkaConsumer:
    consumer = native_consumer(kafka, None, **extra)
    consumer.assign(native_partitions_of(consumer, [topic]))
    consumer.seek_to_beginning()
    return consumer
