"""A real round trip through Apache Kafka: what the daemon's at-least-once design assumes.

Keyed records keep their order within a partition, manual commits persist in the group,
and a new member of the group resumes exactly where the commits say.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient
from kafka.serializer import DefaultSerializer, JsonSerializer

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
