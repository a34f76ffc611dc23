"""The lost join behind the soak's stall, made to happen on purpose on the real broker.

A rejoin that kafka-python asks for because the partition metadata changed clears
itself once the leader's JoinGroup response is assigned; if the poll's timeout ran out
before that, no later poll applies the finished join. Here partitions are added to the
topic (so the rejoin is of that kind), the revoke callback takes longer than the poll's
timeout, and the consumer waits between polls so that the join finishes unheard.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import pytest
from kafka import ConsumerRebalanceListener, KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.admin import NewPartitions

from consumers.kafka import kafka_python as clients
from consumers.kafka.kafka_python import native_consumer, native_producer
from consumers.settings import KafkaSettings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

_POLL_MS = 100
_REVOKE_S = 0.3  # longer than a poll: the join outlives the poll that began it
_BETWEEN_POLLS_S = 0.5  # the join finishes while nobody polls


class _SlowRevoke(ConsumerRebalanceListener):  # type: ignore[misc]
    def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        time.sleep(_REVOKE_S)  # as the daemon's checkpoint on revoke does

    def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        pass


def _produce(kafka: KafkaSettings, topic: str, partitions: int, each: int) -> None:
    producer = native_producer(kafka)
    try:
        for partition in range(partitions):
            for n in range(each):
                producer.send(topic, value=b"%d" % n, partition=partition)
        producer.flush()
    finally:
        producer.close()


def _read(consumer: KafkaConsumer, until: int, timeout_s: float) -> dict[int, int]:
    """Records read per partition, polling until ``until`` in all or the timeout."""
    read: dict[int, int] = {}
    deadline = time.monotonic() + timeout_s
    while sum(read.values()) < until and time.monotonic() < deadline:
        for tp, records in consumer.poll(timeout_ms=_POLL_MS).items():
            read[tp.partition] = read.get(tp.partition, 0) + len(records)
        time.sleep(_BETWEEN_POLLS_S)
    return read


def _after_adding_a_partition(kafka_bootstrap: str, admin: KafkaAdminClient, topic: str,
                              group: str) -> tuple[dict[int, int], dict[int, int], str]:
    """Records read per partition before and after a second partition appears (5 more
    records in each), and the member's state at the end."""
    kafka = KafkaSettings.model_validate({"bootstrap_servers": kafka_bootstrap})
    _produce(kafka, topic, partitions=1, each=10)
    consumer = native_consumer(kafka, group, metadata_max_age_ms=500)
    consumer.subscribe([topic], listener=_SlowRevoke())
    try:
        before = _read(consumer, 10, timeout_s=60)
        admin.create_partitions({topic: NewPartitions(total_count=2)})
        _produce(kafka, topic, partitions=2, each=5)
        after = _read(consumer, 10, timeout_s=30)
        state = str(consumer._coordinator.state)  # noqa: SLF001 - what the bug leaves
    finally:
        consumer.close(autocommit=False)
    return before, after, state


def test_a_group_consumer_applies_a_join_that_finished_between_polls(
        kafka_bootstrap: str, kafka_admin: KafkaAdminClient,
        create_topic: Callable[[str, int], str], unique_topic: Callable[..., str],
        unique_group: Callable[..., str]) -> None:
    topic = create_topic(unique_topic(), 1)
    before, after, state = _after_adding_a_partition(kafka_bootstrap, kafka_admin, topic,
                                                     unique_group())
    assert (before, after, state) == ({0: 10}, {0: 5, 1: 5}, "<stable>")


def test_without_the_workaround_kafka_python_loses_that_join(
        kafka_bootstrap: str, kafka_admin: KafkaAdminClient,
        create_topic: Callable[[str, int], str], unique_topic: Callable[..., str],
        unique_group: Callable[..., str], monkeypatch: pytest.MonkeyPatch) -> None:
    """kafka-python's own behaviour; when this fails, a release has fixed the bug and
    ``finish_started_joins`` can go."""
    monkeypatch.setattr(clients, "finish_started_joins", lambda consumer: None)
    topic = create_topic(unique_topic(), 1)
    before, after, state = _after_adding_a_partition(kafka_bootstrap, kafka_admin, topic,
                                                     unique_group())
    assert before == {0: 10}
    # Stuck halfway: "rebalancing" for good, the new partition never read.
    assert (after.get(1, 0), state) == (0, "<rebalancing>"), \
        "kafka-python applied the join: drop finish_started_joins?"
