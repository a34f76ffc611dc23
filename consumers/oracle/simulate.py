"""``stream-al oracle simulate`` on Kafka: read requests, answer from truth, produce labels.

Offsets are committed only up to the first request not answered yet (its label not
delivered, or no truth for it), so a crash answers some queries twice (the daemon counts
the second as a duplicate) but never loses one.
"""

from __future__ import annotations

import csv
import json
import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from consumers.kafka.clients import make_consumer
from consumers.kafka.gateway import ClientError, Consumer, TopicPartition
from consumers.kafka.reach import announce, unreachable
from consumers.kafka.sink import KafkaSink
from consumers.settings import Settings
from stream_al.auth import RequestSigner
from stream_al.bus import Message, Outgoing
from stream_al.codec import decode_request, encode
from stream_al.errors import BrokerUnavailable, DecodeError
from stream_al.oracle import SimulatedOracle, TruthLookup, truth_from_record
from stream_al.records import OracleLabel, OracleRequest

log = logging.getLogger("stream_al.oracle")


def load_truth(path: Path) -> dict[str, str]:
    """record_id → label from a CSV (columns record_id,label) or JSONL file."""
    truth: dict[str, str] = {}
    with path.open(encoding="utf-8", newline="") as handle:
        if path.suffix.lower() == ".jsonl":
            for number, line in enumerate(handle, 1):
                if line.strip():
                    row = json.loads(line)
                    _put(truth, row, f"{path}:{number}")
        else:
            for number, row in enumerate(csv.DictReader(handle), 2):
                _put(truth, row, f"{path}:{number}")
    return truth


def _put(truth: dict[str, str], row: dict[str, object], where: str) -> None:
    if not isinstance(row, dict) or "record_id" not in row or "label" not in row:
        raise ValueError(f"{where}: expected fields record_id and label")
    truth[str(row["record_id"])] = str(row["label"])


def lookup(truth_file: Path | None) -> TruthLookup:
    if truth_file is None:
        return truth_from_record
    table = load_truth(truth_file)

    def from_table(request: OracleRequest) -> str | None:
        return table.get(request.record_id) or request.record.label
    return from_table


#: How to give the simulator truth, said when a request has none.
TRUTH_HINT = ("give it truth with --truth FILE (CSV record_id,label or JSONL), or produce "
              "records that carry their label (stream-al produce --label-from "
              "pass_fail|hard_bin|soft_bin)")
#: Requests without truth named one by one before the progress line only counts them.
_NAMED_UNANSWERABLE = 10


class LabelRefused(Exception):
    """The broker refused labels for good (not an outage): the simulator stops."""


class Held:
    """Requests read but not answered yet, by partition: offsets are committed only up to
    the first of them, so a restart reads them again instead of losing them. One with no
    truth stays held for good (until truth is given and the simulator restarted)."""

    def __init__(self) -> None:
        self._offsets: dict[TopicPartition, set[int]] = {}
        self._by_query: dict[str, list[tuple[TopicPartition, int]]] = {}
        self.without_truth = 0

    def hold(self, tp: TopicPartition, offset: int, query_id: str | None) -> None:
        """``query_id`` None: no truth, never released."""
        self._offsets.setdefault(tp, set()).add(offset)
        if query_id is None:
            self.without_truth += 1
        else:
            self._by_query.setdefault(query_id, []).append((tp, offset))

    def release(self, query_id: str) -> None:
        """The label of ``query_id`` is delivered."""
        held = self._by_query.get(query_id)
        if not held:
            return
        tp, offset = held.pop(0)
        if not held:
            del self._by_query[query_id]
        self._offsets[tp].discard(offset)

    def committable(self, positions: dict[TopicPartition, int]) -> dict[TopicPartition, int]:
        """The offset to commit per partition: the first held one, else the position."""
        return {tp: min(self._offsets.get(tp) or {position}) for tp, position in
                positions.items()}


def run_oracle(settings: Settings, oracle: SimulatedOracle, stop: threading.Event,
               group: str = "stream-al-oracle-simulator", idle_exit_s: float | None = None,
               max_labels: int | None = None, progress_every_s: float = 10.0) -> int:
    """Answer until stopped, idle for ``idle_exit_s``, or ``max_labels`` sent; a progress
    line every ``progress_every_s`` while something happens."""
    announce(settings.kafka)
    try:
        consumer = make_consumer(settings.kafka, group)
    except ClientError as error:
        raise unreachable(settings.kafka) from error
    consumer.subscribe([settings.topics.requests])
    sink: KafkaSink[OracleLabel] = KafkaSink.connect(settings.kafka)
    progress = _Progress(progress_every_s)
    held = Held()
    last_activity = datetime.now(UTC)
    signer = settings.security.signer()
    # Labels the broker has not taken yet (it is away): sent again each turn, and their
    # requests stay held, so an outage costs time, never a label or an exit.
    unsent: list[OracleLabel] = []
    try:
        while not stop.is_set() and (max_labels is None or progress.sent < max_labels):
            now = datetime.now(UTC)
            for message in consumer.poll(200):
                tp = TopicPartition(message.topic, message.partition)
                _offer(oracle, message, signer, now, held, tp, progress)
                last_activity = now
            attempted = unsent + list(oracle.due(now))
            if attempted:
                last_activity = now
            try:
                unsent = _deliver(sink, settings.topics.labels, attempted)
            except BrokerUnavailable as error:
                # The producer itself is done for (librdkafka's idempotent producer turns
                # fatal when a restarted broker lost what it had acknowledged): a new one
                # sends every label of this turn again, as the daemon's reconnect does.
                log.warning("the label producer failed (%s): sending %d labels again on a "
                            "new one", error, len(attempted))
                sink.close(0)
                sink = _reconnected_sink(settings, stop)
                unsent = attempted
                continue
            waiting = {label.query_id for label in unsent}
            for label in attempted:
                if label.query_id not in waiting:
                    held.release(label.query_id)  # delivered: its request may be committed
                    progress.sent += 1
            _commit(consumer, held)
            progress.maybe_report(len(oracle), held.without_truth)
            idle = (now - last_activity).total_seconds()
            if idle_exit_s is not None and idle >= idle_exit_s and not len(oracle):
                break
    except (ClientError, BrokerUnavailable, LabelRefused) as error:
        log.error("Kafka failed: %s", error)
        return 1
    finally:
        # Every label sent was flushed above, and a request is released only once its
        # label was delivered: committing up to the held ones loses nothing.
        _commit(consumer, held, final=True)
        consumer.close()
        sink.close()
    summary = f"sent {progress.sent} labels; {oracle.unanswerable} queries had no known truth"
    if held.without_truth:
        summary += f" (not committed past them, so they are read again next time: {TRUTH_HINT})"
    log.info("%s", summary)
    return 0


def _deliver(sink: KafkaSink[OracleLabel], topic: str, labels: list[OracleLabel]
             ) -> list[OracleLabel]:
    """Send ``labels`` and wait for the broker; the ones it has not taken (it is away) are
    returned, to be sent again. :class:`LabelRefused` if it refused one for good;
    :class:`BrokerUnavailable` if the producer itself failed."""
    unsent: list[OracleLabel] = []
    for label in labels:
        try:
            sink.send(Outgoing(topic, label.query_id.encode(), encode(label)), tag=label)
        except BrokerUnavailable:
            unsent.append(label)
    sink.flush()
    failures = sink.take_failures()
    if refused := [f for f in failures if not f.retriable]:
        # Not an outage: the broker refused a label (e.g. no write access).
        raise LabelRefused(f"{len(refused)} labels were refused ({refused[0].reason})")
    unsent += [f.tag for f in failures]
    if unsent:
        log.warning("Kafka has not taken %d labels (%s): sending them again", len(unsent),
                    failures[0].reason if failures else "unreachable")
    return unsent


def _reconnected_sink(settings: Settings, stop: threading.Event) -> KafkaSink[OracleLabel]:
    """A new label producer, trying every second while the broker is away (or until
    stopped: then :class:`BrokerUnavailable`)."""
    while True:
        try:
            return KafkaSink.connect(settings.kafka)
        except BrokerUnavailable as error:
            log.warning("no label producer yet (%s): trying again in 1 s", error)
            if stop.wait(1.0):
                raise


def _commit(consumer: Consumer, held: Held, final: bool = False) -> None:
    try:
        positions = {tp: consumer.position(tp) for tp in consumer.assignment()}
    except ClientError as error:
        # The broker is away (position may need it): nothing is committed this turn, so
        # nothing is lost, and the simulator waits out the outage like the daemon does.
        log.debug("no commit this turn: %s", error)
        return
    offsets = held.committable(positions)
    if not offsets:
        return
    if final:
        try:
            consumer.commit(offsets, asynchronous=False)
        except ClientError as error:  # the next start reads a little again: nothing lost
            log.warning("could not commit the last offsets: %s", error)
    else:
        consumer.commit(offsets, asynchronous=True)


class _Progress:
    """A line now and then, while the simulator works, so a quiet terminal is not taken
    for a stuck one."""

    def __init__(self, every_s: float) -> None:
        self.every_s = every_s
        self.read = self.sent = 0
        self._said_at = time.monotonic()
        self._said: tuple[int, ...] = (0, 0, 0)

    def maybe_report(self, waiting: int, without_truth: int) -> None:
        now = time.monotonic()
        counts = (self.read, self.sent, without_truth)
        if now - self._said_at < self.every_s or counts == self._said:
            return
        self._said_at, self._said = now, counts
        log.info("progress: %d requests read, %d labels sent, %d waiting for their delay, "
                 "%d without truth", self.read, self.sent, waiting, without_truth)


def _offer(oracle: SimulatedOracle, message: Message, signer: RequestSigner | None,
           now: datetime, held: Held, tp: TopicPartition, progress: _Progress) -> None:
    progress.read += 1
    if signer is not None and not signer.verify(message):
        log.warning("skipping a request that is not signed with security.request_key (%s)",
                    message.where)
        return
    try:
        request = decode_request(message.value or b"")
    except DecodeError as error:
        log.warning("skipping a malformed request: %s", error.reason)
        return
    if oracle.offer(request, now):
        held.hold(tp, message.offset, request.query_id)
        return
    held.hold(tp, message.offset, None)
    if held.without_truth == 1:
        log.warning("no truth for record %s (query %s): not answered, and not committed "
                    "past, so it is read again at the next start; %s", request.record_id,
                    request.query_id, TRUTH_HINT)
    elif held.without_truth <= _NAMED_UNANSWERABLE:
        log.warning("no truth for record %s (query %s): not answered", request.record_id,
                    request.query_id)


def make_oracle(delay_s: float, noise: float, per_minute: float | None, seed: int,
                labeler: str, truth_file: Path | None) -> SimulatedOracle:
    return SimulatedOracle(lookup(truth_file), timedelta(seconds=delay_s), noise, per_minute,
                           seed, labeler)
