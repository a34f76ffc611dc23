"""The gateway on confluent-kafka (librdkafka, bundled in its wheel): ``kafka.client:
confluent``, installed with the ``[confluent]`` extra.

The same settings as kafka-python's in librdkafka's words (``producer_config``,
``consumer_config``), and librdkafka's ways made to look like the gateway's:

- delivery reports and rebalance callbacks run only inside ``poll``/``consume``/``flush``
  on the calling thread, so the producer serves them after every send and in ``flush``,
  and the consumer's rebalance listener runs inside ``Consumer.poll``;
- a consumer's position is only known once it has read a record, so the consumer keeps
  the positions it assigned and read, and asks the broker for the rest;
- librdkafka connects lazily, so each client asks for metadata once when made: a broker
  that does not answer is said at once, as kafka-python's bootstrap says it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from consumers.kafka.clients import (
    DELIVERY_TIMEOUT_MS,
    LINGER_MS,
    MAX_BLOCK_MS,
    MAX_MESSAGE_BYTES,
    SESSION_TIMEOUT_MS,
)
from consumers.kafka.gateway import ClientError, Delivery, RebalanceListener, TopicPartition
from consumers.settings import KafkaSettings
from stream_al.bus import Message

try:
    import confluent_kafka as ck
    from confluent_kafka.admin import (
        AdminClient,
        AlterConfigOpType,
        ConfigEntry,
        ConfigResource,
        NewTopic,
        ResourceType,
    )
except ImportError as missing:  # pragma: no cover - a broken install: it is a dependency
    from stream_al.errors import ConfigError

    raise ConfigError("kafka.client is 'confluent' but confluent-kafka is not installed "
                      "(stream-al depends on it): pip install 'confluent-kafka>=2.6,<3', or "
                      "set kafka.client: kafka-python") from missing

#: librdkafka's log lines go to a child of the "kafka" logger, so the level the commands
#: set for kafka-python's chatter (``setup_logging``) applies to them too.
LIBRDKAFKA_LOG = logging.getLogger("kafka.librdkafka")
#: librdkafka's debug contexts turned on when that logger is at DEBUG.
LIBRDKAFKA_DEBUG = "broker,topic,metadata,cgrp"
#: kafka-python's default ``max_poll_records``.
MAX_POLL_RECORDS = 500
#: kafka-python's default ``buffer_memory`` (32 MiB): past it, ``send`` waits, then fails.
BUFFER_KBYTES = 32 * 1024
#: Purged messages report within milliseconds; this only bounds a stuck broker thread.
PURGE_SETTLE_S = 5.0

# -- settings --------------------------------------------------------------------------


def common_config(kafka: KafkaSettings) -> dict[str, Any]:
    """librdkafka's properties for ``kafka``'s connection and security settings, secrets
    revealed (never log these)."""
    config: dict[str, Any] = {
        "bootstrap.servers": ",".join(kafka.bootstrap_servers),
        "client.id": kafka.client_id,
        "security.protocol": kafka.security_protocol.lower(),
        "socket.timeout.ms": kafka.request_timeout_ms,
    }
    optional = {
        "sasl.mechanism": kafka.sasl_mechanism,
        "sasl.username": kafka.sasl_plain_username,
        "sasl.password": _reveal(kafka.sasl_plain_password),
        "ssl.ca.location": _text(kafka.ssl_cafile),
        "ssl.certificate.location": _text(kafka.ssl_certfile),
        "ssl.key.location": _text(kafka.ssl_keyfile),
        "ssl.key.password": _reveal(kafka.ssl_password),
    }
    config.update({k: v for k, v in optional.items() if v is not None})
    return config


def producer_config(kafka: KafkaSettings, reconnect_backoff_max_ms: int | None = None
                    ) -> dict[str, Any]:
    """The project's one producer (``kafka_python.native_producer``) for librdkafka:
    acks=all with idempotence, the same linger, no compression, the same largest
    message, buffer and delivery timeout.

    >>> config = producer_config(KafkaSettings())
    >>> config["acks"], config["enable.idempotence"], config["message.max.bytes"]
    ('all', True, 2097152)
    """
    config = common_config(kafka) | {
        "acks": "all", "enable.idempotence": True, "linger.ms": LINGER_MS,
        "compression.type": "none", "message.max.bytes": MAX_MESSAGE_BYTES,
        "request.timeout.ms": kafka.request_timeout_ms,
        "message.timeout.ms": DELIVERY_TIMEOUT_MS,
        "queue.buffering.max.kbytes": BUFFER_KBYTES,
    }
    if reconnect_backoff_max_ms is not None:
        config["reconnect.backoff.max.ms"] = reconnect_backoff_max_ms
    return config


def consumer_config(kafka: KafkaSettings, group: str | None,
                    session_timeout_ms: int | None = None,
                    reconnect_backoff_max_ms: int | None = None) -> dict[str, Any]:
    """A consumer that never commits (nor stores offsets) on its own and starts at the
    earliest offset without a committed one, as kafka-python's does. librdkafka wants a
    group id even for a consumer that is only assigned partitions: such a one gets a
    name of its own and never joins or commits.

    >>> consumer_config(KafkaSettings(), None)["group.id"]
    'stream-al.assigned'
    """
    config = common_config(kafka) | {
        "group.id": group if group is not None else f"{kafka.client_id}.assigned",
        "enable.auto.commit": False, "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": session_timeout_ms or SESSION_TIMEOUT_MS,
        "fetch.wait.max.ms": kafka.fetch_max_wait_ms,
    }
    if reconnect_backoff_max_ms is not None:
        config["reconnect.backoff.max.ms"] = reconnect_backoff_max_ms
    return config


def _reveal(secret: Any) -> str | None:
    return None if secret is None else str(secret.get_secret_value())


def _text(path: Path | None) -> str | None:
    return None if path is None else str(path)


# -- errors ----------------------------------------------------------------------------

_E = ck.KafkaError
#: The broker (or librdkafka) refuses these for good: sending the same message or request
#: again cannot help. These are the errors kafka-python marks not retriable; anything else
#: (a lost connection, a moving leader, a timeout, an unknown topic) is an outage.
REFUSALS = frozenset({
    _E.MSG_SIZE_TOO_LARGE, _E.RECORD_LIST_TOO_LARGE, _E.INVALID_MSG_SIZE, _E.INVALID_RECORD,
    _E.INVALID_TIMESTAMP, _E.INVALID_REQUIRED_ACKS, _E.INVALID_CONFIG, _E.INVALID_REQUEST,
    _E.INVALID_PARTITIONS, _E.INVALID_REPLICATION_FACTOR, _E.POLICY_VIOLATION,
    _E.TOPIC_EXCEPTION, _E.TOPIC_ALREADY_EXISTS, _E.TOPIC_AUTHORIZATION_FAILED,
    _E.GROUP_AUTHORIZATION_FAILED, _E.CLUSTER_AUTHORIZATION_FAILED,
    _E.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, _E.SASL_AUTHENTICATION_FAILED,
    _E._AUTHENTICATION, _E._INVALID_ARG, _E._INVALID_TYPE,
})


#: About a consumer group: what an assigned-only consumer, which has none in use, ignores.
GROUP_ERRORS = frozenset({
    _E.GROUP_AUTHORIZATION_FAILED, _E.COORDINATOR_NOT_AVAILABLE, _E.NOT_COORDINATOR,
    _E.COORDINATOR_LOAD_IN_PROGRESS, _E.INVALID_GROUP_ID,
})


def client_error(error: Any) -> ClientError:
    """librdkafka's error (a ``KafkaError``, or a ``KafkaException`` carrying one) as the
    gateway's. A fatal error is an outage too: the daemon drops the client and makes a
    new one, which is what a fatal error asks for."""
    if isinstance(error, ck.KafkaException) and error.args and isinstance(error.args[0], _E):
        error = error.args[0]
    if not isinstance(error, _E):
        return ClientError(str(error) or type(error).__name__, retriable=True,
                           native=repr(error))
    refused = error.code() in REFUSALS and not error.retriable()
    return ClientError(error.str(), retriable=not refused, fatal=error.fatal(),
                       native=f"KafkaError({error.name()}: {error.str()})")


@contextmanager
def _speaking() -> Iterator[None]:
    try:
        yield
    except ck.KafkaException as error:
        raise client_error(error) from error


class _Errors:
    """librdkafka's client-wide errors (``error_cb``): logged; a fatal one is raised at
    the client's next call, as the client can do nothing more."""

    def __init__(self) -> None:
        self.fatal: ClientError | None = None

    def __call__(self, error: Any) -> None:
        mapped = client_error(error)
        if mapped.fatal:
            self.fatal = mapped
            LIBRDKAFKA_LOG.error("fatal client error: %s", mapped)
        else:
            LIBRDKAFKA_LOG.debug("client error: %s", mapped)

    def check(self) -> None:
        if self.fatal is not None:
            raise self.fatal


def _callbacks(errors: _Errors) -> dict[str, Any]:
    options: dict[str, Any] = {"logger": LIBRDKAFKA_LOG, "error_cb": errors}
    if LIBRDKAFKA_LOG.isEnabledFor(logging.DEBUG):
        # --log-level debug: librdkafka narrates connections, metadata and the group only
        # when asked (kafka-python does at DEBUG); per-message contexts would drown them.
        options |= {"debug": LIBRDKAFKA_DEBUG, "log_level": 7}
    return options


def _bootstrap(client: Any, timeout_ms: int) -> None:
    """Ask for metadata once, so a broker that does not answer is said now."""
    try:
        client.list_topics(timeout=timeout_ms / 1000)
    except ck.KafkaException as error:
        raise ClientError(f"no broker answered within {timeout_ms / 1000:g} s "
                          f"({client_error(error)})", retriable=True) from error


def _native(tp: TopicPartition, offset: int | None = None) -> Any:
    if offset is None:
        return ck.TopicPartition(tp.topic, tp.partition)
    return ck.TopicPartition(tp.topic, tp.partition, offset)


def _ours(partitions: Sequence[Any]) -> list[TopicPartition]:
    return [TopicPartition(tp.topic, tp.partition) for tp in partitions]


# -- the producer ----------------------------------------------------------------------


class ConfluentProducer:
    def __init__(self, kafka: KafkaSettings, *, bootstrap_timeout_ms: int,
                 reconnect_backoff_max_ms: int | None = None) -> None:
        self._errors = _Errors()
        self.native = ck.Producer(producer_config(kafka, reconnect_backoff_max_ms)
                                  | _callbacks(self._errors))
        _bootstrap(self.native, bootstrap_timeout_ms)

    def send(self, topic: str, key: bytes | None, value: bytes,
             headers: Sequence[tuple[str, bytes]], on_delivery: Delivery) -> None:
        self._errors.check()

        def report(error: Any, _message: Any) -> None:
            on_delivery(None if error is None else client_error(error))

        options: dict[str, Any] = {"key": key, "on_delivery": report}
        if headers:
            options["headers"] = list(headers)
        self._produce(topic, value, options)
        self.native.poll(0)  # serve the delivery reports that have come in

    def _produce(self, topic: str, value: bytes, options: dict[str, Any]) -> None:
        """As kafka-python's ``send``: a full buffer waits up to ``MAX_BLOCK_MS`` for
        room, then is an outage."""
        deadline: float | None = None
        while True:
            try:
                with _speaking():
                    self.native.produce(topic, value, **options)
                return
            except BufferError as full:
                now = time.monotonic()
                if deadline is None:
                    deadline = now + MAX_BLOCK_MS / 1000
                elif now >= deadline:
                    raise ClientError(f"the producer's buffer stayed full for "
                                      f"{MAX_BLOCK_MS / 1000:g} s (the broker is not taking "
                                      "messages)", retriable=True) from full
                self.native.poll(0.05)

    def send_and_wait(self, topic: str, key: bytes | None, value: bytes,
                      timeout_s: float) -> None:
        outcome: list[ClientError | None] = []
        self.send(topic, key, value, (), outcome.append)
        deadline = time.monotonic() + timeout_s
        while not outcome and (left := deadline - time.monotonic()) > 0:
            self.native.poll(min(left, 0.1))
        if not outcome:
            raise ClientError(f"not acknowledged within {timeout_s:g} s", retriable=True)
        if outcome[0] is not None:
            raise outcome[0]

    def flush(self, timeout_s: float) -> bool:
        self._errors.check()
        return int(self.native.flush(timeout_s)) == 0

    def close(self, timeout_s: float) -> None:
        """Flush for up to ``timeout_s``, then drop what is left (its delivery reports say
        so, and ``KafkaSink`` has already counted it as undelivered)."""
        if self.native.flush(timeout_s):
            self.native.purge()
            # Messages queued for a broker's thread are purged by that thread, later:
            # until their reports are served the native producer holds each one's
            # callback, and through it the sink and this producer, past any collection.
            left = self.native.flush(PURGE_SETTLE_S)
            if left:
                LIBRDKAFKA_LOG.warning("%d purged messages still unreported after %g s: their "
                            "producer is not released", left, PURGE_SETTLE_S)


# -- the consumer ----------------------------------------------------------------------


class ConfluentConsumer:
    def __init__(self, kafka: KafkaSettings, group: str | None, *, bootstrap_timeout_ms: int,
                 session_timeout_ms: int | None = None,
                 reconnect_backoff_max_ms: int | None = None) -> None:
        self._errors = _Errors()
        self.group = group
        self.native = ck.Consumer(consumer_config(kafka, group, session_timeout_ms,
                                                  reconnect_backoff_max_ms)
                                  | _callbacks(self._errors))
        #: Requests that name no timeout wait this long (kafka-python's request timeout).
        self._timeout_s = kafka.request_timeout_ms / 1000
        #: The next offset to read, per partition, as far as this consumer knows it.
        self._positions: dict[TopicPartition, int] = {}
        self._listener: RebalanceListener | None = None
        #: Positions change inside poll and the rebalance callbacks, and may be read
        #: from another thread.
        self._lock = threading.Lock()
        try:
            _bootstrap(self.native, bootstrap_timeout_ms)
        except ClientError:
            self.native.close()
            raise

    def subscribe(self, topics: Sequence[str],
                  listener: RebalanceListener | None = None) -> None:
        self._listener = listener
        with _speaking():
            self.native.subscribe(list(topics), on_assign=self._on_assign,
                                  on_revoke=self._on_revoke, on_lost=self._on_lost)

    # librdkafka calls these from inside ``poll``/``consume``/``close`` on our thread.

    def _on_assign(self, native: Any, partitions: list[Any]) -> None:
        ours = _ours(partitions)
        starts = self._listener.on_assigned(ours) if self._listener is not None else {}
        for partition, tp in zip(partitions, ours, strict=True):
            start = starts.get(tp)
            partition.offset = ck.OFFSET_STORED if start is None else start
            with self._lock:
                if start is None:
                    self._positions.pop(tp, None)
                else:
                    self._positions[tp] = start
        native.assign(partitions)

    def _on_revoke(self, native: Any, partitions: list[Any]) -> None:
        ours = _ours(partitions)
        try:
            offsets = self._listener.on_revoked(ours) if self._listener is not None else {}
            if offsets:
                try:
                    self.commit(offsets, asynchronous=False)
                except ClientError as error:
                    assert self._listener is not None
                    self._listener.on_commit_failed(offsets, error)
        finally:
            self._forget(ours)

    def _on_lost(self, native: Any, partitions: list[Any]) -> None:
        ours = _ours(partitions)
        try:
            if self._listener is not None:
                self._listener.on_lost(ours)
        finally:
            self._forget(ours)

    def _forget(self, partitions: list[TopicPartition]) -> None:
        with self._lock:
            for tp in partitions:
                self._positions.pop(tp, None)

    def assign(self, starts: Mapping[TopicPartition, int | None]) -> None:
        with self._lock:
            for tp, start in starts.items():
                if start is None:
                    self._positions.pop(tp, None)
                else:
                    self._positions[tp] = start
        with _speaking():
            self.native.assign([_native(tp, ck.OFFSET_BEGINNING if start is None else start)
                                for tp, start in starts.items()])

    def assignment(self) -> list[TopicPartition]:
        try:
            return _ours(self.native.assignment())
        except (RuntimeError, ck.KafkaException):
            return []  # closed meanwhile (asked from the HTTP thread)

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        with _speaking():
            metadata = self.native.list_topics(topic, timeout=self._timeout_s)
        found = metadata.topics.get(topic)
        if found is None or not found.partitions:
            return None
        if found.error is not None and found.error.code() in REFUSALS:
            raise client_error(found.error)
        return set(found.partitions)

    def poll(self, timeout_ms: int, max_records: int | None = None) -> list[Message]:
        """What kafka-python's poll returns: as soon as anything has come (up to
        ``max_records`` of what is already fetched), or nothing after ``timeout_ms``."""
        self._errors.check()
        with _speaking():
            first = self.native.poll(timeout_ms / 1000)
            if first is None:
                return []
            limit = (max_records or MAX_POLL_RECORDS) - 1
            records = [first] + (self.native.consume(limit, 0) if limit > 0 else [])
        messages = []
        with self._lock:
            for record in records:
                error = record.error()
                if error is not None:
                    self._consume_error(error)
                    continue
                kind, stamp = record.timestamp()
                topic, partition, offset = record.topic(), record.partition(), record.offset()
                messages.append(Message(topic, partition, offset, record.key(), record.value(),
                                        stamp if kind != ck.TIMESTAMP_NOT_AVAILABLE else 0,
                                        tuple(record.headers() or ())))
                self._positions[TopicPartition(topic, partition)] = offset + 1
        return messages

    def _consume_error(self, error: Any) -> None:
        """A partition's event: the end of it is no news; a refusal (not authorized) or a
        fatal error is raised, as kafka-python raises them; others librdkafka retries.

        An assigned-only consumer's group is a name librdkafka insists on, never used:
        it still looks for the group's coordinator, and a broker whose ACLs grant that
        name nothing (the README's do not) refuses. Reading by assignment needs no
        coordinator, so that refusal is no reason to stop reading."""
        if error.code() == _E._PARTITION_EOF:
            return
        if self.group is None and error.code() in GROUP_ERRORS:
            LIBRDKAFKA_LOG.debug("assigned-only consumer, group unused: %s", error.str())
            return
        mapped = client_error(error)
        if mapped.fatal or not mapped.retriable:
            raise mapped
        LIBRDKAFKA_LOG.debug("consumer: %s", mapped)

    def position(self, partition: TopicPartition, timeout_ms: int | None = None) -> int:
        with self._lock:
            known = self._positions.get(partition)
        if known is not None:
            return known
        timeout = self._timeout_s if timeout_ms is None else timeout_ms / 1000
        with _speaking():
            [where] = self.native.position([_native(partition)])
            if where.offset >= 0:
                return int(where.offset)
            if self.group is not None:
                [committed] = self.native.committed([_native(partition)], timeout=timeout)
                if committed.offset >= 0:
                    return int(committed.offset)
        return self._watermarks(partition, timeout)[0]  # nothing read: the earliest

    def end_offsets(self, partitions: Sequence[TopicPartition],
                    timeout_ms: int | None = None) -> dict[TopicPartition, int]:
        timeout = self._timeout_s if timeout_ms is None else timeout_ms / 1000
        return {tp: self._watermarks(tp, timeout)[1] for tp in partitions}

    def beginning_offsets(self, partitions: Sequence[TopicPartition],
                          timeout_ms: int | None = None) -> dict[TopicPartition, int]:
        timeout = self._timeout_s if timeout_ms is None else timeout_ms / 1000
        return {tp: self._watermarks(tp, timeout)[0] for tp in partitions}

    def highwater(self, partition: TopicPartition) -> int | None:
        # cached: what librdkafka keeps from its fetch responses, no request. An uncached
        # query waits behind the long-polling fetch on the same connection (up to
        # fetch.wait.max.ms): asked per partition for the lag gauge, it idled the daemon.
        with _speaking():
            marks = self.native.get_watermark_offsets(_native(partition), cached=True)
        if marks is None or marks[1] < 0:
            return None
        return int(marks[1])

    def _watermarks(self, partition: TopicPartition, timeout_s: float) -> tuple[int, int]:
        with _speaking():
            marks = self.native.get_watermark_offsets(_native(partition), timeout=timeout_s,
                                                      cached=False)
        if marks is None:
            raise ClientError(f"the broker did not say the offsets of {partition.topic}"
                              f"[{partition.partition}] within {timeout_s:g} s",
                              retriable=True)
        return int(marks[0]), int(marks[1])

    def commit(self, offsets: Mapping[TopicPartition, int], *, asynchronous: bool,
               timeout_ms: int | None = None) -> None:
        native = [_native(tp, offset) for tp, offset in offsets.items()]
        with _speaking():
            if asynchronous:
                self.native.commit(offsets=native, asynchronous=True)
                return
            done = self.native.commit(offsets=native, asynchronous=False)
        for partition in done or ():
            if partition.error is not None:
                raise client_error(partition.error)

    def close(self, timeout_ms: int | None = None) -> None:
        """Leave the group; librdkafka bounds this itself (it commits nothing here)."""
        try:
            with _speaking():
                self.native.close()
        except RuntimeError:
            pass  # closed already


# -- the admin client ------------------------------------------------------------------


class ConfluentAdmin:
    def __init__(self, kafka: KafkaSettings, *, bootstrap_timeout_ms: int | None) -> None:
        self._errors = _Errors()
        self.native = AdminClient(common_config(kafka) | _callbacks(self._errors))
        self._timeout_s = kafka.request_timeout_ms / 1000
        _bootstrap(self.native, bootstrap_timeout_ms or kafka.request_timeout_ms)

    def topic_names(self) -> set[str]:
        with _speaking():
            return set(self.native.list_topics(timeout=self._timeout_s).topics)

    def create_topic(self, name: str, partitions: int, replication: int,
                     config: Mapping[str, str]) -> bool:
        topic = NewTopic(name, num_partitions=partitions, replication_factor=replication,
                         config=dict(config))
        futures = self.native.create_topics([topic], request_timeout=self._timeout_s)
        try:
            self._wait(futures[name])
        except ClientError as error:
            if error.native and "TOPIC_ALREADY_EXISTS" in error.native:
                return False
            raise
        return True

    def topic_config(self, name: str, key: str) -> str | None:
        futures = self.native.describe_configs([ConfigResource(ResourceType.TOPIC, name)],
                                               request_timeout=self._timeout_s)
        [future] = futures.values()
        entry = self._wait(future).get(key)
        return None if entry is None or entry.value is None else str(entry.value)

    def set_topic_config(self, name: str, key: str, value: str) -> None:
        change = ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)
        resource = ConfigResource(ResourceType.TOPIC, name, incremental_configs=[change])
        for future in self.native.incremental_alter_configs(
                [resource], request_timeout=self._timeout_s).values():
            self._wait(future)

    def delete_topics(self, names: Sequence[str]) -> None:
        for future in self.native.delete_topics(list(names),
                                                operation_timeout=self._timeout_s).values():
            self._wait(future)

    def close(self) -> None:
        """An AdminClient holds nothing to release but itself."""

    def _wait(self, future: Future[Any]) -> Any:
        try:
            with _speaking():
                return future.result(timeout=self._timeout_s * 2)
        except FutureTimeout as error:
            raise ClientError(f"the broker did not answer within {self._timeout_s * 2:g} s",
                              retriable=True) from error
