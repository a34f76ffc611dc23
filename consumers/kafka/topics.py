"""The topics the daemon uses: how each is laid out, and creating what is missing."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import KafkaTimeoutError, TopicAlreadyExistsError

from consumers.kafka.clients import BOOTSTRAP_TIMEOUT_MS, MAX_MESSAGE_BYTES
from consumers.kafka.reach import unreachable
from consumers.settings import KafkaSettings
from stream_al.topics import TopicNames

_DAY_MS = 86_400_000


@dataclass(frozen=True)
class TopicPlan:
    name: str
    partitions: int
    config: Mapping[str, str]


def topic_plan(topics: TopicNames, input_partitions: int = 6) -> list[TopicPlan]:
    """Partition counts and retention for every topic the daemon uses.

    The label topic has ONE partition: it is the total order every replica applies
    labels in. Requests and labels are kept forever (they are budget-sized), because a
    new replica rebuilds its models by replaying them. Claims matter for minutes; a day
    of them is plenty for a desk to replay at start. Requests, labels and claims are
    stamped with the broker's append time (``LogAppendTime``): a sender cannot backdate.
    """
    week, month = str(7 * _DAY_MS), str(30 * _DAY_MS)
    plans = [TopicPlan(name, input_partitions, _config(week)) for name in topics.inputs]
    return plans + [
        TopicPlan(topics.predictions, input_partitions, _config(week)),
        # The broker's append time, not the sender's, judges expiry and latency.
        TopicPlan(topics.requests, 3, _config("-1", log_time=True)),
        TopicPlan(topics.labels, 1, _config("-1", log_time=True)),
        TopicPlan(topics.dlq, 1, _config(month)),
        claims_plan(topics.claims),
    ]


def _config(retention_ms: str, log_time: bool = False) -> dict[str, str]:
    """Every topic takes what the producer may send (``MAX_MESSAGE_BYTES``), so a message
    the producer accepts is never refused by the topic."""
    config = {"retention.ms": retention_ms, "max.message.bytes": str(MAX_MESSAGE_BYTES)}
    if log_time:
        config["message.timestamp.type"] = "LogAppendTime"
    return config


def claims_plan(name: str) -> TopicPlan:
    """The desk claim topic: one partition, so every desk reads claims in one order."""
    return TopicPlan(name, 1, _config(str(_DAY_MS), log_time=True))


def create_topics(kafka: KafkaSettings, plans: Iterable[TopicPlan],
                  replication: int = 1) -> dict[str, str]:
    """Create what is missing; an existing topic is left alone. Returns name → outcome.

    Raises :class:`BrokerUnavailable` when no broker answers."""
    try:
        admin = KafkaAdminClient(**kafka.client_options(),
                                 bootstrap_timeout_ms=BOOTSTRAP_TIMEOUT_MS)
    except KafkaTimeoutError as error:  # kafka-python 3: "Unable to bootstrap"
        raise unreachable(kafka) from error
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


def delete_topics(kafka: KafkaSettings, prefix: str) -> None:
    """Delete every topic whose name starts with ``prefix`` (a benchmark's own)."""
    admin = KafkaAdminClient(**kafka.client_options())
    try:
        names = [name for name in admin.list_topics() if name.startswith(prefix)]
        if names:
            admin.delete_topics(names)
    finally:
        admin.close()
