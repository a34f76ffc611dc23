"""Kafka consumers as the core's ``Source``: polls return the core's ``Message``.

``KafkaLogSource`` reads the request and label topics (every partition, no group) and
answers the one question the label join needs: has every request written before the
waiting labels been read?
"""

from __future__ import annotations

from collections.abc import Iterable

from consumers.kafka.gateway import ClientError, Consumer, TopicPartition
from stream_al.bus import Message
from stream_al.errors import BrokerUnavailable

#: Offsets and positions are cheap; a broker that needs longer than this is in trouble.
OFFSETS_TIMEOUT_MS = 5_000


def partitions_of(consumer: Consumer, topics: Iterable[str]) -> list[TopicPartition]:
    """Every partition of ``topics``; a topic without partitions is named."""
    found = []
    for topic in topics:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            raise BrokerUnavailable(f"topic {topic} has no partitions yet (does it exist? "
                                    "run `stream-al topics create`)")
        found += [TopicPartition(topic, p) for p in sorted(partitions)]
    return found


def probe(consumer: Consumer, partitions: list[TopicPartition], timeout_ms: int) -> None:
    """Is the broker there? kafka-python 3.x polls return nothing, not an error, while it
    is down, so ask something cheap; :class:`BrokerUnavailable` if it does not answer."""
    try:
        consumer.end_offsets(partitions, timeout_ms=timeout_ms)
    except ClientError as error:
        raise BrokerUnavailable(f"the broker did not answer within "
                                f"{timeout_ms / 1000:.0f} s ({error!r})") from error


class KafkaSource:
    """A subscribed (group) or assigned consumer, polled as a ``Source``."""

    def __init__(self, consumer: Consumer, timeout_ms: int = 0) -> None:
        self.consumer, self.timeout_ms = consumer, timeout_ms

    def poll(self, max_records: int) -> list[Message]:
        """A batch partition by partition (in ``_order``), each in log order."""
        batch = self.consumer.poll(self.timeout_ms, max_records)
        return sorted(batch, key=self._order)  # stable: log order within a partition

    def _order(self, message: Message) -> tuple[str, int]:
        return message.topic, message.partition


class KafkaLogSource(KafkaSource):
    """The request and label logs from given offsets (the checkpoint's), requests first
    in each batch so a label and its request in one batch join at once."""

    def __init__(self, consumer: Consumer, requests: list[TopicPartition],
                 labels: list[TopicPartition], offsets: dict[tuple[str, int], int]) -> None:
        super().__init__(consumer)
        self.requests, self.labels = requests, labels
        self._label_topics = {tp.topic for tp in labels}
        # From the checkpoint's offsets; a partition it does not know from the beginning.
        consumer.assign({tp: offsets.get((tp.topic, tp.partition)) for tp in requests + labels})
        self._look: tuple[int, dict[TopicPartition, int]] | None = None

    def requests_read_below(self, waiting: bool) -> int | None:
        """The label offset below which every label's request has been read, or None.

        A label whose request is missing is an unknown query once the request log has
        been read to its end as it stood AFTER the label was read: a real query's request
        is written before its label. Judging against the end as it stands now instead
        would stall every label behind a bogus one for as long as requests keep coming.
        """
        if not waiting:
            self._look = None
            return None
        consumer = self.consumer
        if self._look is None:
            self._look = (consumer.position(self.labels[0], timeout_ms=OFFSETS_TIMEOUT_MS),
                          consumer.end_offsets(self.requests, timeout_ms=OFFSETS_TIMEOUT_MS))
        labels_read_before, ends = self._look
        if all(consumer.position(tp, timeout_ms=OFFSETS_TIMEOUT_MS) >= end
               for tp, end in ends.items()):
            self._look = None  # labels read since then need a new look
            return int(labels_read_before)
        return None

    def _order(self, message: Message) -> tuple[str, int]:
        is_label = message.topic in self._label_topics
        return ("1" if is_label else "0") + message.topic, message.partition
