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
    they cover is safe (flushed, checkpointed)."""
    # kafka-python's default fetch wait (500 ms) stays: 50 ms cut the p99 latency tail in
    # the benchmark, but with it two fresh CI runs in a row had a daemon that never
    # produced (kafka-python 3.0.12's poll stall, more frequent with more fetches?).
    options = {"group_id": group, "enable_auto_commit": False,
               "auto_offset_reset": "earliest",
               "bootstrap_timeout_ms": BOOTSTRAP_TIMEOUT_MS} | extra
    return KafkaConsumer(**kafka.client_options(), **options)
