"""The timed loops of ``stream-al bench throughput``: the producers and bare consumers of
both clients, the paced producer and prediction watcher of the latency run, and the
in-memory pipeline. Each notes the CPU time of this process over its loop (with
confluent-kafka that includes librdkafka's own threads, which do its I/O)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from kafka import KafkaConsumer
from prometheus_client import CollectorRegistry

from consumers.bench.throughput.options import (
    POLL_MAX_RECORDS,
    BenchError,
    BenchRecord,
    Row,
    Tick,
    check_stall,
    counters,
    rates,
    stamped,
)
from consumers.kafka.kafka_python import native_consumer, native_partitions_of, native_producer
from consumers.kafka.topics import TopicPlan, create_topics
from consumers.settings import KafkaSettings
from stream_al.inmemory import InMemoryLoop
from stream_al.learner import Learner, LearnerConfig
from stream_al.metrics import Metrics
from stream_al.oracle import SimulatedOracle
from stream_al.pipeline import Pipeline
from stream_al.topics import TopicNames

_TOPIC_WAIT_S = 30.0
#: A prediction seen by the watcher: (key = record_id, arrival ns, broker timestamp ms).
Arrival = tuple[bytes, int, int]


def produce(kafka: KafkaSettings, topic: str, records: Sequence[BenchRecord],
            tick: Tick) -> Row:
    """The project's producer (acks=all, idempotent) writing every record, then flushing."""
    producer = native_producer(kafka)
    producer.partitions_for(topic)  # a floor producer is long-lived: metadata is warm
    try:
        started, cpu = time.perf_counter(), time.process_time()
        for done, record in enumerate(records, 1):
            producer.send(topic, key=record.key, value=record.value)
            if done % 1000 == 0:
                tick(done)
        producer.flush()
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        producer.close(timeout=10)
    tick(len(records))
    return _produced(records, seconds, cpu)


def confluent_produce(kafka: KafkaSettings, topic: str, records: Sequence[BenchRecord],
                      tick: Tick) -> Row:
    """confluent-kafka's producer with the same guarantees (acks=all, idempotent)."""
    from confluent_kafka import Producer

    producer = Producer({**confluent_options(kafka), "acks": "all", "enable.idempotence": True})
    producer.list_topics(topic, timeout=10)  # warm metadata, as for kafka-python's
    started, cpu = time.perf_counter(), time.process_time()
    for done, record in enumerate(records, 1):
        try:
            producer.produce(topic, record.value, record.key)
        except BufferError:  # the local queue is full: let deliveries drain it
            producer.poll(1.0)
            producer.produce(topic, record.value, record.key)
        if done % 1000 == 0:
            producer.poll(0)
            tick(done)
    if producer.flush(30):
        raise BenchError(f"confluent-kafka producer: records to {topic} still undelivered "
                         "after 30 s")
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    tick(len(records))
    return _produced(records, seconds, cpu)


def _produced(records: Sequence[BenchRecord], seconds: float, cpu: float) -> Row:
    megabytes = sum(len(r.value) for r in records) / 1e6
    return {"records": len(records), "seconds": seconds,
            "records_per_s": len(records) / seconds, "records_per_s_wall": None,
            "mb_per_s": megabytes / seconds, "cpu_us_per_record": 1e6 * cpu / len(records)}


def consume(kafka: KafkaSettings, topic: str, count: int, decode: bool, group: str,
            tick: Tick) -> Row:
    """A bare consumer in a fresh group from the beginning; ``decode``: json.loads each."""
    consumer = native_consumer(kafka, group)
    consumer.subscribe([topic])

    def poll() -> list[bytes]:
        batch = consumer.poll(timeout_ms=100, max_records=POLL_MAX_RECORDS)
        return [record.value for records in batch.values() for record in records]
    try:
        return _drain(poll, topic, count, decode, tick)
    finally:
        consumer.close(autocommit=False)


def confluent_consume(kafka: KafkaSettings, topic: str, count: int, decode: bool, group: str,
                      tick: Tick) -> Row:
    """confluent-kafka's consumer in a fresh group from the beginning, batches as large as
    kafka-python's polls; ``decode``: json.loads each."""
    from confluent_kafka import Consumer, KafkaException

    consumer = Consumer({**confluent_options(kafka), "group.id": group,
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])

    def poll() -> list[bytes]:
        batch = consumer.consume(num_messages=POLL_MAX_RECORDS, timeout=0.1)
        for message in batch:
            if message.error():
                raise KafkaException(message.error())
        return [message.value() for message in batch]
    try:
        return _drain(poll, topic, count, decode, tick)
    finally:
        consumer.close()


def _drain(poll: Callable[[], list[bytes]], topic: str, count: int, decode: bool,
           tick: Tick) -> Row:
    """Poll until ``count`` values have come: the rates from the first value to the last,
    and the CPU per value from the first batch on (the group join is not the client's
    reading cost)."""
    started, first, done = time.time(), 0.0, 0
    progress_at, cpu_first = started, 0.0
    while done < count:
        values = poll()
        now = time.time()
        if values and not first:
            cpu_first = time.process_time()
        if decode:
            for value in values:
                json.loads(value)
        done += len(values)
        if values:
            first, progress_at = first or now, now
        check_stall(progress_at, f"consumer of {topic} at {done}/{count} records")
        tick(done)
    last, cpu = time.time(), time.process_time() - cpu_first
    return {"decoded": decode, **rates(done, started, first, last),
            "cpu_us_per_record": 1e6 * cpu / done}


def confluent_options(kafka: KafkaSettings) -> dict[str, Any]:
    """librdkafka's names for the bench's connection (plaintext: the bench makes its own
    settings; mapping SASL/TLS is the client gateway's work, issue 13 item 2)."""
    return {"bootstrap.servers": ",".join(kafka.bootstrap_servers),
            "client.id": kafka.client_id}


def paced_produce(kafka: KafkaSettings, topic: str, records: Sequence[BenchRecord],
                  rate: float, tick: Tick) -> tuple[dict[bytes, int], float]:
    """Send at ``rate`` records/s, each stamped with its send time (ns since the epoch)."""
    producer = native_producer(kafka)
    producer.partitions_for(topic)
    sent: dict[bytes, int] = {}
    try:
        start = time.monotonic()
        for i, record in enumerate(records):
            time.sleep(max(0.0, start + i / rate - time.monotonic()))
            now = time.time_ns()
            producer.send(topic, key=record.key, value=stamped(record.value, now))
            sent[record.record_id.encode()] = now
            if i % 50 == 0:
                tick(i)
        producer.flush()
        seconds = time.monotonic() - start
    finally:
        producer.close(timeout=10)
    return sent, seconds


@contextmanager
def watching(kafka: KafkaSettings, topic: str) -> Iterator[list[Arrival]]:
    """A thread noting when each message of ``topic`` arrives, from now until exit.

    Its broker waits at most 10 ms for data (kafka-python's default is 500 ms, which on a
    multi-partition topic delays a trickle of messages by tens of milliseconds): the
    watcher must not add a delay of its own to the one it measures."""
    consumer = assigned_from_start(kafka, topic, fetch_max_wait_ms=10)
    seen: list[Arrival] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            for records in consumer.poll(timeout_ms=50).values():
                now = time.time_ns()
                seen.extend((r.key, now, r.timestamp) for r in records)

    thread = threading.Thread(target=read, name="bench-watch", daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        stop.set()
        thread.join(timeout=10)
        consumer.close()


def topic_timestamps(kafka: KafkaSettings, topic: str, count: int) -> tuple[list[int], int]:
    """Every message's timestamp (ms) and how many distinct keys the topic holds."""
    consumer = assigned_from_start(kafka, topic)
    stamps: list[int] = []
    keys: set[bytes] = set()
    progress_at = time.time()
    try:
        while len(stamps) < count:
            for records in consumer.poll(timeout_ms=500, max_records=5000).values():
                stamps.extend(r.timestamp for r in records)
                keys.update(r.key for r in records)
                progress_at = time.time()
            check_stall(progress_at, f"reading back {topic} at {len(stamps)}/{count}")
    finally:
        consumer.close()
    return stamps, len(keys)


def message_count(kafka: KafkaSettings, topic: str) -> int:
    consumer = native_consumer(kafka, None)
    try:
        return int(sum(consumer.end_offsets(native_partitions_of(consumer, [topic])).values()))
    finally:
        consumer.close()


def inmemory(records: Sequence[BenchRecord], config: LearnerConfig, answer: bool,
             tick: Tick) -> Row:
    """The daemon's pipeline and loop on the in-memory bus: the learner's cost alone."""
    registry = CollectorRegistry()
    topics = TopicNames(inputs=("bench.parametric",))
    truth = {r.record_id: r.truth for r in records} if answer else {}
    loop = InMemoryLoop(Pipeline(Learner(config), topics, Metrics(registry)),
                        SimulatedOracle(lambda request: truth.get(request.record_id)))
    for record in records:
        loop.publish(topics.inputs[0], record.key, record.value)
    started, cpu, done = time.perf_counter(), time.process_time(), 0
    while done < len(records):
        done += loop.step(datetime.now(UTC), POLL_MAX_RECORDS)
        tick(done)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {"records": done, "seconds": seconds, "records_per_s": done / seconds,
            "records_per_s_wall": None, "us_per_record": 1e6 * seconds / done,
            "cpu_us_per_record": 1e6 * cpu / done, **counters(registry.collect())}


def ensure_topics(kafka: KafkaSettings, plans: Sequence[TopicPlan]) -> None:
    """Create the topics and wait until the broker's metadata lists them, so no client
    (nor the daemon, which backs off a whole second) starts on a topic it cannot see."""
    create_topics(kafka, plans)
    consumer = native_consumer(kafka, None)
    try:
        deadline = time.monotonic() + _TOPIC_WAIT_S
        while not all(consumer.partitions_for_topic(plan.name) for plan in plans):
            if time.monotonic() > deadline:
                raise BenchError(f"topics {[p.name for p in plans]} did not appear in the "
                                 f"broker's metadata within {_TOPIC_WAIT_S:.0f} s")
            time.sleep(0.1)
    finally:
        consumer.close()


def assigned_from_start(kafka: KafkaSettings, topic: str, **extra: Any) -> KafkaConsumer:
    """A group-less consumer on every partition of ``topic`` from the beginning, its
    positions resolved (so nothing produced from now on is read late)."""
    consumer = native_consumer(kafka, None, **extra)
    partitions = native_partitions_of(consumer, [topic])
    consumer.assign(partitions)
    consumer.seek_to_beginning()
    for partition in partitions:
        consumer.position(partition)
    return consumer
