"""Client factories: the one producer configuration and the consumer defaults."""

from __future__ import annotations

from typing import Any

from kafka import KafkaConsumer, KafkaProducer

from consumers.settings import KafkaSettings

#: A dead letter carries the refused payload in base64 (4/3 of its size), so an input at
#: the brokers' default message limit (~1 MiB) makes a ~1.4 MB dead letter. The producer
#: and the dead-letter topic allow 2 MiB: otherwise one oversized input is refused again
#: on every retry and stops the daemon for good.
MAX_MESSAGE_BYTES = 2 * 1024 * 1024
#: How long a producer or consumer may look for a broker before saying none answers
#: (kafka-python waits 30 s by default, which also holds up a SIGTERM).
BOOTSTRAP_TIMEOUT_MS = 10_000
#: How long ``send`` may block on metadata or a full buffer before it is an outage.
MAX_BLOCK_MS = 10_000
#: Batching window: a few ms is invisible next to a person's answer and saves requests.
LINGER_MS = 5


def make_producer(kafka: KafkaSettings, **extra: Any) -> KafkaProducer:
    """Every producer of the project: acks=all with idempotence, so a retried send is
    not duplicated; security settings pass through from ``kafka``."""
    options = {"acks": "all", "enable_idempotence": True, "linger_ms": LINGER_MS,
               "max_block_ms": MAX_BLOCK_MS, "compression_type": None,
               "max_request_size": MAX_MESSAGE_BYTES,
               "bootstrap_timeout_ms": BOOTSTRAP_TIMEOUT_MS} | extra
    return KafkaProducer(**kafka.client_options(), **options)


def make_consumer(kafka: KafkaSettings, group: str | None, **extra: Any) -> KafkaConsumer:
    """A consumer that never commits on its own: offsets are committed only after what
    they cover is safe (flushed, checkpointed). A group consumer finishes every join it
    starts (see :func:`finish_started_joins`)."""
    # kafka-python's default fetch wait (500 ms) stays: 50 ms cut the p99 latency tail in
    # the benchmark; the CI runs without predictions that made us revert it were the join
    # stall that finish_started_joins removes (docs/benchmarks.md, "Soak").
    options = {"group_id": group, "enable_auto_commit": False,
               "auto_offset_reset": "earliest",
               "bootstrap_timeout_ms": BOOTSTRAP_TIMEOUT_MS} | extra
    consumer = KafkaConsumer(**kafka.client_options(), **options)
    if group is not None:
        finish_started_joins(consumer)
    return consumer


def finish_started_joins(consumer: KafkaConsumer) -> None:
    """Work around a lost join in kafka-python 3.0.12 (the newest release, and its master
    as of 2026-08): a poll drives a rebalance only while ``need_rejoin()`` is true, and
    that can turn false halfway through one. A rejoin asked for because the partition
    metadata changed (every fresh group does so once, right after its first join)
    clears itself as soon as the leader computes the new assignment. If the poll's
    timeout ran out before the join finished (our revoke checkpoint alone can take the
    100 ms), no later poll picks up the finished join: the member stays "rebalancing"
    for good, every partition waits for a revocation that never completes, heartbeats
    stay off and each poll spins (0.9 CPU-s/s) returning nothing, while the loop keeps
    turning, so /healthz and /readyz stay green. Seen at exactly 500 predictions (one
    batch fetched before the rebalance) or at 0, in ~10 % of fresh starts.

    The Java client asks "rejoin needed OR pending"; so do we, on this consumer only: a
    join that has begun (``rejoining``) keeps the poll driving it until its assignment
    is applied, at worst with a fresh JoinGroup if the old one finished unheard.
    """
    coordinator = consumer._coordinator  # noqa: SLF001 - no public hook exists
    if not hasattr(coordinator, "rejoining"):
        raise RuntimeError("kafka-python's coordinator has no 'rejoining' flag: recheck "
                           "finish_started_joins against this kafka-python release")
    needed = coordinator.need_rejoin

    def needed_or_pending() -> bool:
        return bool(needed() or coordinator.rejoining)

    coordinator.need_rejoin = needed_or_pending
