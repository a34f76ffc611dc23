"""The topics the daemon uses: how each is laid out, and creating what is missing."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from consumers.kafka.clients import MAX_MESSAGE_BYTES, make_admin
from consumers.kafka.gateway import Admin, ClientError
from consumers.kafka.reach import unreachable
from consumers.settings import KafkaSettings, RetentionSettings
from stream_al.topics import TopicNames

_DAY_MS = 86_400_000


@dataclass(frozen=True)
class TopicPlan:
    name: str
    partitions: int
    config: Mapping[str, str]


def topic_plan(topics: TopicNames, input_partitions: int = 6,
               retention: RetentionSettings | None = None) -> list[TopicPlan]:
    """Partition counts and retention for every topic the daemon uses.

    The label topic has ONE partition: it is the total order every replica applies
    labels in. Retention comes from ``retention`` (settings ``retention.*``): requests
    and labels must be kept as long as a replica's restore reads them, from its
    checkpoint's offsets on (the settings refuse less than the query lifetime). Claims
    matter for minutes; a day of them is plenty for a desk to replay at start. Requests,
    labels and claims are stamped with the broker's append time (``LogAppendTime``): a
    sender cannot backdate.
    """
    keep = retention or RetentionSettings()
    inputs, predictions = keep.ms(keep.inputs_hours), keep.ms(keep.predictions_hours)
    plans = [TopicPlan(name, input_partitions, _config(inputs)) for name in topics.inputs]
    return plans + [
        TopicPlan(topics.predictions, input_partitions, _config(predictions)),
        # The broker's append time, not the sender's, judges expiry and latency.
        TopicPlan(topics.requests, 3, _config(keep.ms(keep.requests_hours), log_time=True)),
        TopicPlan(topics.labels, 1, _config(keep.ms(keep.labels_hours), log_time=True)),
        TopicPlan(topics.dlq, 1, _config(keep.ms(keep.dlq_hours))),
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
                  replication: int = 1, apply_retention: bool = False) -> dict[str, str]:
    """Create what is missing. An existing topic keeps its partitions; its retention is
    changed to the plan's only with ``apply_retention`` (a shorter one deletes data), and
    otherwise a difference is reported. Returns name → outcome.

    Raises :class:`BrokerUnavailable` when no broker answers, :class:`ClientError` when
    the broker refuses."""
    try:
        admin = make_admin(kafka)
    except ClientError as error:  # e.g. kafka-python 3's "Unable to bootstrap"
        if not error.retriable:
            raise
        raise unreachable(kafka) from error
    outcome: dict[str, str] = {}
    try:
        existing = admin.topic_names()
        for plan in plans:
            # False: created meanwhile by someone else, and judged as an existing one.
            if plan.name not in existing and admin.create_topic(
                    plan.name, plan.partitions, replication, plan.config):
                kept = plan.config.get(RETENTION)
                outcome[plan.name] = f"created ({plan.partitions} partitions" + (
                    f", kept {describe_ms(kept)})" if kept is not None else ")")
                continue
            outcome[plan.name] = _existing(admin, plan, apply_retention)
    finally:
        admin.close()
    return outcome


RETENTION = "retention.ms"


def _existing(admin: Admin, plan: TopicPlan, apply_retention: bool) -> str:
    wanted = plan.config.get(RETENTION)
    if wanted is None:
        return "exists"  # a plan that says nothing of retention (a benchmark's topics)
    kept = admin.topic_config(plan.name, RETENTION)
    if kept is None or kept == wanted:
        return "exists"
    if not apply_retention:
        return (f"exists, kept {describe_ms(kept)} while the settings say "
                f"{describe_ms(wanted)}: --apply-retention changes it")
    admin.set_topic_config(plan.name, RETENTION, wanted)
    return f"exists, retention changed from {describe_ms(kept)} to {describe_ms(wanted)}"


def describe_ms(retention_ms: str) -> str:
    """A retention as a person reads it.

    >>> describe_ms("-1"), describe_ms("604800000"), describe_ms("5400000")
    ('forever', '168 h', '1.5 h')
    """
    if int(retention_ms) < 0:
        return "forever"
    return f"{int(retention_ms) / 3_600_000:g} h"


def delete_topics(kafka: KafkaSettings, prefix: str) -> None:
    """Delete every topic whose name starts with ``prefix`` (a benchmark's own)."""
    admin = make_admin(kafka, bootstrap_timeout_ms=None)
    try:
        names = [name for name in admin.topic_names() if name.startswith(prefix)]
        if names:
            admin.delete_topics(names)
    finally:
        admin.close()
