"""Client factories: the one producer configuration and the consumer defaults, for the
client ``kafka.client`` names (confluent-kafka, the default, or kafka-python).

Both clients get the same settings in their own words (``kafka_python.py`` and
``confluent.py`` say how); every module outside ``consumers/kafka`` gets its clients
here, as the protocols of ``consumers.kafka.gateway``.
"""

from __future__ import annotations

from consumers.kafka.gateway import Admin, Consumer, Producer
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
#: How long a sent message may wait for its acknowledgement, retries included, before
#: it is reported undelivered (kafka-python's delivery_timeout_ms default).
DELIVERY_TIMEOUT_MS = 120_000
#: kafka-python's group session default; the daemon asks for its own.
SESSION_TIMEOUT_MS = 10_000


def make_producer(kafka: KafkaSettings, *, bootstrap_timeout_ms: int = BOOTSTRAP_TIMEOUT_MS,
                  reconnect_backoff_max_ms: int | None = None) -> Producer:
    """Every producer of the project: acks=all with idempotence, so a retried send is
    not duplicated; security settings from ``kafka``. :class:`ClientError` (retriable)
    when no broker answers within ``bootstrap_timeout_ms``."""
    if kafka.client == "confluent":
        from consumers.kafka import confluent
        return confluent.ConfluentProducer(kafka, bootstrap_timeout_ms=bootstrap_timeout_ms,
                                           reconnect_backoff_max_ms=reconnect_backoff_max_ms)
    from consumers.kafka import kafka_python
    return kafka_python.KafkaPythonProducer(
        kafka, bootstrap_timeout_ms=bootstrap_timeout_ms,
        reconnect_backoff_max_ms=reconnect_backoff_max_ms)


def make_consumer(kafka: KafkaSettings, group: str | None, *,
                  bootstrap_timeout_ms: int = BOOTSTRAP_TIMEOUT_MS,
                  session_timeout_ms: int | None = None,
                  reconnect_backoff_max_ms: int | None = None) -> Consumer:
    """A consumer that never commits on its own: offsets are committed only after what
    they cover is safe (flushed, checkpointed). ``group`` None: partitions are assigned,
    never subscribed. :class:`ClientError` (retriable) when no broker answers."""
    if kafka.client == "confluent":
        from consumers.kafka import confluent
        return confluent.ConfluentConsumer(kafka, group,
                                           bootstrap_timeout_ms=bootstrap_timeout_ms,
                                           session_timeout_ms=session_timeout_ms,
                                           reconnect_backoff_max_ms=reconnect_backoff_max_ms)
    from consumers.kafka import kafka_python
    return kafka_python.KafkaPythonConsumer(kafka, group,
                                            bootstrap_timeout_ms=bootstrap_timeout_ms,
                                            session_timeout_ms=session_timeout_ms,
                                            reconnect_backoff_max_ms=reconnect_backoff_max_ms)


def make_admin(kafka: KafkaSettings, *,
               bootstrap_timeout_ms: int | None = BOOTSTRAP_TIMEOUT_MS) -> Admin:
    """An admin client; :class:`ClientError` (retriable) when no broker answers."""
    if kafka.client == "confluent":
        from consumers.kafka import confluent
        return confluent.ConfluentAdmin(kafka, bootstrap_timeout_ms=bootstrap_timeout_ms)
    from consumers.kafka import kafka_python
    return kafka_python.KafkaPythonAdmin(kafka, bootstrap_timeout_ms=bootstrap_timeout_ms)
