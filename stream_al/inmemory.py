"""The daemon's loop on the in-memory bus: floor → pipeline → oracle → labels → pipeline.

Used by ``stream-al demo``, the app tests and benchmarks. The pipeline sees exactly
the byte messages it would see from Kafka; only the transport differs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from stream_al.bus import InMemoryBus, InMemoryConsumer, InMemorySink, Outgoing
from stream_al.codec import decode_request, encode
from stream_al.errors import DecodeError
from stream_al.oracle import SimulatedOracle
from stream_al.pipeline import Pipeline


@dataclass
class LoopCounts:
    records_in: int = 0
    labels_sent: int = 0
    malformed_requests: int = 0


class InMemoryLoop:
    def __init__(self, pipeline: Pipeline, oracle: SimulatedOracle,
                 bus: InMemoryBus | None = None, partitions: int = 3) -> None:
        self.pipeline, self.oracle = pipeline, oracle
        self.bus = bus or InMemoryBus()
        topics = pipeline.topics
        for name in topics.inputs:
            self.bus.create_topic(name, partitions)
        for name in (topics.predictions, topics.requests, topics.labels, topics.dlq):
            self.bus.create_topic(name, 1)
        self.sink = InMemorySink(self.bus)
        self.inputs = InMemoryConsumer(self.bus, topics.inputs, pipeline.offsets)
        self.logs = InMemoryConsumer(self.bus, [topics.requests, topics.labels],
                                     pipeline.offsets)
        self.oracle_view = InMemoryConsumer(self.bus, [topics.requests])
        self.counts = LoopCounts()

    def publish(self, topic: str, key: bytes | None, value: bytes) -> None:
        """What a floor producer does."""
        self.sink.send(Outgoing(topic, key, value))
        self.counts.records_in += 1

    def step(self, now: datetime, max_records: int = 500) -> int:
        """One poll of every consumer; returns the input records processed."""
        self._send(m for msg in self.logs.poll(10_000) for m in self.pipeline.handle(msg, now))
        # In memory the request log is read to its end each step: nothing to wait for.
        self._send(self.pipeline.drain_labels(requests_caught_up=self.logs.lag() == 0, now=now))
        batch = self.inputs.poll(max_records)
        self._send(m for msg in batch for m in self.pipeline.handle(msg, now))
        self._answer(now)
        return len(batch)

    def _answer(self, now: datetime) -> None:
        for message in self.oracle_view.poll(10_000):
            try:
                self.oracle.offer(decode_request(message.value), now)
            except DecodeError:
                self.counts.malformed_requests += 1
        labels_topic = self.pipeline.topics.labels
        for label in self.oracle.due(now):
            self.sink.send(Outgoing(labels_topic, label.query_id.encode(), encode(label)))
            self.counts.labels_sent += 1

    def _send(self, messages: Iterable[Outgoing]) -> None:
        for message in messages:
            self.sink.send(message)
