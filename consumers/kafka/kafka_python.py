"""The gateway on kafka-python (the pure-Python client): the settings the project has always
used, kafka-python's errors as :class:`ClientError`, and its workarounds.

``native_consumer`` and ``native_producer`` are the raw clients with the project's
settings, for the benchmarks that measure kafka-python itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from kafka import (
    AsyncConsumerRebalanceListener,
    KafkaAdminClient,
    KafkaConsumer,
    KafkaProducer,
    OffsetAndMetadata,
)
from kafka import TopicPartition as NativePartition
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic
from kafka.errors import (
    IllegalStateError,
    KafkaError,
    KafkaTimeoutError,
    TopicAlreadyExistsError,
)

from consumers.kafka.clients import (
    BOOTSTRAP_TIMEOUT_MS,
    LINGER_MS,
    MAX_BLOCK_MS,
    MAX_MESSAGE_BYTES,
)
from consumers.kafka.gateway import ClientError, Delivery, RebalanceListener, TopicPartition
from consumers.settings import KafkaSettings
from stream_al.bus import Message
from stream_al.errors import BrokerUnavailable

# -- the raw clients -------------------------------------------------------------------


def native_producer(kafka: KafkaSettings, **extra: Any) -> KafkaProducer:
    """kafka-python's producer with the project's settings: acks=all with idempotence,
    so a retried send is not duplicated; security settings pass through from ``kafka``."""
    options = {"acks": "all", "enable_idempotence": True, "linger_ms": LINGER_MS,
               "max_block_ms": MAX_BLOCK_MS, "compression_type": None,
               "max_request_size": MAX_MESSAGE_BYTES,
               "bootstrap_timeout_ms": BOOTSTRAP_TIMEOUT_MS} | extra
    return KafkaProducer(**kafka.client_options(), **options)


def native_consumer(kafka: KafkaSettings, group: str | None, **extra: Any) -> KafkaConsumer:
    """kafka-python's consumer with the project's settings: never commits on its own. A
    group consumer finishes every join it starts (see :func:`finish_started_joins`)."""
    options = {"group_id": group, "enable_auto_commit": False,
               "auto_offset_reset": "earliest", "fetch_max_wait_ms": kafka.fetch_max_wait_ms,
               "bootstrap_timeout_ms": BOOTSTRAP_TIMEOUT_MS} | extra
    consumer = KafkaConsumer(**kafka.client_options(), **options)
    if group is not None:
        finish_started_joins(consumer)
    return consumer


def native_partitions_of(consumer: KafkaConsumer, topics: Iterable[str]
                         ) -> list[NativePartition]:
    """``sources.partitions_of`` for a raw kafka-python consumer."""
    found = []
    for topic in topics:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            raise BrokerUnavailable(f"topic {topic} has no partitions yet (does it exist? "
                                    "run `stream-al topics create`)")
        found += [NativePartition(topic, p) for p in sorted(partitions)]
    return found


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


# -- errors and records ------------------------------------------------------------------


def client_error(error: BaseException) -> ClientError:
    """kafka-python's error as the gateway's: its own ``retriable`` flag decides (an
    error without one is taken for an outage, as a lost connection is)."""
    return ClientError(str(error) or type(error).__name__,
                       retriable=bool(getattr(error, "retriable", True)), native=repr(error))


@contextmanager
def _speaking() -> Iterator[None]:
    try:
        yield
    except KafkaError as error:
        raise client_error(error) from error


def to_message(record: Any) -> Message:
    """A kafka-python ConsumerRecord as the core's Message."""
    return Message(record.topic, record.partition, record.offset, record.key, record.value,
                   record.timestamp, tuple(record.headers or ()))


def _ours(partitions: Iterable[Any]) -> list[TopicPartition]:
    return [TopicPartition(tp.topic, tp.partition) for tp in partitions]


def _native_offsets(offsets: Mapping[TopicPartition, int]
                    ) -> dict[NativePartition, OffsetAndMetadata]:
    return {NativePartition(*tp): OffsetAndMetadata(offset, "", -1)
            for tp, offset in offsets.items()}


# -- the gateway -------------------------------------------------------------------------


class KafkaPythonProducer:
    def __init__(self, kafka: KafkaSettings, *, bootstrap_timeout_ms: int,
                 reconnect_backoff_max_ms: int | None = None) -> None:
        extra: dict[str, Any] = {"bootstrap_timeout_ms": bootstrap_timeout_ms}
        if reconnect_backoff_max_ms is not None:
            extra["reconnect_backoff_max_ms"] = reconnect_backoff_max_ms
        with _speaking():  # kafka-python 3 raises KafkaTimeoutError: cannot bootstrap
            self.native = native_producer(kafka, **extra)

    def send(self, topic: str, key: bytes | None, value: bytes,
             headers: Sequence[tuple[str, bytes]], on_delivery: Delivery) -> None:
        with _speaking():
            future = self.native.send(topic, key=key, value=value, headers=list(headers) or None)
        future.add_callback(lambda _metadata: on_delivery(None))
        future.add_errback(lambda error: on_delivery(client_error(error)))

    def send_and_wait(self, topic: str, key: bytes | None, value: bytes,
                      timeout_s: float) -> None:
        with _speaking():
            self.native.send(topic, key=key, value=value).get(timeout=timeout_s)

    def flush(self, timeout_s: float) -> bool:
        try:
            self.native.flush(timeout=timeout_s)
        except KafkaTimeoutError:
            return False
        except KafkaError as error:
            raise client_error(error) from error
        return True

    def close(self, timeout_s: float) -> None:
        try:
            self.native.close(timeout=timeout_s)
        except KafkaError:
            # kafka-python 3.0.12's close flushes first and, if that times out (the broker
            # is away), raises before it stops the sender thread: that thread, its client
            # and every batch it holds lived on, one more set at each broker outage. Abort
            # what is pending, then close for real.
            self.native._sender.force_close()  # noqa: SLF001 - no public abort exists
            try:
                self.native.close(timeout=timeout_s)
            except KafkaError:
                pass  # the batches were aborted: their failures are already counted


class _Rebalance(AsyncConsumerRebalanceListener):  # type: ignore[misc]
    """Runs on kafka-python's I/O loop while the main thread waits inside ``poll``: the
    listener may touch the pipeline; consumer calls here are awaited, never blocked on."""

    def __init__(self, native: KafkaConsumer, listener: RebalanceListener) -> None:
        self.native, self.listener = native, listener

    async def on_partitions_revoked(self, revoked: Iterable[Any]) -> None:
        offsets = self.listener.on_revoked(_ours(revoked))
        if not offsets:
            return
        try:
            await self.native.commit_async(_native_offsets(offsets))
        except KafkaError as error:
            self.listener.on_commit_failed(offsets, client_error(error))

    async def on_partitions_assigned(self, assigned: Iterable[Any]) -> None:
        for tp, offset in self.listener.on_assigned(_ours(assigned)).items():
            self.native.seek(NativePartition(*tp), offset)

    async def on_partitions_lost(self, lost: Iterable[Any]) -> None:
        self.listener.on_lost(_ours(lost))


class KafkaPythonConsumer:
    def __init__(self, kafka: KafkaSettings, group: str | None, *, bootstrap_timeout_ms: int,
                 session_timeout_ms: int | None = None,
                 reconnect_backoff_max_ms: int | None = None) -> None:
        extra: dict[str, Any] = {"bootstrap_timeout_ms": bootstrap_timeout_ms}
        if session_timeout_ms is not None:
            extra["session_timeout_ms"] = session_timeout_ms
        if reconnect_backoff_max_ms is not None:
            extra["reconnect_backoff_max_ms"] = reconnect_backoff_max_ms
        with _speaking():
            self.native = native_consumer(kafka, group, **extra)

    def subscribe(self, topics: Sequence[str],
                  listener: RebalanceListener | None = None) -> None:
        with _speaking():
            if listener is None:
                self.native.subscribe(list(topics))
            else:
                self.native.subscribe(list(topics), listener=_Rebalance(self.native, listener))

    def assign(self, starts: Mapping[TopicPartition, int | None]) -> None:
        with _speaking():
            self.native.assign([NativePartition(*tp) for tp in starts])
            for tp, offset in starts.items():
                if offset is None:
                    self.native.seek_to_beginning(NativePartition(*tp))
                else:
                    self.native.seek(NativePartition(*tp), offset)

    def assignment(self) -> list[TopicPartition]:
        return _ours(self.native.assignment())

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        with _speaking():
            found = self.native.partitions_for_topic(topic)
        return set(found) if found else None

    def poll(self, timeout_ms: int, max_records: int | None = None) -> list[Message]:
        with _speaking():
            if max_records is None:
                batch = self.native.poll(timeout_ms=timeout_ms)
            else:
                batch = self.native.poll(timeout_ms=timeout_ms, max_records=max_records)
        return [to_message(record) for records in batch.values() for record in records]

    def position(self, partition: TopicPartition, timeout_ms: int | None = None) -> int:
        with _speaking():
            return int(self.native.position(NativePartition(*partition), timeout_ms=timeout_ms))

    def end_offsets(self, partitions: Sequence[TopicPartition],
                    timeout_ms: int | None = None) -> dict[TopicPartition, int]:
        return self._list_offsets(self.native.end_offsets, partitions, timeout_ms)

    def beginning_offsets(self, partitions: Sequence[TopicPartition],
                          timeout_ms: int | None = None) -> dict[TopicPartition, int]:
        return self._list_offsets(self.native.beginning_offsets, partitions, timeout_ms)

    def highwater(self, partition: TopicPartition) -> int | None:
        try:
            found = self.native.highwater(NativePartition(*partition))
        except IllegalStateError:  # revoked since the caller read the assignment
            return None
        return None if found is None else int(found)

    def _list_offsets(self, ask: Callable[..., Mapping[Any, int]],
                      partitions: Sequence[TopicPartition],
                      timeout_ms: int | None) -> dict[TopicPartition, int]:
        # kafka-python 3.0 leaves out, without retrying, a partition whose leader its
        # metadata lacks (a topic this client has not read yet), and then raises KeyError
        # for it: load each topic's metadata first, and take a miss for an outage.
        with _speaking():
            for topic in {tp.topic for tp in partitions}:
                self.native.partitions_for_topic(topic)
            try:
                found = ask([NativePartition(*tp) for tp in partitions], timeout_ms=timeout_ms)
            except KeyError as missing:
                raise ClientError(f"no offsets for {missing.args[0]} yet: its leader is not "
                                  "known to this client", retriable=True) from missing
        return {TopicPartition(tp.topic, tp.partition): int(at) for tp, at in found.items()}

    def commit(self, offsets: Mapping[TopicPartition, int], *, asynchronous: bool,
               timeout_ms: int | None = None) -> None:
        with _speaking():
            if asynchronous:
                self.native.commit_async(_native_offsets(offsets))
            else:
                self.native.commit(_native_offsets(offsets), timeout_ms=timeout_ms)

    def close(self, timeout_ms: int | None = None) -> None:
        with _speaking():
            self.native.close(autocommit=False, timeout_ms=timeout_ms)


class KafkaPythonAdmin:
    def __init__(self, kafka: KafkaSettings, *, bootstrap_timeout_ms: int | None) -> None:
        options = {} if bootstrap_timeout_ms is None else {
            "bootstrap_timeout_ms": bootstrap_timeout_ms}
        with _speaking():  # kafka-python 3: "Unable to bootstrap"
            self.native = KafkaAdminClient(**kafka.client_options(), **options)

    def topic_names(self) -> set[str]:
        with _speaking():
            return set(self.native.list_topics())

    def create_topic(self, name: str, partitions: int, replication: int,
                     config: Mapping[str, str]) -> bool:
        with _speaking():
            try:
                self.native.create_topics([NewTopic(name, partitions, replication,
                                                    topic_configs=dict(config))])
            except TopicAlreadyExistsError:
                return False
        return True

    def topic_config(self, name: str, key: str) -> str | None:
        resource = ConfigResource(ConfigResourceType.TOPIC, name, configs=[key])
        with _speaking():
            described = self.native.describe_configs([resource], config_filter="all")
        value = described.get("topic", {}).get(name, {}).get(key, {}).get("value")
        return None if value is None else str(value)

    def set_topic_config(self, name: str, key: str, value: str) -> None:
        with _speaking():
            self.native.alter_configs([ConfigResource(ConfigResourceType.TOPIC, name,
                                                      configs={key: value})], incremental=True)

    def delete_topics(self, names: Sequence[str]) -> None:
        with _speaking():
            self.native.delete_topics(list(names))

    def close(self) -> None:
        with _speaking():
            self.native.close()
