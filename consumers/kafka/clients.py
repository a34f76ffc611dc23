"""Thin kafka-python wrappers: client factories, the producer sink, topic creation."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from consumers.settings import KafkaSettings
from stream_al.bus import Message, Outgoing
from stream_al.errors import BrokerUnavailable
from stream_al.topics import TopicNames

log = logging.getLogger(__name__)


#: A dead letter carries the refused payload in base64 (4/3 of its size), so an input at
#: the brokers' default message limit (~1 MiB) makes a ~1.4 MB dead letter. The producer
#: and the dead-letter topic allow 2 MiB: otherwise one oversized input is refused again
#: on every retry and stops the daemon for good.
MAX_MESSAGE_BYTES = 2 * 1024 * 1024


def make_producer(kafka: KafkaSettings, **extra: Any) -> KafkaProducer:
    # acks=all with idempotence (the 3.x default): a retried send is not duplicated.
    options = {"acks": "all", "linger_ms": 5, "max_block_ms": 10_000, "compression_type": None,
               "max_request_size": MAX_MESSAGE_BYTES} | extra
    return KafkaProducer(**kafka.client_options(), **options)


def make_consumer(kafka: KafkaSettings, group: str | None, **extra: Any) -> KafkaConsumer:
    # kafka-python's default fetch wait (500 ms) stays: 50 ms cut the p99 latency tail in
    # the benchmark, but with it two fresh CI runs in a row had a daemon that never
    # produced (kafka-python 3.0.12's poll stall, more frequent with more fetches?).
    return KafkaConsumer(**kafka.client_options(), group_id=group, enable_auto_commit=False,
                         auto_offset_reset="earliest", **extra)


def to_message(record: Any) -> Message:
    """A kafka-python ConsumerRecord as the core's Message."""
    return Message(record.topic, record.partition, record.offset, record.key, record.value,
                   record.timestamp)


class KafkaSink:
    """Sends asynchronously; ``flush`` raises if anything sent since the last flush
    failed, so the caller never checkpoints past an undelivered prediction."""

    def __init__(self, producer: KafkaProducer) -> None:
        self.producer = producer
        self.failures: list[str] = []
        self.sent = 0

    def send(self, message: Outgoing) -> None:
        future = self.producer.send(message.topic, key=message.key, value=message.value)
        future.add_errback(lambda error: self.failures.append(f"{message.topic}: {error}"))
        self.sent += 1

    def flush(self, timeout_s: float = 30.0) -> None:
        try:
            self.producer.flush(timeout=timeout_s)
        except KafkaError as error:
            raise BrokerUnavailable(f"could not deliver produced messages: {error}") from error
        if self.failures:
            failures, self.failures = self.failures, []
            raise BrokerUnavailable(f"{len(failures)} messages were not delivered, e.g. "
                                    f"{failures[0]}")


@dataclass(frozen=True)
class TopicPlan:
    name: str
    partitions: int
    config: Mapping[str, str]


def topic_plan(topics: TopicNames, input_partitions: int = 6) -> list[TopicPlan]:
    """Partition counts and retention for every topic the daemon uses.

    The label topic has ONE partition: it is the total order every replica applies
    labels in. Requests and labels are kept forever (they are budget-sized), because a
    new replica rebuilds its models by replaying them.
    """
    week, month = str(7 * 86_400_000), str(30 * 86_400_000)
    plans = [TopicPlan(name, input_partitions, {"retention.ms": week}) for name in topics.inputs]
    return plans + [
        TopicPlan(topics.predictions, input_partitions, {"retention.ms": week}),
        TopicPlan(topics.requests, 3, {"retention.ms": "-1"}),
        TopicPlan(topics.labels, 1, {"retention.ms": "-1"}),
        TopicPlan(topics.dlq, 1, {"retention.ms": month,
                                  "max.message.bytes": str(MAX_MESSAGE_BYTES)}),
        TopicPlan(topics.claims, 1, {"retention.ms": str(86_400_000)}),
    ]


def create_topics(kafka: KafkaSettings, plans: Iterable[TopicPlan],
                  replication: int = 1) -> dict[str, str]:
    """Create what is missing; an existing topic is left alone. Returns name → outcome."""
    admin = KafkaAdminClient(**kafka.client_options())
    outcome: dict[str, str] = {}
    try:
        existing = set(admin.list_topics())
        for plan in plans:
            if plan.name in existing:
                outcome[plan.name] = "exists"
                continue
            try:
                admin.create_topics([NewTopic(plan.name, plan.partitions, replication,
                                              topic_configs=dict(plan.config))])
                outcome[plan.name] = f"created ({plan.partitions} partitions)"
            except TopicAlreadyExistsError:
                outcome[plan.name] = "exists"
    finally:
        admin.close()
    return outcome


def partitions_of(consumer: KafkaConsumer, topics: Iterable[str]) -> list[TopicPartition]:
    found = []
    for topic in topics:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            raise BrokerUnavailable(f"topic {topic} has no partitions yet (does it exist? "
                                    "run `stream-al topics create`)")
        found += [TopicPartition(topic, p) for p in sorted(partitions)]
    return found
