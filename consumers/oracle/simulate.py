"""``stream-al oracle simulate`` on Kafka: read requests, answer from truth, produce labels.

Offsets are committed only after the labels they produced are flushed, so a crash
answers some queries twice (the daemon counts the second as a duplicate) but never
loses one.
"""

from __future__ import annotations

import csv
import json
import logging
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from kafka.errors import KafkaError

from consumers.kafka.clients import make_consumer
from consumers.kafka.reach import announce, unreachable
from consumers.kafka.sink import KafkaSink
from consumers.kafka.sources import to_message
from consumers.settings import Settings
from stream_al.auth import RequestSigner
from stream_al.bus import Message, Outgoing
from stream_al.codec import decode_request, encode
from stream_al.errors import BrokerUnavailable, DecodeError
from stream_al.oracle import SimulatedOracle, TruthLookup, truth_from_record
from stream_al.records import OracleRequest

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


def run_oracle(settings: Settings, oracle: SimulatedOracle, stop: threading.Event,
               group: str = "stream-al-oracle-simulator", idle_exit_s: float | None = None,
               max_labels: int | None = None) -> int:
    """Answer until stopped, idle for ``idle_exit_s``, or ``max_labels`` sent."""
    announce(settings.kafka)
    try:
        consumer = make_consumer(settings.kafka, group)
    except KafkaError as error:
        raise unreachable(settings.kafka) from error
    consumer.subscribe([settings.topics.requests])
    sink: KafkaSink[Outgoing] = KafkaSink.connect(settings.kafka)
    sent, last_activity = 0, datetime.now(UTC)
    signer = settings.security.signer()
    try:
        while not stop.is_set() and (max_labels is None or sent < max_labels):
            now = datetime.now(UTC)
            for records in consumer.poll(timeout_ms=200).values():
                for record in records:
                    _offer(oracle, to_message(record), signer, now)
                    last_activity = now
            for label in oracle.due(now):
                sink.send(Outgoing(settings.topics.labels, label.query_id.encode(),
                                   encode(label)))
                sent += 1
                last_activity = now
            sink.flush()
            if failures := sink.take_failures():
                raise BrokerUnavailable(f"{len(failures)} labels were not delivered "
                                        f"({failures[0].reason})")
            consumer.commit_async()
            idle = (now - last_activity).total_seconds()
            if idle_exit_s is not None and idle >= idle_exit_s and not len(oracle):
                break
    except (KafkaError, BrokerUnavailable) as error:
        log.error("Kafka failed: %s", error)
        return 1
    finally:
        sink.flush()
        consumer.close(autocommit=not sink.take_failures())
        sink.close()
    log.info("sent %d labels; %d queries had no known truth", sent, oracle.unanswerable)
    return 0


def _offer(oracle: SimulatedOracle, message: Message, signer: RequestSigner | None,
           now: datetime) -> None:
    if signer is not None and not signer.verify(message):
        log.warning("skipping a request that is not signed with security.request_key (%s)",
                    message.where)
        return
    try:
        request = decode_request(message.value or b"")
    except DecodeError as error:
        log.warning("skipping a malformed request: %s", error.reason)
        return
    if not oracle.offer(request, now):
        log.warning("no truth for record %s (query %s): not answered", request.record_id,
                    request.query_id)


def make_oracle(delay_s: float, noise: float, per_minute: float | None, seed: int,
                labeler: str, truth_file: Path | None) -> SimulatedOracle:
    return SimulatedOracle(lookup(truth_file), timedelta(seconds=delay_s), noise, per_minute,
                           seed, labeler)
