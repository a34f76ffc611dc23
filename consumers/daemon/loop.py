"""``stream-al run``: the long-running daemon on Kafka.

The loop has quix-streams' shape plus our checkpoint: poll → process → produce →
every few seconds (or labels) flush the producer, THEN save learner + offsets
together, THEN commit input offsets to Kafka (for lag monitoring and for the next
owner of a partition). The checkpoint, not Kafka's commit, is the truth on restart.
Signal handlers only request a stop; the loop finishes its batch and checkpoints.

kafka-python 3.x polls return nothing, not an error, while the broker is down, so the
loop asks the broker something cheap every few seconds: that is what /readyz reports,
and a broker that does not answer sends the loop into its back-off and restore path.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from types import FrameType
from typing import Any

from kafka import (
    AsyncConsumerRebalanceListener,
    KafkaConsumer,
    OffsetAndMetadata,
    TopicPartition,
)
from kafka.errors import KafkaError
from prometheus_client import CollectorRegistry, disable_created_metrics

from consumers.daemon.checkpoints import CheckpointStore
from consumers.daemon.http import HealthServer
from consumers.kafka.clients import (
    KafkaSink,
    make_consumer,
    make_producer,
    partitions_of,
    to_message,
)
from consumers.settings import Settings
from stream_al.bus import Outgoing
from stream_al.errors import BrokerUnavailable
from stream_al.learner import Learner
from stream_al.metrics import Metrics
from stream_al.pipeline import Pipeline
from stream_al.state import Offsets

log = logging.getLogger("stream_al.daemon")
#: A reconnect attempt costs one bootstrap; waiting longer only delays recovery.
#: Longer than any wait inside one turn of the loop (flush 30 s, probes 3 s, back-off 10 s).
_STALL_S = 60.0
_MAX_BACKOFF_S = 10.0
_PROBE_EVERY_S = 2.0
_PROBE_TIMEOUT_MS = 3_000
#: Bounds how long a (re)connect blocks the loop, and with it a SIGTERM, while the
#: broker is away (kafka-python waits 30 s by default).
_BOOTSTRAP_TIMEOUT_MS = 5_000
_CLOSE_TIMEOUT_MS = 2_000
#: On SIGTERM, what cannot be delivered by then is scored again after the restart.
_STOP_FLUSH_S = 5.0
#: kafka-python 3.x heartbeats from its own thread, so a long batch cannot starve the
#: session; 10 s (not the 45 s default) lets the group hand a crashed replica's
#: partitions on, and lets a restarted daemon rejoin, without a long stall.
_SESSION_TIMEOUT_MS = 10_000


class _Rebalance(AsyncConsumerRebalanceListener):  # type: ignore[misc]
    """Runs on kafka-python's I/O loop while the main thread waits inside ``poll``: it may
    touch the pipeline, and must await (never block on) consumer calls."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        await self.daemon.on_revoked(list(revoked))

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        self.daemon.on_assigned(list(assigned))

    async def on_partitions_lost(self, lost: Iterable[TopicPartition]) -> None:
        # Evicted: the group may already have given them away, so no commit; our state
        # stays whole and on_assigned puts us back where it stands.
        log.warning("lost partitions %s (session expired)", sorted(lost))


class Daemon:
    def __init__(self, settings: Settings, registry: CollectorRegistry | None = None) -> None:
        disable_created_metrics()  # *_created doubles the series and nothing reads it
        self.settings = settings
        self.registry = registry or CollectorRegistry()
        self.metrics = Metrics(self.registry)
        self.store = CheckpointStore(settings.state_dir)
        self.stop_requested = threading.Event()
        self._last_step = time.monotonic()
        self.pipeline: Pipeline | None = None
        self.flushed: Offsets = {}
        self.inputs: KafkaConsumer | None = None
        self.logs: KafkaConsumer | None = None
        self.sink: KafkaSink | None = None
        self.connected = False
        self.kafka_error: str | None = None
        self.http: HealthServer | None = None
        self._requests: list[TopicPartition] = []
        self._labels: list[TopicPartition] = []
        self._request_ends: dict[TopicPartition, int] = {}
        self._labels_read_before: int | None = None
        self._next_probe = 0.0
        self._last_checkpoint = time.monotonic()
        self._labels_since_checkpoint = 0

    # -- lifecycle -------------------------------------------------------------------

    def run(self) -> int:
        self.store.prepare()
        self._restore()
        self.http = HealthServer(self.settings.http.host, self.settings.http.port,
                                 self.registry, self.readiness, self.liveness).start()
        log.info("serving /metrics, /healthz, /readyz on port %d", self.http.port)
        backoff = 1.0
        try:
            while not self.stop_requested.is_set():
                self._last_step = time.monotonic()
                try:
                    self._connect()
                    self._step()
                    backoff = 1.0
                except (BrokerUnavailable, KafkaError) as error:
                    self._recover(error, backoff)
                    backoff = min(backoff * 2, _MAX_BACKOFF_S)
            self._shutdown()
        finally:
            self.http.stop()
        return 0

    def request_stop(self, signum: int, frame: FrameType | None = None) -> None:
        log.info("signal %d: finishing the batch in hand, then checkpointing", signum)
        self.stop_requested.set()

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)

    def liveness(self) -> tuple[bool, list[str]]:
        """Alive while the loop keeps turning. kafka-python 3.0.12 has been seen to hang in
        ``poll()`` for good (a lost wakeup) while heartbeating: only a stalled loop shows
        it, and a restart is safe because the checkpoint is the truth."""
        stalled = time.monotonic() - self._last_step
        if stalled > _STALL_S:
            return False, [f"the main loop has not turned for {stalled:.0f} s"]
        return True, []

    def readiness(self) -> tuple[bool, list[str]]:
        """Called from the HTTP thread: reads each attribute once, as the loop may reset it."""
        reasons = []
        if self.pipeline is None:
            reasons.append("checkpoint not loaded")
        if not self.connected:
            error = self.kafka_error
            reasons.append(f"Kafka unavailable, retrying: {error}" if error
                           else "not connected to Kafka yet")
        inputs = self.inputs
        if inputs is None or not inputs.assignment():
            reasons.append("no input partitions assigned")
        return not reasons, reasons

    def _recover(self, error: Exception, backoff: float) -> None:
        self.connected = False
        self.kafka_error = str(error) or type(error).__name__
        log.warning("Kafka unavailable (%s); retrying in %.0f s", self.kafka_error, backoff)
        self._close_clients()
        self._restore()  # resume from the last checkpoint: nothing half-done
        self.stop_requested.wait(backoff)

    # -- state -----------------------------------------------------------------------

    def _restore(self) -> None:
        checkpoint = self.store.load()
        topics = self.settings.topics
        if checkpoint is None:
            self.pipeline = Pipeline(Learner(self.settings.learner), topics, self.metrics)
            log.info("no checkpoint in %s: starting fresh", self.settings.state_dir)
        else:
            self.pipeline = Pipeline.from_checkpoint(checkpoint, topics, self.metrics)
            log.info("restored checkpoint of %s", checkpoint.taken_at)
        self.flushed = dict(self.pipeline.offsets)

    def checkpoint(self) -> None:
        """Flush, save state and offsets together, then tell the group (asynchronously)."""
        self._save()
        self.commit_flushed(list(self.inputs.assignment()) if self.inputs else [])

    def _save(self, flush_timeout_s: float = 30.0) -> None:
        assert self.pipeline is not None and self.sink is not None
        # Never checkpoint past a prediction that was not delivered.
        self.sink.flush(flush_timeout_s)
        size = self.store.save(self.pipeline.checkpoint(datetime.now(UTC)))
        self.flushed = dict(self.pipeline.offsets)
        self.metrics.mark_checkpoint(time.time())
        self._last_checkpoint = time.monotonic()
        self._labels_since_checkpoint = 0
        log.debug("checkpoint saved (%d bytes)", size)

    def _flushed_offsets(self, partitions: list[TopicPartition]
                         ) -> dict[TopicPartition, OffsetAndMetadata]:
        return {tp: OffsetAndMetadata(self.flushed[(tp.topic, tp.partition)], "", -1)
                for tp in partitions if (tp.topic, tp.partition) in self.flushed}

    def commit_flushed(self, partitions: list[TopicPartition]) -> None:
        """Commit only what a checkpoint covers, asynchronously (safe on the I/O thread)."""
        offsets = self._flushed_offsets(partitions)
        if offsets and self.inputs is not None:
            self.inputs.commit_async(offsets)

    async def on_revoked(self, partitions: list[TopicPartition]) -> None:
        """Before partitions move, checkpoint and commit, and await the commit: the next
        owner (whose join waits for ours) resumes where we stopped, not at our previous
        checkpoint, so nothing is scored or asked twice."""
        for tp in partitions:
            self.metrics.forget_partition(tp.topic, tp.partition)
        if not self.connected or self.inputs is None:
            return  # closing after a failure, or stopping: the last checkpoint stands
        self._save()
        offsets = self._flushed_offsets(partitions)
        try:
            if offsets:
                await self.inputs.commit_async(offsets)
        except KafkaError as error:
            log.warning("commit on revoke failed (%s): the next owner of %s may score "
                        "some records again", error, sorted(offsets))

    def on_assigned(self, partitions: list[TopicPartition]) -> None:
        """Resume each partition where our state stands (the checkpoint at start, what we
        processed later), so position and state agree; a partition we hold no state
        for starts at the group's committed offset."""
        assert self.pipeline is not None and self.inputs is not None
        for tp in partitions:
            offset = self.pipeline.offsets.get((tp.topic, tp.partition))
            if offset is not None:
                self.inputs.seek(tp, offset)

    # -- the loop --------------------------------------------------------------------

    def _connect(self) -> None:
        if self.inputs is not None:
            return
        kafka, topics = self.settings.kafka, self.settings.topics
        self.sink = KafkaSink(make_producer(kafka, bootstrap_timeout_ms=_BOOTSTRAP_TIMEOUT_MS))
        self.logs = make_consumer(kafka, None, bootstrap_timeout_ms=_BOOTSTRAP_TIMEOUT_MS)
        self._requests = partitions_of(self.logs, [topics.requests])
        self._labels = partitions_of(self.logs, [topics.labels])
        self.logs.assign(self._requests + self._labels)
        for tp in self._requests + self._labels:
            offset = self.flushed.get((tp.topic, tp.partition))
            if offset is None:
                self.logs.seek_to_beginning(tp)
            else:
                self.logs.seek(tp, offset)
        self._labels_read_before = None
        self.inputs = make_consumer(kafka, kafka.group_id, session_timeout_ms=_SESSION_TIMEOUT_MS,
                                    bootstrap_timeout_ms=_BOOTSTRAP_TIMEOUT_MS)
        # Metadata first: joining the group before it is known can assign nothing at all
        # (until the next metadata refresh, minutes later); and a missing topic is named.
        partitions_of(self.inputs, topics.inputs)
        self.inputs.subscribe(list(topics.inputs), listener=_Rebalance(self))
        self.connected, self.kafka_error = True, None

    def _step(self) -> None:
        assert self.pipeline is not None and self.inputs is not None and self.logs is not None
        now = datetime.now(UTC)
        self._probe()
        self._handle(self.logs.poll(timeout_ms=0, max_records=self.settings.poll_max_records),
                     now, logs=True)
        self._drain_waiting_labels(now)
        batch = self.inputs.poll(timeout_ms=100, max_records=self.settings.poll_max_records)
        self._handle(batch, now, logs=False)
        if self._checkpoint_due():
            self.checkpoint()
            self._update_gauges()

    def _probe(self) -> None:
        """Raise BrokerUnavailable if the broker does not answer a cheap request."""
        assert self.logs is not None
        if time.monotonic() < self._next_probe:
            return
        try:
            self.logs.end_offsets(self._labels, timeout_ms=_PROBE_TIMEOUT_MS)
        except KafkaError as error:
            raise BrokerUnavailable(f"the broker did not answer within "
                                    f"{_PROBE_TIMEOUT_MS / 1000:.0f} s ({error!r})") from error
        self._next_probe = time.monotonic() + _PROBE_EVERY_S

    def _handle(self, batch: dict[TopicPartition, list[Any]], now: datetime,
                logs: bool) -> None:
        assert self.pipeline is not None
        requests = self.settings.topics.requests
        # Requests before labels, so a label and its request in one batch join at once.
        order = sorted(batch, key=lambda tp: (tp.topic != requests, tp.topic, tp.partition))
        for tp in order:
            for record in batch[tp]:
                self._send(self.pipeline.handle(to_message(record), now))
                if logs and tp.topic == self.settings.topics.labels:
                    self._labels_since_checkpoint += 1

    def _send(self, messages: list[Outgoing]) -> None:
        assert self.sink is not None
        for message in messages:
            self.sink.send(message)

    def _drain_waiting_labels(self, now: datetime) -> None:
        """A label whose request is missing is an unknown query once the request log has
        been read to its end as it stood AFTER the label was read: a real query's request
        is written before its label. Judging against the end as it stands now instead
        would stall every label behind a bogus one for as long as requests keep coming."""
        assert self.pipeline is not None and self.logs is not None
        if not self.pipeline.waiting_labels:
            self._labels_read_before = None
            return
        if self._labels_read_before is None:
            self._labels_read_before = self.logs.position(self._labels[0], timeout_ms=5_000)
            self._request_ends = self.logs.end_offsets(self._requests, timeout_ms=5_000)
        if all(self.logs.position(tp, timeout_ms=5_000) >= end
               for tp, end in self._request_ends.items()):
            self._send(self.pipeline.drain_labels(requests_caught_up=True, now=now,
                                                  labels_below=self._labels_read_before))
            self._labels_read_before = None  # labels read since then need a new look

    def _checkpoint_due(self) -> bool:
        every = self.settings.checkpoint
        return (time.monotonic() - self._last_checkpoint >= every.interval_s
                or self._labels_since_checkpoint >= every.every_labels)

    def _update_gauges(self) -> None:
        assert self.pipeline is not None and self.inputs is not None
        self.pipeline.publish_state()
        assigned = list(self.inputs.assignment())
        if assigned:
            ends = self.inputs.end_offsets(assigned, timeout_ms=5_000)
            for tp in assigned:
                position = self.inputs.position(tp, timeout_ms=5_000)
                self.metrics.set_consumer_lag(tp.topic, tp.partition, ends[tp] - position)

    def _shutdown(self) -> None:
        try:
            if self.inputs is not None:
                self._save(flush_timeout_s=_STOP_FLUSH_S)
                # On the main thread a commit may block: the next owner of our
                # partitions must find it before it starts.
                offsets = self._flushed_offsets(list(self.inputs.assignment()))
                if offsets:
                    self.inputs.commit(offsets, timeout_ms=5_000)
        except (BrokerUnavailable, KafkaError) as error:
            log.error("final checkpoint skipped, Kafka unavailable (%s); the last one "
                      "stands and the records since will be processed again", error)
        self.connected = False
        self._close_clients()
        log.info("stopped cleanly")

    def _close_clients(self) -> None:
        for client in (self.inputs, self.logs):
            if client is not None:
                try:
                    client.close(autocommit=False, timeout_ms=_CLOSE_TIMEOUT_MS)
                except KafkaError:
                    pass
        if self.sink is not None:
            self.sink.producer.close(timeout=5)
        self.inputs = self.logs = None
        self.sink = None
