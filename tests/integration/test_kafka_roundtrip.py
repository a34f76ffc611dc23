"""A real round trip through Apache Kafka: what the daemon's at-least-once design assumes.

Keyed records keep their order within a partition, manual commits persist in the group,
and a new member of the group resumes exactly where the commits say.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient
from kafka.serializer import DefaultSerializer, JsonSerializer

from consumers.kafka.clients import make_consumer
from consumers.kafka.gateway import ClientError, Consumer
from consumers.kafka.gateway import TopicPartition as Partition
from consumers.kafka.sink import KafkaSink
from consumers.settings import KafkaSettings
from stream_al.bus import Message, Outgoing
from tests.clients_support import CLIENTS

pytestmark = pytest.mark.integration

PARTITIONS = 3
KEYS = 31  # enough keys that the default partitioner fills every partition
_HANG_GUARD_S = 120.0  # only stops a broken test from hanging; never asserted on


@dataclass
class Consumed:
    """What one consumer saw, in arrival order."""

    values: list[dict[str, Any]] = field(default_factory=list)
    offsets: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))


def produce(bootstrap: str, topic: str, count: int) -> None:
    """``count`` JSON messages, key ``k<i % KEYS>``, each with its per-key sequence number."""
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        key_serializer=DefaultSerializer(),
        value_serializer=JsonSerializer(),
        linger_ms=5,
    )
    for i in range(count):
        key = f"k{i % KEYS}"
        producer.send(topic, key=key, value={"key": key, "seq": i // KEYS})
    producer.flush()
    producer.close()


def consumer_for(bootstrap: str, topic: str, group: str) -> KafkaConsumer:
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        value_deserializer=JsonSerializer(),
    )
    consumer.subscribe([topic])
    return consumer


def consume_and_commit(consumer: KafkaConsumer, expected: int) -> Consumed:
    """Poll until ``expected`` records arrived, committing after every batch."""
    seen = Consumed()
    deadline = time.monotonic() + _HANG_GUARD_S
    while len(seen.values) < expected and time.monotonic() < deadline:
        for tp, records in consumer.poll(timeout_ms=500).items():
            seen.values.extend(record.value for record in records)
            seen.offsets[tp.partition].extend(record.offset for record in records)
        consumer.commit()
    return seen


def committed_offsets(admin: KafkaAdminClient, group: str) -> dict[TopicPartition, int]:
    """Read back from the broker (not the consumer's cache) what the group committed."""
    return {tp: meta.offset for tp, meta in admin.list_group_offsets(group)[group].items()}


@pytest.fixture
def keyed_topic(
    kafka_bootstrap: str,
    create_topic: Callable[[str, int], str],
    unique_topic: Callable[..., str],
) -> Callable[[int], str]:
    """Create a fresh 3-partition topic and fill it with ``count`` keyed messages."""

    def make(count: int) -> str:
        topic = create_topic(unique_topic(), PARTITIONS)
        produce(kafka_bootstrap, topic, count)
        return topic

    return make


def test_every_message_arrives_once_in_key_order_and_commits_reach_end_offsets(
    kafka_bootstrap: str,
    kafka_admin: KafkaAdminClient,
    keyed_topic: Callable[[int], str],
    unique_group: Callable[..., str],
) -> None:
    count, topic, group = 10_000, keyed_topic(10_000), unique_group()
    consumer = consumer_for(kafka_bootstrap, topic, group)
    try:
        seen = consume_and_commit(consumer, count)
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        end_offsets = consumer.end_offsets(partitions)
    finally:
        consumer.close()

    pairs = [(value["key"], value["seq"]) for value in seen.values]
    assert len(pairs) == count
    assert len(set(pairs)) == count, "a message was delivered twice"
    sequences: dict[str, list[int]] = defaultdict(list)
    for key, seq in pairs:
        sequences[key].append(seq)
    assert all(seqs == list(range(len(seqs))) for seqs in sequences.values())
    assert sorted(seen.offsets) == list(range(PARTITIONS)), "a partition got no data"
    assert all(offs == list(range(len(offs))) for offs in seen.offsets.values())
    assert sum(end_offsets.values()) == count
    assert committed_offsets(kafka_admin, group) == end_offsets


def test_a_new_member_of_the_group_resumes_after_the_commits(
    kafka_bootstrap: str,
    keyed_topic: Callable[[int], str],
    unique_group: Callable[..., str],
) -> None:
    count, topic, group = 300, keyed_topic(300), unique_group()
    first = consumer_for(kafka_bootstrap, topic, group)
    try:
        assert len(consume_and_commit(first, count).values) == count
    finally:
        first.close()

    produce_one = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    produce_one.send(topic, key=b"k0", value=b'{"key": "k0", "seq": "after-commit"}')
    produce_one.close()  # flushes

    second = consumer_for(kafka_bootstrap, topic, group)
    try:
        seen = consume_and_commit(second, 1)
        assert [value["seq"] for value in seen.values] == ["after-commit"]
        assert second.poll(timeout_ms=1000) == {}, "records before the commit came again"
    finally:
        second.close()


# -- the same guarantees through the gateway, with each client ---------------------------


@dataclass
class Listener:
    """A group member's rebalance listener: commits what it read on revoke, resumes at
    the group's commits on assign (nothing of its own)."""

    read_to: dict[Partition, int] = field(default_factory=dict)
    assigned: list[Partition] = field(default_factory=list)
    revoked: list[Partition] = field(default_factory=list)

    def on_revoked(self, partitions: list[Partition]) -> dict[Partition, int]:
        self.revoked += partitions
        return {tp: self.read_to[tp] for tp in partitions if tp in self.read_to}

    def on_assigned(self, partitions: list[Partition]) -> dict[Partition, int]:
        self.assigned += partitions
        return {}

    def on_lost(self, partitions: list[Partition]) -> None:
        raise AssertionError(f"lost {partitions}")

    def on_commit_failed(self, offsets: Mapping[Partition, int],
                         error: ClientError) -> None:
        raise AssertionError(f"commit of {offsets} failed: {error}")


def read_through(consumer: Consumer, listener: Listener, count: int) -> list[Message]:
    seen: list[Message] = []
    deadline = time.monotonic() + _HANG_GUARD_S
    while len(seen) < count:
        assert time.monotonic() < deadline, f"read {len(seen)} of {count}"
        for message in consumer.poll(200, 100):
            seen.append(message)
            listener.read_to[Partition(message.topic, message.partition)] = (
                message.offset + 1)
    return seen


@pytest.mark.parametrize("kafka_client", CLIENTS)
def test_the_gateway_keeps_order_and_a_new_member_resumes_at_the_commits(
    kafka_bootstrap: str,
    kafka_client: str,
    unique_topic: Callable[..., str],
    unique_group: Callable[..., str],
    create_topic: Callable[[str, int], str],
) -> None:
    kafka = KafkaSettings(bootstrap_servers=[kafka_bootstrap], client=kafka_client)
    topic = create_topic(unique_topic("gateway"), PARTITIONS)
    sink: KafkaSink[Outgoing] = KafkaSink.connect(kafka)
    for i in range(300):
        sink.send(Outgoing(topic, f"k{i % KEYS}".encode(), f"{i // KEYS}".encode(),
                           headers=(("n", str(i).encode()),)))
    sink.flush(30)
    assert sink.delivered == 300 and not sink.take_failures()
    group = unique_group()

    first, listener = make_consumer(kafka, group), Listener()
    first.subscribe([topic], listener)
    seen = read_through(first, listener, 200)
    first.commit(listener.read_to, asynchronous=False)
    first.close()
    assert sorted(set(listener.assigned)) == [Partition(topic, p) for p in range(3)]

    second, again = make_consumer(kafka, group), Listener()
    second.subscribe([topic], again)
    seen += read_through(second, again, 300 - len(seen))
    second.commit(again.read_to, asynchronous=False)
    ends = second.end_offsets([Partition(topic, p) for p in range(PARTITIONS)])
    assert {tp: second.position(tp) for tp in ends} == ends
    second.close()
    sink.close()

    assert len(seen) == 300 == len({(m.partition, m.offset) for m in seen}), "each once"
    by_key: dict[bytes | None, list[int]] = defaultdict(list)
    for message in seen:
        by_key[message.key].append(int(message.value or b"-1"))
        assert message.headers[0][0] == "n" and message.timestamp_ms > 0
    assert all(seqs == sorted(seqs) for seqs in by_key.values()), "key order kept"


@pytest.mark.parametrize("kafka_client", CLIENTS)
def test_offsets_of_a_topic_the_client_has_not_read_come_with_those_it_has(
    kafka_bootstrap: str,
    kafka_client: str,
    unique_topic: Callable[..., str],
    create_topic: Callable[[str, int], str],
) -> None:
    """The restore check asks the label-log consumer, which has read only the logs, for
    the inputs' first offsets too: kafka-python 3.0 alone drops (KeyError) a partition
    whose leader it has not looked up, which once killed the daemon at every restart."""
    read, unread = (create_topic(unique_topic(name), PARTITIONS) for name in ("read", "unread"))
    kafka = KafkaSettings(bootstrap_servers=[kafka_bootstrap], client=kafka_client)
    consumer = make_consumer(kafka, None)
    consumer.assign({Partition(read, 0): None})
    consumer.poll(1000, 10)  # the client now knows `read`'s leaders and nothing else
    asked = [Partition(topic, p) for topic in (unread, read) for p in range(PARTITIONS)]
    try:
        assert consumer.beginning_offsets(asked, timeout_ms=10_000) == dict.fromkeys(asked, 0)
        assert consumer.end_offsets(asked, timeout_ms=10_000) == dict.fromkeys(asked, 0)
    finally:
        consumer.close()


@pytest.mark.parametrize("kafka_client", CLIENTS)
def test_highwater_is_the_end_the_last_fetch_gave_and_none_before(
    kafka_bootstrap: str,
    kafka_client: str,
    unique_topic: Callable[..., str],
    create_topic: Callable[[str, int], str],
) -> None:
    """The lag gauge reads each partition's end from the fetches the consumer already
    made (an offsets request waits behind its long poll): the end is the true one once
    a fetch has answered, and unknown, not 0, before."""
    topic = create_topic(unique_topic("highwater"), 1)
    produce(kafka_bootstrap, topic, 40)
    kafka = KafkaSettings(bootstrap_servers=[kafka_bootstrap], client=kafka_client)
    consumer, partition = make_consumer(kafka, None), Partition(topic, 0)
    consumer.assign({partition: None})
    try:
        assert consumer.highwater(partition) is None, "no fetch has answered yet"
        read, deadline = 0, time.monotonic() + _HANG_GUARD_S
        while read < 5:
            assert time.monotonic() < deadline, f"read {read} of 5"
            read += len(consumer.poll(200, 5 - read))
        # Read 5 of 40: the end is 40, whatever the position.
        assert consumer.highwater(partition) == 40
        assert consumer.position(partition) == 5
    finally:
        consumer.close()
