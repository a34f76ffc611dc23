"""The daemon's link to Kafka: made whole on connect, dropped whole on failure.

Either the daemon has a ``Connection`` (the group consumer of the inputs, the reader of
the request and label logs, the sink) or it has none: no half-made state to check.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from consumers.kafka.clients import make_consumer
from consumers.kafka.gateway import ClientError, Consumer, RebalanceListener, TopicPartition
from consumers.kafka.sink import KafkaSink
from consumers.kafka.sources import (
    OFFSETS_TIMEOUT_MS,
    KafkaLogSource,
    KafkaSource,
    partitions_of,
    probe,
)
from consumers.settings import Settings
from stream_al.bus import Outgoing
from stream_al.state import Offsets

#: Bounds how long a (re)connect blocks the loop, and with it a SIGTERM, while the
#: broker is away.
BOOTSTRAP_TIMEOUT_MS = 5_000
#: How long the input poll waits for records when there are none.
INPUT_POLL_MS = 100
PROBE_TIMEOUT_MS = 3_000
CLOSE_TIMEOUT_MS = 2_000
#: kafka-python 3.x heartbeats from its own thread, so a long batch cannot starve the
#: session; 10 s (not the 45 s default) lets the group hand a crashed replica's
#: partitions on, and lets a restarted daemon rejoin, without a long stall.
SESSION_TIMEOUT_MS = 10_000


@dataclass
class Connection:
    consumer: Consumer  # the group consumer of the inputs: rebalances, commits, lag
    inputs: KafkaSource
    logs: KafkaLogSource
    sink: KafkaSink[Outgoing]

    @classmethod
    def open(cls, settings: Settings, offsets: Offsets,
             listener: RebalanceListener | None) -> Connection:
        """Connect every client, or none: what was opened is closed if a later step fails."""
        kafka, topics = settings.kafka, settings.topics
        opened: list[Any] = []
        try:
            sink: KafkaSink[Outgoing] = KafkaSink.connect(kafka,
                                                     bootstrap_timeout_ms=BOOTSTRAP_TIMEOUT_MS)
            opened.append(sink)
            log_consumer = make_consumer(kafka, None, bootstrap_timeout_ms=BOOTSTRAP_TIMEOUT_MS)
            opened.append(log_consumer)
            logs = KafkaLogSource(log_consumer, partitions_of(log_consumer, [topics.requests]),
                                  partitions_of(log_consumer, [topics.labels]), offsets)
            consumer = make_consumer(kafka, kafka.group_id, session_timeout_ms=SESSION_TIMEOUT_MS,
                                     bootstrap_timeout_ms=BOOTSTRAP_TIMEOUT_MS)
            opened.append(consumer)
            # Metadata first: joining the group before it is known can assign nothing at
            # all (until the next metadata refresh, minutes later); a missing topic is named.
            partitions_of(consumer, topics.inputs)
            consumer.subscribe(list(topics.inputs), listener)
        except BaseException:
            for client in reversed(opened):
                _close(client)
            raise
        return cls(consumer, KafkaSource(consumer, INPUT_POLL_MS), logs, sink)

    def probe(self) -> None:
        probe(self.logs.consumer, self.logs.labels, PROBE_TIMEOUT_MS)

    def earliest(self, partitions: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """The first offset each partition still holds (retention deletes the older)."""
        found = self.logs.consumer.beginning_offsets(
            [TopicPartition(topic, partition) for topic, partition in partitions],
            timeout_ms=OFFSETS_TIMEOUT_MS)
        return {(tp.topic, tp.partition): offset for tp, offset in found.items()}

    def assignment(self) -> list[TopicPartition]:
        return list(self.consumer.assignment())

    def lag(self) -> dict[TopicPartition, int]:
        """Records behind the end of each assigned partition. The ends come from the
        fetch responses the consumer already has; the broker is asked only for a
        partition not fetched yet (a request queues behind the consumer's long poll)."""
        assigned = self.assignment()
        ends = {tp: end for tp in assigned if (end := self.consumer.highwater(tp)) is not None}
        if unknown := [tp for tp in assigned if tp not in ends]:
            ends |= self.consumer.end_offsets(unknown, timeout_ms=OFFSETS_TIMEOUT_MS)
        return {tp: max(0, ends[tp] - self.consumer.position(tp, timeout_ms=OFFSETS_TIMEOUT_MS))
                for tp in assigned}

    def commit_async(self, offsets: Mapping[TopicPartition, int]) -> None:
        if offsets:
            self.consumer.commit(offsets, asynchronous=True)

    def close(self) -> None:
        for client in (self.consumer, self.logs.consumer, self.sink):
            _close(client)


def _close(client: Any) -> None:
    try:
        if isinstance(client, KafkaSink):
            client.close()
        else:
            client.close(timeout_ms=CLOSE_TIMEOUT_MS)
    except ClientError:
        pass
