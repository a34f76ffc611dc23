"""The desk's Kafka reader: the request and label topics from the beginning, into the state.

No consumer group: every desk (and terminal) reads every partition of the request, label
and claim topics, so each rebuilds the same queue and the same claims, and a label sent
from anywhere removes its card everywhere.

kafka-python's polls return nothing, not an error, while the broker is away, so the
reader asks the broker for the end offsets every ``_PROBE_S`` and tells the state whether
it answered (the page's "Kafka unreachable" banner comes and goes with it).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime

from consumers.kafka.clients import make_consumer
from consumers.kafka.gateway import ClientError, Consumer, TopicPartition
from consumers.kafka.sources import partitions_of, probe
from consumers.oracle.desk.state import DeskState
from consumers.settings import KafkaSettings
from stream_al.auth import RequestSigner
from stream_al.bus import Message
from stream_al.errors import BrokerUnavailable
from stream_al.topics import TopicNames

log = logging.getLogger("stream_al.desk")
_RETRY_S = 2.0
#: Seconds between probes of the broker, and how long one may wait for its answer.
_PROBE_S = 2.0
_PROBE_TIMEOUT_MS = 2_000
#: kafka-python backs off up to 30 s between reconnects by default; someone is waiting at
#: the desk, so its clients try every 2 s at most (one broker connection each: cheap).
RECONNECT_MAX_MS = 2_000


def read_topics(kafka: KafkaSettings, topics: TopicNames, state: DeskState,
                stop: threading.Event, claims_topic: str | None = None,
                poll_ms: int = 200, signer: RequestSigner | None = None) -> None:
    """Feed ``state`` until ``stop`` is set; broker trouble is shown, retried, never fatal.

    With a ``signer`` (``security.request_key``), a request without the daemon's
    signature is never shown: a forged card would ask an engineer a question the daemon
    never asked, and its answer would teach nothing.
    """
    consumer = make_consumer(kafka, None, reconnect_backoff_max_ms=RECONNECT_MAX_MS)
    names = [topics.requests, topics.labels] + ([claims_topic] if claims_topic else [])
    try:
        ends = _assign(consumer, names, state, stop)
        next_probe = time.monotonic() + _PROBE_S
        while ends is not None and not stop.is_set():
            try:
                _poll_once(consumer, topics, state, poll_ms, signer)
                if not state.caught_up and _reached(consumer, ends):
                    state.set_caught_up()
                if time.monotonic() >= next_probe:
                    _probe(consumer, list(ends), state)
                    next_probe = time.monotonic() + _PROBE_S
            except ClientError as error:
                state.set_problem(f"Kafka: {error}; retrying")
                stop.wait(_RETRY_S)
    finally:
        consumer.close()


def _assign(consumer: Consumer, names: list[str], state: DeskState,
            stop: threading.Event) -> dict[TopicPartition, int] | None:
    """Assign every partition and seek to the start; the end offsets to catch up to."""
    while not stop.is_set():
        try:
            partitions = partitions_of(consumer, names)
            consumer.assign(dict.fromkeys(partitions))  # each from its beginning
            ends: dict[TopicPartition, int] = consumer.end_offsets(partitions)
            return ends
        except (BrokerUnavailable, ClientError) as error:
            state.set_problem(f"waiting for the topics: {error}")
            log.warning("desk: %s", error)
            stop.wait(_RETRY_S)
    return None


def _probe(consumer: Consumer, partitions: list[TopicPartition], state: DeskState
           ) -> None:
    try:
        probe(consumer, partitions, _PROBE_TIMEOUT_MS)
    except BrokerUnavailable as error:
        if state.kafka_reachable:
            log.warning("desk: Kafka unreachable (%s)", error)
        state.set_kafka_reachable(False)
        return
    if not state.kafka_reachable:
        log.info("desk: Kafka reachable again")
    state.set_kafka_reachable(True)


def _poll_once(consumer: Consumer, topics: TopicNames, state: DeskState,
               poll_ms: int, signer: RequestSigner | None = None) -> None:
    messages = consumer.poll(poll_ms)
    now = datetime.now(UTC)
    for message in messages:
        if message.topic == topics.requests:
            if signer is not None and not signer.verify(message):
                state.read_forged_request(message.where)
                continue
            state.read_request(message.value or b"", message.where, now)
        elif message.topic == topics.labels:
            state.read_label(message.value or b"", message.where)
        else:
            # The broker's append time, not the claim's own: a claim cannot be
            # made to start in the future (and so last past its lease).
            state.read_claim(message.value or b"", message.where, _append_time(message))
    state.expire(now)


def _append_time(message: Message) -> datetime | None:
    if message.timestamp_ms <= 0:
        return None
    return datetime.fromtimestamp(message.timestamp_ms / 1000, tz=UTC)


def _reached(consumer: Consumer, ends: Mapping[TopicPartition, int]) -> bool:
    return all(consumer.position(partition) >= end for partition, end in ends.items())
