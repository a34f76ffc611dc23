"""Messages, the Source/Sink protocols, and an in-memory bus that meets them.

The Kafka edge (``consumers/``) and this bus implement the same protocols, so the
pipeline, the demo and the benchmarks run the daemon's code path without a broker.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Message:
    """One consumed message, with where it came from (for offsets and dead letters)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    #: None for a message without a value (a Kafka tombstone).
    value: bytes | None
    #: When the broker (or the bus) took the message; 0 when unknown.
    timestamp_ms: int = 0
    headers: tuple[tuple[str, bytes], ...] = ()

    @property
    def where(self) -> str:
        """``topic[partition]@offset``: where to find this message again."""
        return f"{self.topic}[{self.partition}]@{self.offset}"


@dataclass(frozen=True)
class Outgoing:
    """One message to produce; ``source`` says which consumed message it answers."""

    topic: str
    key: bytes | None
    value: bytes
    source: str | None = None
    headers: tuple[tuple[str, bytes], ...] = ()


class Source(Protocol):
    def poll(self, max_records: int) -> list[Message]: ...


class Sink(Protocol):
    def send(self, message: Outgoing) -> None: ...

    def flush(self) -> None: ...


class InMemoryBus:
    """Topics of partitions of append-only message lists.

    >>> bus = InMemoryBus()
    >>> bus.create_topic("t", partitions=2)
    >>> bus.produce(Outgoing("t", b"k", b"v")).offset
    0
    >>> bus.end_offsets("t")[bus.partition_for("t", b"k")]
    1
    """

    def __init__(self) -> None:
        self._topics: dict[str, list[list[Message]]] = {}

    def create_topic(self, name: str, partitions: int = 1) -> None:
        self._topics.setdefault(name, [[] for _ in range(partitions)])

    def partition_for(self, topic: str, key: bytes | None) -> int:
        count = len(self._topics[topic])
        return zlib.crc32(key) % count if key else 0

    def produce(self, message: Outgoing, timestamp_ms: int = 0) -> Message:
        if message.topic not in self._topics:
            self.create_topic(message.topic)
        partition = self.partition_for(message.topic, message.key)
        log = self._topics[message.topic][partition]
        stored = Message(message.topic, partition, len(log), message.key, message.value,
                         timestamp_ms, message.headers)
        log.append(stored)
        return stored

    def read(self, topic: str, partition: int, offset: int, limit: int) -> list[Message]:
        return self._topics[topic][partition][offset:offset + limit]

    def partitions(self, topic: str) -> int:
        return len(self._topics.get(topic, []))

    def end_offsets(self, topic: str) -> list[int]:
        return [len(log) for log in self._topics.get(topic, [])]

    def messages(self, topic: str) -> list[Message]:
        """Every message of a topic, partition by partition (for tests and summaries)."""
        return [m for log in self._topics.get(topic, []) for m in log]


class InMemoryConsumer:
    """Reads every partition of some topics from given positions, round robin."""

    def __init__(self, bus: InMemoryBus, topics: Iterable[str],
                 positions: dict[tuple[str, int], int] | None = None) -> None:
        self.bus = bus
        self.topics = list(topics)
        self.positions = dict(positions or {})

    def poll(self, max_records: int) -> list[Message]:
        batch: list[Message] = []
        for topic in self.topics:
            for partition in range(self.bus.partitions(topic)):
                position = self.positions.get((topic, partition), 0)
                got = self.bus.read(topic, partition, position, max_records - len(batch))
                self.positions[(topic, partition)] = position + len(got)
                batch.extend(got)
        return batch

    def lag(self) -> int:
        return sum(end - self.positions.get((topic, p), 0)
                   for topic in self.topics for p, end in enumerate(self.bus.end_offsets(topic)))


class InMemorySink:
    """Produces straight onto the bus."""

    def __init__(self, bus: InMemoryBus) -> None:
        self.bus = bus

    def send(self, message: Outgoing) -> None:
        self.bus.produce(message)

    def flush(self) -> None:
        """Nothing is buffered in memory."""
