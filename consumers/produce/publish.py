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
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from consumers.produce.items import Item, Parsed, Problem
from stream_al.codec import decode_record, encode
from stream_al.errors import BrokerUnavailable, DecodeError

if TYPE_CHECKING:
    from consumers.settings import KafkaSettings


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
    """An idempotent kafka-python producer (acks=all) that accounts for every record.

    Each record is pending until the broker acknowledges it or refuses it. ``flush``
    waits; records still pending at its timeout are reported as not acknowledged (file
    and positions) and no later callback counts them again.
    """

    def __init__(self, topic: str, producer: Any, flush_timeout_s: float) -> None:
        self.topic, self._producer, self._flush_timeout_s = topic, producer, flush_timeout_s
        self._lock = threading.Lock()
        self._pending: dict[int, tuple[str, str]] = {}
        self._sequence, self._delivered = 0, 0
        self._failures: list[Problem] = []

    @classmethod
    def connect(cls, topic: str, kafka: KafkaSettings, flush_timeout_s: float) -> KafkaSink:
        """A sink on a new producer; :class:`BrokerUnavailable` if no broker answers.

        Security settings (SASL, TLS) pass through from the configuration.
        """
        from kafka import KafkaProducer
        from kafka.errors import KafkaError

        try:
            producer = KafkaProducer(
                **kafka.client_options(),
                acks="all",
                enable_idempotence=True,
                linger_ms=20,
                max_block_ms=15_000,
                bootstrap_timeout_ms=10_000,
            )
        except KafkaError as exc:  # kafka-python 3 raises KafkaTimeoutError: cannot bootstrap
            servers = ",".join(kafka.bootstrap_servers)
            raise BrokerUnavailable(f"no Kafka broker answers at {servers}") from exc
        return cls(topic, producer, flush_timeout_s)

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
            sequence, self._sequence = self._sequence, self._sequence + 1
            self._pending[sequence] = (file, position)
        future.add_callback(self._on_delivered, sequence)
        future.add_errback(self._on_failed, sequence)

    def _on_delivered(self, sequence: int, _metadata: object) -> None:
        with self._lock:
            if self._pending.pop(sequence, None) is not None:
                self._delivered += 1

    def _on_failed(self, sequence: int, exc: BaseException) -> None:
        with self._lock:
            where = self._pending.pop(sequence, None)
            if where is not None:
                reason = f"not delivered: {exc!r}"
                self._failures.append(Problem(*where, "delivery failed", reason))

    def flush(self) -> None:
        from kafka.errors import KafkaTimeoutError

        try:
            self._producer.flush(timeout=self._flush_timeout_s)
        except KafkaTimeoutError:
            with self._lock:
                lost, self._pending = list(self._pending.values()), {}
            self._failures += _unacknowledged(lost, self._flush_timeout_s)

    def close(self) -> None:
        from kafka.errors import KafkaError

        self.flush()
        try:
            self._producer.close(timeout=5)
        except KafkaError:
            pass  # whatever was still pending has just been reported by flush()


def _unacknowledged(lost: list[tuple[str, str]], timeout_s: float) -> list[Problem]:
    """One problem per file: how many records, from which position to which."""
    by_file: dict[str, list[str]] = {}
    for file, position in lost:
        by_file.setdefault(file, []).append(position)
    reason = "record(s) not acknowledged within {:g} s (they may still arrive: re-send the file)"
    return [
        Problem(
            file,
            f"{ps[0]} … {ps[-1]}" if len(ps) > 1 else ps[0],
            "delivery failed",
            f"{len(ps)} " + reason.format(timeout_s),
            records=len(ps),
        )
        for file, ps in by_file.items()
    ]


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
    iterator = iter(items)
    # The stop request is checked before the next item is read, so nothing read is dropped.
    while not (stop := should_stop()) and (item := next(iterator, None)) is not None:
        if isinstance(item, Parsed):
            outcome.records_read += 1
            item = _send(item, sink, key_field, pacer, outcome)
        else:
            outcome.problems.append(item)
        on_item(item)
    outcome.stopped = stop
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
