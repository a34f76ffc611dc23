"""``stream-al tail``: the messages of one topic as a person reads them.

The reader joins no consumer group and commits nothing: it assigns itself every
partition, so looking at a topic never moves the daemon's offsets nor triggers a
rebalance of its group. Whatever is on the topic is shown, malformed messages too: they
are the ones worth seeing. Every string from a message is printed through
``safe_text`` (control characters shown, never interpreted; no rich markup parsed).
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from rich.text import Text

from consumers.kafka.clients import make_consumer
from consumers.kafka.gateway import ClientError, Consumer, TopicPartition
from consumers.kafka.reach import unreachable
from consumers.kafka.sources import OFFSETS_TIMEOUT_MS, partitions_of
from consumers.oracle.terminal.safe_text import printable, safe
from consumers.settings import KafkaSettings
from stream_al.bus import Message

#: The families a person may tail, and the topic setting each one reads.
FAMILIES = ("predictions", "requests", "labels", "dlq")
#: Families whose messages name their model (``model_key``).
WITH_MODEL_KEY = ("predictions", "requests")
#: Offsets read back at a time when looking for the last N messages of one model.
_CHUNK = 500
_POLL_MS = 200


@dataclass(frozen=True)
class Shown:
    """One message as read: where it is, when the broker has it, and its value parsed
    (``value`` None when it is not a JSON object; then ``problem`` says why)."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    raw: bytes | None
    value: dict[str, Any] | None
    problem: str | None

    @property
    def order(self) -> tuple[int, int, int]:
        return self.timestamp_ms, self.partition, self.offset


def parse(record: Message) -> Shown:
    raw: bytes | None = record.value
    value: dict[str, Any] | None = None
    problem = None
    if raw is None:
        problem = "no value (a tombstone)"
    else:
        try:
            decoded = json.loads(raw)
        except (UnicodeDecodeError, ValueError) as error:
            problem = f"not JSON: {error}"
        else:
            if isinstance(decoded, dict):
                value = decoded
            else:
                problem = f"JSON {type(decoded).__name__}, not an object"
    return Shown(record.topic, record.partition, record.offset, record.timestamp_ms,
                 record.key, raw, value, problem)


def model_filter(model_key: str | None) -> Callable[[Shown], bool]:
    if model_key is None:
        return lambda shown: True
    return lambda shown: shown.value is not None and shown.value.get("model_key") == model_key


def read(kafka: KafkaSettings, topic: str, *, last: int | None, follow: bool,
         keep: Callable[[Shown], bool], stop: threading.Event) -> Iterator[Shown]:
    """The last ``last`` kept messages of ``topic`` (all of them for None) in broker time
    order, then with ``follow`` each new kept one until ``stop``.

    Raises :class:`BrokerUnavailable` when no broker answers or the topic is missing."""
    try:
        consumer = make_consumer(kafka, None)
    except ClientError as error:
        raise unreachable(kafka) from error
    try:
        partitions = partitions_of(consumer, [topic])
        ends = consumer.end_offsets(partitions, timeout_ms=OFFSETS_TIMEOUT_MS)
        starts = consumer.beginning_offsets(partitions, timeout_ms=OFFSETS_TIMEOUT_MS)
        backlog: list[Shown] = []
        for tp in partitions:
            backlog += _last_of(consumer, tp, starts[tp], ends[tp], last, keep, stop)
        backlog.sort(key=lambda shown: shown.order)
        yield from _latest(backlog, last)
        if not follow:
            return
        consumer.assign({tp: ends[tp] for tp in partitions})
        while not stop.is_set():
            fresh = [parse(record) for record in consumer.poll(_POLL_MS)]
            yield from sorted((shown for shown in fresh if keep(shown)),
                              key=lambda shown: shown.order)
    finally:
        consumer.close()


def _last_of(consumer: Consumer, tp: TopicPartition, start: int, end: int,
             last: int | None, keep: Callable[[Shown], bool], stop: threading.Event
             ) -> list[Shown]:
    """The last ``last`` kept messages of one partition (all for None), read back from
    its end a chunk at a time, so a filter that keeps few still finds ``last``."""
    found: list[Shown] = []
    high = end
    while high > start and not stop.is_set() and (last is None or len(found) < last):
        low = start if last is None else max(start, high - max(last, _CHUNK))
        found = _range(consumer, tp, low, high, keep, stop) + found
        high = low
    return _latest(found, last)


def _latest(found: list[Shown], last: int | None) -> list[Shown]:
    """The last ``last`` of ``found`` (all for None, none for 0)."""
    if last is None:
        return found
    return found[max(0, len(found) - last):] if last else []


def _range(consumer: Consumer, tp: TopicPartition, low: int, high: int,
           keep: Callable[[Shown], bool], stop: threading.Event) -> list[Shown]:
    """The kept messages at offsets low ≤ o < high of ``tp``."""
    consumer.assign({tp: low})
    found: list[Shown] = []
    while consumer.position(tp) < high and not stop.is_set():
        for record in consumer.poll(_POLL_MS):
            if (record.topic, record.partition) == tp and record.offset < high:
                shown = parse(record)
                if keep(shown):
                    found.append(shown)
    return found


# -- how a message is shown ---------------------------------------------------------------


def as_json(shown: Shown) -> str:
    """One JSON object a line: where, when, the key and the parsed value; a value that is
    not a JSON object comes as base64 with the problem named."""
    line: dict[str, Any] = {
        "topic": shown.topic, "partition": shown.partition, "offset": shown.offset,
        "timestamp": _when(shown.timestamp_ms).replace(" ", "T"),  # ISO 8601
        "key": None if shown.key is None else shown.key.decode("utf-8", "replace"),
        "value": shown.value,
    }
    if shown.problem is not None:
        line["problem"] = shown.problem
        line["value_b64"] = None if shown.raw is None else base64.b64encode(shown.raw).decode()
    # ensure_ascii: a terminal gets no raw control or bidirectional character from a value.
    return json.dumps(line, ensure_ascii=True, sort_keys=False)


def as_text(family: str, shown: Shown) -> Text:
    """One line a person reads: when, then the fields that matter for ``family``."""
    line = Text()
    line.append(_when(shown.timestamp_ms), "dim")
    line.append(f" {shown.partition}:{shown.offset} ", "dim")
    if shown.value is None:
        line.append_text(safe(f"unreadable message ({shown.problem})", "bold red"))
        if shown.raw:
            line.append(" ")
            line.append_text(safe(shown.raw[:120].decode("utf-8", "replace"), "red"))
        return line
    for piece in _FIELDS[family](shown.value):
        line.append_text(piece)
    return line


def _prediction(value: dict[str, Any]) -> list[Text]:
    pieces = [safe(value.get("model_key"), "cyan"), _plain(" "), safe(value.get("record_id")),
              _plain(" → ")]
    predicted = value.get("predicted")
    if predicted is None:
        pieces.append(_plain("no prediction yet", "yellow"))
    else:
        probability = _number((value.get("proba") or {}).get(predicted), ".2f")
        pieces += [safe(predicted, "bold"), _plain(f" {probability}")]
    pieces.append(_plain(f"  u={_number(value.get('uncertainty'), '.3f')}"))
    if value.get("queried"):
        pieces += [_plain("  queried ", "magenta"), safe(value.get("query_id"), "magenta")]
    return pieces


def _request(value: dict[str, Any]) -> list[Text]:
    predicted = value.get("predicted")
    return [safe(value.get("model_key"), "cyan"), _plain(" "), safe(value.get("record_id")),
            _plain(" "), safe(value.get("reason"), "magenta"),
            _plain(f"  u={_number(value.get('uncertainty'), '.3f')} "
                   f"θ={_number(value.get('threshold'), '.3f')}  predicted "),
            _plain("nothing yet", "yellow") if predicted is None else safe(predicted, "bold"),
            _plain("  expires "), safe(value.get("expires_at")), _plain("  "),
            safe(value.get("query_id"), "dim")]


def _label(value: dict[str, Any]) -> list[Text]:
    labeler = value.get("labeler")
    return [safe(value.get("query_id")), _plain(" = "), safe(value.get("label"), "bold"),
            _plain("  by "), _plain("nobody named", "dim") if labeler is None else safe(labeler),
            _plain("  at "), safe(value.get("labeled_at"))]


def _dead_letter(value: dict[str, Any]) -> list[Text]:
    return [safe(value.get("source_topic"), "cyan"),
            safe(f"[{value.get('partition')}]@{value.get('offset')}"), _plain(": "),
            safe(value.get("error"), "red"), _plain("  "),
            _plain(_payload_size(value), "dim")]


def _payload_size(value: dict[str, Any]) -> str:
    size = value.get("payload_bytes")
    if size is None:
        try:
            size = len(base64.b64decode(str(value.get("payload_b64") or ""), validate=True))
        except (binascii.Error, ValueError):
            return "payload not base64"
    truncated = " (truncated)" if value.get("payload_truncated") else ""
    return f"payload {printable(size)} bytes{truncated}"


_FIELDS: dict[str, Callable[[dict[str, Any]], list[Text]]] = {
    "predictions": _prediction, "requests": _request, "labels": _label, "dlq": _dead_letter,
}


def _plain(text: str, style: str = "") -> Text:
    """Our own words (never a message's): still a Text, so no markup is parsed."""
    return Text(text, style)


def _number(value: object, spec: str) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return format(value, spec)
    return "?" if value is None else printable(value)


def _when(timestamp_ms: int) -> str:
    moment = datetime.fromtimestamp(timestamp_ms / 1000, UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
