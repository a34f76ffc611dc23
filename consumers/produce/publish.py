"""Validate file records and publish them: to Kafka, or as JSON lines for a dry run.

Every record goes through the core's codec exactly as the daemon will decode it; one that
fails is a :class:`Problem`, never sent. Deliveries are counted from the producer's
callbacks, so a record the broker never acknowledged is reported, not assumed sent.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from consumers.produce.items import Item, Parsed, Problem
from stream_al.bus import Outgoing
from stream_al.codec import decode_record, encode
from stream_al.errors import BrokerUnavailable, DecodeError

if TYPE_CHECKING:
    from consumers.kafka.sink import KafkaSink
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


class KafkaRecordSink:
    """Input records through the project's one Kafka sink, each known by its file and
    position, so a record the broker never acknowledged is reported where it was read.
    Records still pending when ``flush`` gives up are reported once, grouped by file.
    """

    def __init__(self, topic: str, sink: KafkaSink[tuple[str, str]]) -> None:
        self.topic, self._sink = topic, sink
        self._failures: list[Problem] = []

    @classmethod
    def connect(cls, topic: str, kafka: KafkaSettings, flush_timeout_s: float
                ) -> KafkaRecordSink:
        """:class:`BrokerUnavailable` if no broker answers; security settings (SASL, TLS)
        pass through from the configuration."""
        from consumers.kafka.sink import KafkaSink

        return cls(topic, KafkaSink.connect(kafka, flush_timeout_s))

    @property
    def delivered(self) -> int:
        return self._sink.delivered

    @property
    def failures(self) -> list[Problem]:
        self._collect()
        return self._failures

    def send(self, key: bytes | None, value: bytes, file: str, position: str) -> None:
        try:
            self._sink.send(Outgoing(self.topic, key, value), (file, position))
        except BrokerUnavailable as error:
            raise BrokerUnavailable(f"{file}: {position}: {error}") from error

    def flush(self) -> None:
        self._sink.flush()
        self._collect()

    def close(self) -> None:
        self.flush()
        self._sink.close()

    def _collect(self) -> None:
        failures = self._sink.take_failures()
        lost = [f.tag for f in failures if f.timed_out]
        self._failures += [Problem(*f.tag, "delivery failed", f.reason)
                           for f in failures if not f.timed_out]
        if lost:
            self._failures += _unacknowledged(lost, self._sink.flush_timeout_s)


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
