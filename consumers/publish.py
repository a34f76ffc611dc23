"""Validate file records and publish them: to Kafka, or as JSON lines for a dry run.

Every record goes through the core's codec exactly as the daemon will decode it; one that
fails is a :class:`Problem`, never sent. Deliveries are counted from the producer's
callbacks, so a record the broker never acknowledged is reported, not assumed sent.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol, TextIO

from consumers.file_records import Item, Parsed, Problem
from stream_al.codec import decode_record, encode
from stream_al.errors import BrokerUnavailable, DecodeError

KEY_FIELDS = ("record_id", "tester_id", "lot_id", "product")


def validated(parsed: Parsed) -> bytes | Problem:
    """The record as the daemon will read it, encoded; or the reason it is invalid."""
    raw = json.dumps(parsed.record, separators=(",", ":"), ensure_ascii=False).encode()
    try:
        return encode(decode_record(raw))
    except DecodeError as error:
        return Problem(parsed.file, parsed.position, "invalid record", error.reason)


def message_key(record: dict[str, Any], key_field: str) -> bytes | None:
    value = record.get(key_field)
    return None if value is None else str(value).encode()


class Sink(Protocol):
    """Where validated records go; ``flush`` waits until each one is settled."""

    def send(self, key: bytes | None, value: bytes, file: str, position: str) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...

    @property
    def delivered(self) -> int: ...

    @property
    def failures(self) -> list[Problem]: ...


@dataclass
class DryRunSink:
    """Writes each record as one JSON line (e.g. to stdout) instead of to Kafka."""

    out: TextIO
    delivered: int = 0
    failures: list[Problem] = field(default_factory=list)

    def send(self, key: bytes | None, value: bytes, file: str, position: str) -> None:
        self.out.write(value.decode() + "\n")
        self.delivered += 1

    def flush(self) -> None:
        self.out.flush()

    def close(self) -> None:
        self.flush()


class KafkaSink:
    """An idempotent kafka-python producer (acks=all) that counts every outcome."""

    def __init__(self, topic: str, bootstrap_servers: list[str], flush_timeout_s: float) -> None:
        from kafka import KafkaProducer
        from kafka.errors import KafkaError

        self.topic, self._flush_timeout_s = topic, flush_timeout_s
        self._lock = threading.Lock()
        self._delivered, self._in_flight = 0, 0
        self._failures: list[Problem] = []
        try:
            self._producer = KafkaProducer(
                bootstrap_servers=bootstrap_servers,
                acks="all",
                enable_idempotence=True,
                linger_ms=20,
                max_block_ms=15_000,
                bootstrap_timeout_ms=10_000,
            )
        except KafkaError as exc:  # kafka-python 3 raises KafkaTimeoutError: cannot bootstrap
            servers = ",".join(bootstrap_servers)
            raise BrokerUnavailable(f"no Kafka broker answers at {servers}") from exc

    @property
    def delivered(self) -> int:
        return self._delivered

    @property
    def failures(self) -> list[Problem]:
        return self._failures

    def send(self, key: bytes | None, value: bytes, file: str, position: str) -> None:
        from kafka.errors import KafkaError

        try:
            future = self._producer.send(self.topic, key=key, value=value)
        except KafkaError as exc:  # metadata or buffer timeout: the broker is not there
            reason = f"the broker did not take the record ({exc!r})"
            raise BrokerUnavailable(f"{file}: {position}: {reason}") from exc
        with self._lock:
            self._in_flight += 1
        future.add_callback(self._on_delivered)
        future.add_errback(self._on_failed, file, position)

    def _on_delivered(self, _metadata: object) -> None:
        with self._lock:
            self._delivered += 1
            self._in_flight -= 1

    def _on_failed(self, exc: BaseException, file: str, position: str) -> None:
        problem = Problem(file, position, "delivery failed", f"not delivered: {exc!r}")
        with self._lock:
            self._failures.append(problem)
            self._in_flight -= 1

    def flush(self) -> None:
        from kafka.errors import KafkaTimeoutError

        try:
            self._producer.flush(timeout=self._flush_timeout_s)
        except KafkaTimeoutError:
            with self._lock:
                lost, self._in_flight = self._in_flight, 0
            reason = f"{lost} record(s) not acknowledged within {self._flush_timeout_s:g} s"
            self._failures.append(Problem(self.topic, "flush", "delivery failed", reason))

    def close(self) -> None:
        self.flush()
        self._producer.close(timeout=5)


class Pacer:
    """Holds the send rate to ``rate`` records/s (0: as fast as possible)."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval = 1.0 / rate if rate > 0 else 0.0
        self._clock, self._next = clock, 0.0

    def wait(self) -> None:
        if not self._interval:
            return
        now = self._clock()
        self._next = max(self._next, now)
        time.sleep(self._next - now)
        self._next += self._interval


@dataclass
class FileOutcome:
    """What became of one file's items."""

    records_read: int = 0
    records_queued: int = 0
    problems: list[Problem] = field(default_factory=list)
    stopped: bool = False


def publish_items(
    items: Iterable[Item],
    sink: Sink,
    key_field: str,
    pacer: Pacer,
    on_item: Callable[[Item], None],
    should_stop: Callable[[], bool] = lambda: False,
) -> FileOutcome:
    """Validate and send ``items``; every problem goes to ``on_item`` and the outcome.

    Records are only queued here: the sink's ``delivered`` after ``flush()`` says how many
    the broker acknowledged.
    """
    outcome = FileOutcome()
    for item in items:
        if should_stop():
            outcome.stopped = True
            break
        if isinstance(item, Parsed):
            outcome.records_read += 1
            item = _send(item, sink, key_field, pacer, outcome)
        else:
            outcome.problems.append(item)
        on_item(item)
    return outcome


def _send(parsed: Parsed, sink: Sink, key_field: str, pacer: Pacer, outcome: FileOutcome) -> Item:
    payload = validated(parsed)
    if isinstance(payload, Problem):
        outcome.problems.append(payload)
        return payload
    pacer.wait()
    sink.send(message_key(parsed.record, key_field), payload, parsed.file, parsed.position)
    outcome.records_queued += 1
    return parsed
