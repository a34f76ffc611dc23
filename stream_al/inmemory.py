"""The daemon's loop on the in-memory bus: floor → pipeline → oracle → labels → pipeline.

Used by ``stream-al demo``, the app tests and benchmarks. The pipeline sees exactly
the byte messages it would see from Kafka; only the transport differs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from stream_al.bus import InMemoryBus, InMemoryConsumer, InMemorySink, Outgoing
from stream_al.codec import decode_request, encode
from stream_al.errors import DecodeError
from stream_al.loop import step
from stream_al.oracle import SimulatedOracle
from stream_al.pipeline import Pipeline
from stream_al.state import Offsets
from stream_al.topics import TopicNames


@dataclass
class LoopCounts:
    records_in: int = 0
    labels_sent: int = 0
    malformed_requests: int = 0


class InMemoryLogs(InMemoryConsumer):
    """The request and label topics on the bus, requests first. In memory every request
    written so far is readable at once, so once the request log is read to its end,
    every label read so far can be judged."""

    def __init__(self, bus: InMemoryBus, topics: TopicNames, positions: Offsets) -> None:
        super().__init__(bus, [topics.requests, topics.labels], positions)
        self.requests, self.labels = topics.requests, topics.labels

    def requests_read_below(self, waiting: bool) -> int | None:
        requests_left = sum(end - self.positions.get((self.requests, p), 0)
                            for p, end in enumerate(self.bus.end_offsets(self.requests)))
        if not waiting or requests_left:
            return None
        return self.positions.get((self.labels, 0), 0)


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
        self.logs = InMemoryLogs(self.bus, topics, pipeline.offsets)
        self.oracle_view = InMemoryConsumer(self.bus, [topics.requests])
        self.counts = LoopCounts()

    def publish(self, topic: str, key: bytes | None, value: bytes) -> None:
        """What a floor producer does."""
        self.sink.send(Outgoing(topic, key, value))
        self.counts.records_in += 1

    def step(self, now: datetime, max_records: int = 500) -> int:
        """One turn of the daemon's loop, then the oracle; returns the records processed."""
        counts = step(self.pipeline, self.logs, self.inputs, self.sink, now, max_records,
                      max_log_records=10_000)
        self._answer(now)
        return counts.records

    def _answer(self, now: datetime) -> None:
        for message in self.oracle_view.poll(10_000):
            try:
                self.oracle.offer(decode_request(message.value or b""), now)
            except DecodeError:
                self.counts.malformed_requests += 1
        labels_topic = self.pipeline.topics.labels
        for label in self.oracle.due(now):
            self.sink.send(Outgoing(labels_topic, label.query_id.encode(), encode(label)))
            self.counts.labels_sent += 1
