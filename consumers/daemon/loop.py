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
import time
from collections.abc import Mapping
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter, disable_created_metrics

from consumers.daemon.checkpoints import CheckpointStore
from consumers.daemon.connection import BOOTSTRAP_TIMEOUT_MS, Connection
from consumers.daemon.http import HealthServer
from consumers.daemon.progress import Progress
from consumers.daemon.retention import RestoreGap, restore_gaps
from consumers.kafka.gateway import ClientError, TopicPartition
from consumers.kafka.reach import announce
from consumers.settings import Settings
from consumers.stopping import StopRequest
from stream_al.errors import BrokerUnavailable, StateDirError, StreamAlError
from stream_al.learner import Learner
from stream_al.loop import step
from stream_al.metrics import Metrics
from stream_al.pipeline import Pipeline
from stream_al.state import Offsets

log = logging.getLogger("stream_al.daemon")
#: Longer than any wait inside one turn of the loop (flush 30 s, probes 3 s, back-off 10 s).
_STALL_S = 60.0
#: A reconnect attempt costs one bootstrap; waiting longer only delays recovery.
_MAX_BACKOFF_S = 10.0
_PROBE_EVERY_S = 2.0
#: On SIGTERM, what cannot be delivered by then is scored again after the restart.
_STOP_FLUSH_S = 5.0
_CHECKPOINT_FLUSH_S = 30.0
_FINAL_COMMIT_MS = 5_000


class Daemon:
    def __init__(self, settings: Settings, registry: CollectorRegistry | None = None) -> None:
        disable_created_metrics()  # *_created doubles the series and nothing reads it
        self.settings = settings
        self.registry = registry or CollectorRegistry()
        self.metrics = Metrics(self.registry)
        self.store = CheckpointStore(settings.state_dir, settings.checkpoint.key)
        self.stop_requested = StopRequest()
        self._last_step = time.monotonic()
        self.pipeline: Pipeline | None = None
        self.flushed: Offsets = {}
        #: Offsets already counted in the metrics, kept across restores (see Pipeline).
        self.counted: Offsets = {}
        self.signer = settings.security.signer()
        if self.signer is None:
            log.warning("security.request_key is not set: any request written to %s is "
                        "trusted as the daemon's own", settings.topics.requests)
        self.connection: Connection | None = None
        self.kafka_error: str | None = None
        self.http: HealthServer | None = None
        self._next_probe = 0.0
        self._last_checkpoint = time.monotonic()
        self._labels_since_checkpoint = 0
        self.progress = Progress(time.monotonic())
        self._lag_total = 0
        #: Set by each restore: its offsets are checked against the topics once connected.
        self._restore_unchecked = False
        self._gaps_told: set[RestoreGap] = set()
        self.retention_gaps = Counter(
            "stream_al_retention_gap_messages", "Messages a restored checkpoint still needed "
            "that retention had deleted from the topic", ["topic"], registry=self.registry)

    # -- lifecycle -------------------------------------------------------------------

    def run(self) -> int:
        self.store.prepare()
        self._restore(announce=True)
        self.http = HealthServer(self.settings.http.host, self.settings.http.port,
                                 self.registry, self.readiness, self.liveness,
                                 port_hint="set http.port (env STREAM_AL_HTTP__PORT; 0 picks "
                                 "a free port)").start()
        log.info("serving /metrics, /healthz, /readyz on port %d", self.http.port)
        # Like every command; but where they exit 3, the daemon keeps retrying (its broker
        # may come up after it, or be away): each failed attempt logs why, naming the fix.
        announce(self.settings.kafka, BOOTSTRAP_TIMEOUT_MS)
        backoff = 1.0
        try:
            while not self.stop_requested.is_set():
                self._last_step = time.monotonic()
                try:
                    self._step(self._connect())
                    backoff = 1.0
                except StateDirError as error:
                    # The disk, not Kafka: the connection and the state in memory stay.
                    log.error("%s; retrying in %.0f s", error, backoff)
                    self.stop_requested.wait(backoff)
                    backoff = min(backoff * 2, _MAX_BACKOFF_S)
                except StreamAlError as error:  # ClientError and BrokerUnavailable among them
                    if not error.retriable:
                        log.error("Kafka refused a request and says retrying will not help "
                                  "(%r): check the settings and the ACLs", error)
                    self._recover(error, backoff)
                    backoff = min(backoff * 2, _MAX_BACKOFF_S)
            if (signum := self.stop_requested.signalled) is not None:
                log.info("signal %d: batch in hand done; checkpointing, then stopping", signum)
            self._shutdown()
        finally:
            self.http.stop()
        return 0

    def install_signal_handlers(self) -> None:
        # The handler only records the signal (see consumers.stopping): the loop says so.
        self.stop_requested.install(signal.SIGTERM, signal.SIGINT)

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
        connection = self.connection
        if connection is None:
            error = self.kafka_error
            reasons.append(f"Kafka unavailable, retrying: {error}" if error
                           else "not connected to Kafka yet")
        if connection is None or not connection.assignment():
            reasons.append("no input partitions assigned")
        if (write_error := self.store.write_error) is not None:
            reasons.append(write_error)  # "state dir … not writable: …"
        return not reasons, reasons

    def _recover(self, error: Exception, backoff: float) -> None:
        self.kafka_error = str(error) or type(error).__name__
        log.warning("Kafka unavailable (%s); retrying in %.0f s", self.kafka_error, backoff)
        self._disconnect()
        self._restore()  # resume from the last checkpoint: nothing half-done
        self.stop_requested.wait(backoff)

    # -- state -----------------------------------------------------------------------

    def _restore(self, announce: bool = False) -> None:
        """Load the last checkpoint (or start fresh). Logged at INFO at start only: after
        an outage the daemon restores on every retry, and one line a retry is noise."""
        checkpoint = self.store.load()
        topics = self.settings.topics
        say = log.info if announce else log.debug
        if checkpoint is None:
            self.pipeline = Pipeline(Learner(self.settings.learner), topics, self.metrics,
                                     counted=self.counted, signer=self.signer)
            say("no checkpoint in %s: starting fresh", self.settings.state_dir)
        else:
            self.pipeline = Pipeline.from_checkpoint(checkpoint, topics, self.metrics,
                                                     counted=self.counted, signer=self.signer)
            say("restored checkpoint of %s from %s (%d models, %d open queries)",
                checkpoint.taken_at, self.store.loaded_from,
                len(self.pipeline.learner.registry), len(self.pipeline.learner.pending))
            # The checkpoint holds the settings it was written with; the config file's
            # (possibly edited since) are the ones a person expects in force.
            changed = self.pipeline.learner.adopt(self.settings.learner)
            if changed:
                say("learner settings changed since that checkpoint, in force from now "
                    "(models, labels and open queries kept): %s", ", ".join(changed))
        self.flushed = dict(self.pipeline.offsets)
        self._restore_unchecked = True

    def _check_restore(self, connection: Connection) -> None:
        """Warn when the topics no longer hold what the restored checkpoint resumes at
        (once per gap: a restore after each outage would otherwise repeat it)."""
        self._restore_unchecked = False
        if not self.flushed:
            return
        try:
            earliest = connection.earliest(list(self.flushed))
        except ClientError as error:  # advisory: the loop finds out about Kafka itself
            log.debug("could not read the topics' earliest offsets (%s)", error)
            return
        topics = self.settings.topics
        for gap in restore_gaps(self.flushed, earliest):
            if gap in self._gaps_told:
                continue
            self._gaps_told.add(gap)
            what = {topics.labels: "labels never learnt", topics.requests:
                    "requests whose labels will not be learnt"}.get(gap.topic,
                                                                    "records never scored")
            log.warning("%s", gap.describe(what))
            self.retention_gaps.labels(gap.topic).inc(gap.deleted)

    def checkpoint(self, connection: Connection) -> None:
        """Flush, save state and offsets together, then tell the group (asynchronously)."""
        self._save(connection)
        connection.commit_async(self._flushed_offsets(connection.assignment()))

    def _save(self, connection: Connection, flush_timeout_s: float = _CHECKPOINT_FLUSH_S
              ) -> None:
        assert self.pipeline is not None
        # Never checkpoint past a prediction that was not delivered.
        self._settle(connection, flush_timeout_s)
        try:
            size = self.store.save(self.pipeline.checkpoint(datetime.now(UTC)))
        except StateDirError as error:
            # Neither fatal nor Kafka's fault, so not raised: from on_revoked it would abort
            # the rebalance (kafka-python runs the callback again on every poll), and in the
            # loop it would drop the connection. The last checkpoint stands (the truth on a
            # restart), the loop keeps serving, /readyz says why, and the next attempt
            # waits a whole checkpoint interval instead of coming at every turn.
            self._last_checkpoint = time.monotonic()
            self._labels_since_checkpoint = 0
            log.error("%s; the last checkpoint stands (what came since is scored again "
                      "after a restart or a rebalance); retrying at the next checkpoint", error)
            return
        self.flushed = dict(self.pipeline.offsets)
        self.metrics.mark_checkpoint(time.time())
        self._last_checkpoint = time.monotonic()
        self._labels_since_checkpoint = 0
        log.debug("checkpoint saved (%d bytes)", size)

    def _settle(self, connection: Connection, flush_timeout_s: float) -> None:
        """Flush; a message the broker refused for good (too large, say) becomes a dead
        letter of the message it answered, and the loop goes on. Anything else not
        delivered is an outage: back off and resume from the last checkpoint."""
        assert self.pipeline is not None
        sink = connection.sink
        for attempt in range(2):  # the dead letters themselves are bounded in size
            sink.flush(flush_timeout_s)
            failures = sink.take_failures()
            lost = [f for f in failures if f.retriable]
            if lost:
                raise BrokerUnavailable(f"{len(lost)} messages were not delivered, e.g. "
                                        f"{lost[0].tag.topic}: {lost[0].reason}")
            if not failures:
                return
            now = datetime.now(UTC)
            for refused in failures:
                log.error("the broker refused a %s message for %s for good (%s): sending "
                          "a dead letter instead", refused.tag.topic, refused.tag.source,
                          refused.reason)
                if attempt == 0:
                    sink.send(self.pipeline.dead_letter_for(refused.tag, refused.reason, now))

    def _flushed_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self.flushed[(tp.topic, tp.partition)]
                for tp in partitions if (tp.topic, tp.partition) in self.flushed}

    # -- the group's rebalances (``consumers.kafka.gateway.RebalanceListener``), called on
    # the polling thread (kafka-python: its I/O loop while the main thread waits in poll)

    def on_revoked(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        """Before partitions move, checkpoint; the client commits what this returns and
        waits for it: the next owner (whose join waits for ours) resumes where we
        stopped, not at our previous checkpoint, so nothing is scored or asked twice."""
        for tp in partitions:
            self.metrics.forget_partition(tp.topic, tp.partition)
        connection = self.connection
        if connection is None:
            return {}  # closing after a failure, or stopping: the last checkpoint stands
        self._save(connection)
        return self._flushed_offsets(partitions)

    def on_commit_failed(self, offsets: Mapping[TopicPartition, int],
                         error: ClientError) -> None:
        log.warning("commit on revoke failed (%s): the next owner of %s may score "
                    "some records again", error, sorted(offsets))

    def on_assigned(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        """Resume each partition where our state stands (the checkpoint at start, what we
        processed later), so position and state agree; a partition we hold no state
        for starts at the group's committed offset."""
        assert self.pipeline is not None
        starts = {tp: offset for tp in partitions
                  if (offset := self.pipeline.offsets.get((tp.topic, tp.partition))) is not None}
        names = ", ".join(f"{tp.topic}[{tp.partition}]" for tp in sorted(partitions))
        log.info("assigned %d input partitions: %s", len(partitions), names or "none")
        return starts

    def on_lost(self, partitions: list[TopicPartition]) -> None:
        # Evicted: the group may already have given them away, so no commit; our state
        # stays whole and on_assigned puts us back where it stands.
        log.warning("lost partitions %s (session expired)", sorted(partitions))

    # -- the loop --------------------------------------------------------------------

    def _connect(self) -> Connection:
        if self.connection is None:
            self.connection = Connection.open(self.settings, self.flushed, self)
            if self.kafka_error is not None:
                log.info("reconnected to Kafka at %s",
                         ",".join(self.settings.kafka.bootstrap_servers))
            self.kafka_error = None
            if self._restore_unchecked:
                self._check_restore(self.connection)
        return self.connection

    def _step(self, connection: Connection) -> None:
        assert self.pipeline is not None
        if time.monotonic() >= self._next_probe:
            connection.probe()
            self._next_probe = time.monotonic() + _PROBE_EVERY_S
        counts = step(self.pipeline, connection.logs, connection.inputs, connection.sink,
                      datetime.now(UTC), self.settings.poll_max_records)
        if counts.records or counts.labels:
            # A poll that brought messages is a broker that answered: the probe is for
            # a quiet one (a request behind the consumer's long poll costs up to its wait).
            self._next_probe = time.monotonic() + _PROBE_EVERY_S
        self._labels_since_checkpoint += counts.labels
        self.progress.add(counts)
        if self.progress.due(time.monotonic()):
            log.info("%s", self.progress.line(self._lag_total))
        if self._checkpoint_due():
            self.checkpoint(connection)
            self._update_gauges(connection)

    def _checkpoint_due(self) -> bool:
        every = self.settings.checkpoint
        return (time.monotonic() - self._last_checkpoint >= every.interval_s
                or self._labels_since_checkpoint >= every.every_labels)

    def _update_gauges(self, connection: Connection) -> None:
        assert self.pipeline is not None
        self.pipeline.publish_state(datetime.now(UTC))
        lags = connection.lag()
        for tp, lag in lags.items():
            self.metrics.set_consumer_lag(tp.topic, tp.partition, lag)
        self._lag_total = sum(lags.values())

    def _shutdown(self) -> None:
        connection = self.connection
        try:
            if connection is not None:
                self._save(connection, flush_timeout_s=_STOP_FLUSH_S)
                # On the main thread a commit may block: the next owner of our
                # partitions must find it before it starts.
                offsets = self._flushed_offsets(connection.assignment())
                if offsets:
                    connection.consumer.commit(offsets, asynchronous=False,
                                               timeout_ms=_FINAL_COMMIT_MS)
        except StreamAlError as error:
            log.error("final checkpoint skipped, Kafka unavailable (%s); the last one "
                      "stands and the records since will be processed again", error)
        self._disconnect()
        log.info("stopped cleanly")

    def _disconnect(self) -> None:
        # Dropped before closing: a revoke callback during close sees no connection and
        # leaves the last checkpoint standing.
        connection, self.connection = self.connection, None
        if connection is not None:
            connection.close()
