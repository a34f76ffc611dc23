"""The body of ``stream-al bench soak``: the broker, the daemon and the traffic, the
disruptions on schedule while sampling, the drain, then the verdict and the JSON."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections import deque
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from consumers.bench.soak.accounting import (
    Cumulative,
    Disruption,
    Sample,
    Stall,
    find_stalls,
    label_accounting,
    prediction_accounting,
    recoveries,
    rss_by_process,
    rss_trend,
    verdict,
)
from consumers.bench.soak.options import Row, SoakError, SoakOptions
from consumers.bench.soak.processes import (
    HANDLED,
    Broker,
    DaemonProcess,
    GivenBroker,
    OwnBroker,
)
from consumers.bench.soak.schedule import Event, plan
from consumers.bench.soak.traffic import BurstOracle, PredictionWatcher, SteadyProducer, read_keys
from consumers.bench.throughput.daemon import free_port
from consumers.bench.throughput.loops import ensure_topics
from consumers.bench.throughput.options import bench_topics, daemon_settings, learner_config
from consumers.bench.throughput.run import code_version, machine
from consumers.daemon.checkpoints import CheckpointStore
from consumers.kafka.topics import delete_topics, topic_plan
from consumers.settings import KafkaSettings, Settings

#: In the drain the oracle answers this often, so the last queries need not wait a burst.
_DRAIN_BURST_S = 5.0
_LINE_EVERY_S = 60.0
#: Disruptions at least this far apart, so each one's recovery can be told apart.
_SPACING_S = 30.0


def run_soak(options: SoakOptions, console: Console) -> Row:
    """Start a broker unless one is given, soak, write the JSON; return the results."""
    load_before = os.getloadavg()
    broker: Broker = (GivenBroker(options.bootstrap_servers) if options.bootstrap_servers
                      else OwnBroker(f"soak-{os.getpid()}"))
    try:
        with tempfile.TemporaryDirectory(prefix="stream-al-soak-") as workdir:
            soak = Soak(options, broker, Path(workdir), console)
            try:
                result = soak.run()
            finally:
                soak.keep_log(options.out.with_name(f"{options.out.stem}-daemon.log"))
                if not broker.can_stop:  # someone else's broker: leave it as it was
                    delete_topics(soak.kafka, soak.run_id)
    finally:
        broker.close()
    result["client"] = options.client
    result["machine"] = machine(broker.description, load_before, os.getloadavg())
    result["code"] = code_version()
    options.out.parent.mkdir(parents=True, exist_ok=True)
    options.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    return result



class Soak:
    """One soak on fresh topics: the daemon, its traffic and the record of both."""

    def __init__(self, options: SoakOptions, broker: Broker, workdir: Path,
                 console: Console) -> None:
        self.options, self.broker, self.console = options, broker, console
        self.kafka = KafkaSettings.model_validate({"bootstrap_servers": broker.bootstrap,
                                                   "client_id": "stream-al-soak",
                                                   "client": options.client})
        self.run_id = f"soak-{uuid.uuid4().hex[:8]}"
        self.topics = bench_topics(f"{self.run_id}.parametric", self.run_id)
        self.settings: Settings = daemon_settings(
            self.kafka, self.topics, learner_config(options.template, options.budget),
            workdir / "state", free_port())
        self.daemon = DaemonProcess(self.settings, workdir)
        self.producer = SteadyProducer(self.kafka, self.topics.inputs[0], options.records,
                                       options.rate, options.seed)
        self.oracle = BurstOracle(self.kafka, self.topics.requests, self.topics.labels,
                                  self.producer.truth, options.label_burst_every_s)
        self.watcher = PredictionWatcher(self.kafka, self.topics.predictions)
        self.samples: list[Sample] = []
        self.disruptions: list[Disruption] = []
        self.unexpected_exits: list[Row] = []
        self.sums = Cumulative()
        self.pending_queries: float | None = None
        self.events = plan(options.seconds, options.kill_every_s,
                           options.broker_stop_every_s if broker.can_stop else None,
                           options.quiet_tail_s, _SPACING_S)
        self._t0 = 0.0
        self._broker_cycle: threading.Thread | None = None
        self._broker_down_since: float | None = None
        self._broker_error: BaseException | None = None
        self._shown_at = 0.0

    def run(self) -> Row:
        ensure_topics(self.kafka, topic_plan(self.topics, self.options.partitions))
        self.daemon.start()
        try:
            for thread in (self.watcher, self.oracle):
                thread.start()
            self._t0 = time.monotonic()
            self.producer.start()
            with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                          console=self.console, refresh_per_second=2) as progress:
                task = progress.add_task("soak", total=self.options.seconds)
                self._traffic(progress, task)
                self._drain(progress, task)
        finally:
            for stop in (self.producer.stop, self.oracle.stop, self.watcher.stop):
                stop.set()
            self.daemon.stop()
        return self._results()

    def keep_log(self, path: Path) -> None:
        """The daemon's log (every life of it) beside the results."""
        if self.daemon.log.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.daemon.log, path)

    # -- phases ----------------------------------------------------------------------

    def _traffic(self, progress: Progress, task: TaskID) -> None:
        pending = deque(self.events)
        while (t := self._now()) < self.options.seconds:
            if pending and t >= pending[0].at:
                self._disrupt(pending.popleft())
            self._sample()
            self._show(progress, task, t, "")
            self._check_threads()
            time.sleep(max(0.0, self.options.sample_every_s - (self._now() - t)))
        self.producer.stop.set()

    def _drain(self, progress: Progress, task: TaskID) -> None:
        """Until every record has a prediction and every query its label, or drain_s."""
        self.producer.join(timeout=180)
        if self._broker_cycle is not None:
            self._broker_cycle.join(timeout=180)
        self.oracle.every_s = _DRAIN_BURST_S
        deadline = time.monotonic() + self.options.drain_s
        while time.monotonic() < deadline and not self._drained():
            self._sample()
            self._check_threads()
            self._show(progress, task, self._now(), "draining · ")
            time.sleep(self.options.sample_every_s)
        self.oracle.stop.set()
        self.oracle.join(timeout=60)
        self._settle_labels()
        self.watcher.stop.set()
        self.watcher.join(timeout=60)

    def _drained(self) -> bool:
        produced = self.producer.acked
        return (not self.producer.is_alive() and self.producer.backlog == 0
                and len(produced) <= len(self.watcher.predicted)
                and not self.oracle.held and self.pending_queries == 0)

    def _settle_labels(self) -> None:
        """After the oracle's last send, until the daemon's label counters stop moving."""
        last: float | None = None
        for _ in range(15):
            self._sample()
            applied = self.sums.totals.get("labels_applied", 0.0) + self.sums.totals.get(
                "labels_duplicate", 0.0)
            if applied == last and self.pending_queries == 0:
                return
            last = applied
            time.sleep(self.options.sample_every_s)

    # -- disruptions -----------------------------------------------------------------

    def _disrupt(self, event: Event) -> None:
        if event.kind == "kill":
            t = self._now()
            self.daemon.kill()
            self.daemon.start()
            self.disruptions.append(Disruption("kill", t, t))
        elif self._broker_cycle is None or not self._broker_cycle.is_alive():
            # In a thread: a stop, the downtime and a start take a minute of sampling.
            self._broker_cycle = threading.Thread(target=self._stop_broker, daemon=True,
                                                  name="soak-broker")
            self._broker_cycle.start()

    def _stop_broker(self) -> None:
        self._broker_down_since = start = self._now()
        try:
            self.broker.stop()
            time.sleep(self.options.broker_down_s)
            self.broker.start()
        except BaseException as error:  # raised on the main thread by _check_threads
            self._broker_error = error
            return
        self.disruptions.append(Disruption("broker", start, self._now()))
        self._broker_down_since = None

    def _check_threads(self) -> None:
        if self._broker_error is not None:
            raise SoakError(f"the broker did not come back: {self._broker_error}")
        for thread in (self.producer, self.oracle, self.watcher):
            if thread.error is not None:
                raise SoakError(f"{thread.name} failed: {thread.error!r}") from thread.error
        if not self.daemon.alive():
            # Not ours: note it, and restart as an orchestrator would.
            t = self._now()
            code = self.daemon.process.returncode if self.daemon.process else None
            self.unexpected_exits.append({"t": t, "returncode": code})
            self.daemon.start()
            self.disruptions.append(Disruption("exit", t, t))

    # -- samples ---------------------------------------------------------------------

    def _now(self) -> float:
        return time.monotonic() - self._t0

    def _sample(self) -> None:
        pid = self.daemon.pid
        scraped = self.daemon.scrape()
        handled = None
        if scraped is not None and pid is not None:
            self.pending_queries = scraped.pop("pending_queries", None)
            self.sums.update(pid, scraped)
            handled = sum(scraped[k] for k in HANDLED)
        self.samples.append(Sample(
            t=self._now(), produced=len(self.producer.acked),
            predicted=len(self.watcher.predicted), labels_sent=self.oracle.labels_sent,
            sent=self.producer.sent, handled=handled,
            rss_mb=self.daemon.rss_mb(), pid=pid, daemon=self.sums.totals))

    def _show(self, progress: Progress, task: TaskID, t: float, prefix: str) -> None:
        """The bar on a terminal; elsewhere (nohup, CI) a line a minute instead."""
        status = prefix + self._status()
        progress.update(task, completed=min(t, self.options.seconds), description=status)
        if not self.console.is_terminal and t - self._shown_at >= _LINE_EVERY_S:
            self._shown_at = t
            self.console.print(f"{t / 60:5.1f} min · {status}")

    def _status(self) -> str:
        last = self.samples[-1]
        rss = f"{last.rss_mb:.0f} MB" if last.rss_mb is not None else "—"
        stalls = len(self._stalls())
        return (f"in {last.produced:,} · predicted {last.predicted:,} · labels "
                f"{last.labels_sent:,} · restarts {self.daemon.starts - 1} · "
                f"stalls {stalls} · RSS {rss}")

    def _recoveries(self) -> list[Row]:
        disruptions = list(self.disruptions)
        if self._broker_down_since is not None:  # a broker stop under way
            disruptions.append(Disruption("broker", self._broker_down_since, self._now()))
        return recoveries(self.samples, disruptions, self.options.recovery_s)

    def _stalls(self) -> list[Stall]:
        windows = [(r["start"], r["excused_until"]) for r in self._recoveries()]
        return find_stalls(self.samples, windows, self.options.stall_s)

    # -- results ---------------------------------------------------------------------

    def _results(self) -> Row:
        keys, messages = read_keys(self.kafka, self.topics.predictions)
        predictions = prediction_accounting(self.producer.acked, keys)
        predictions["prediction_messages"] = messages
        totals = self.sums.totals
        labels = label_accounting(self.oracle.labels_sent, len(self.oracle.queries_answered),
                                  self._learned(),
                                  {k: v for k, v in totals.items() if k.startswith("labels_")})
        stalls = self._stalls()
        recovered = self._recoveries()
        found = verdict(predictions, labels, stalls, recovered)
        if self.unexpected_exits:
            found["ok"] = False
            found["reasons"].append(f"the daemon exited {len(self.unexpected_exits)} times "
                                    "on its own")
        return {"run_id": self.run_id, "settings": self._settings(), "verdict": found,
                "predictions": predictions, "labels": labels,
                "stalls": [{**dataclasses.asdict(s), "seconds": s.seconds} for s in stalls],
                "recoveries": recovered, "restarts": self._restarts(),
                "rss": {"overall": rss_trend([s.rss_mb for s in self.samples
                                              if s.rss_mb is not None]),
                        "by_process": rss_by_process(self.samples)},
                "daemon_counters_summed": totals,
                "producer": {"handed_to_producer": self.producer.sent,
                             "acknowledged": len(self.producer.acked),
                             "failed_sends_retried": self.producer.failures},
                "oracle": {"requests_read": self.oracle.requests_read,
                           "bursts": [[at, n] for at, n in self.oracle.bursts]},
                "events": [dataclasses.asdict(e) for e in self.events],
                "samples": [dataclasses.asdict(s) for s in self.samples]}

    def _learned(self) -> int | None:
        """Labels the final checkpoint has learnt, over every model."""
        checkpoint = CheckpointStore(self.settings.state_dir).load()
        if checkpoint is None:
            return None
        registry = checkpoint.learner.registry
        return sum(sum(registry.get(key).class_counts.values()) for key in registry.keys())

    def _restarts(self) -> Row:
        kinds = [d.kind for d in self.disruptions]
        return {"kills": kinds.count("kill"), "broker_stops": kinds.count("broker"),
                "unexpected_exits": self.unexpected_exits, "daemon_starts": self.daemon.starts}

    def _settings(self) -> Row:
        fields = dataclasses.asdict(self.options)
        fields.update(out=str(self.options.out),
                      plot=str(self.options.plot) if self.options.plot else None,
                      broker=self.broker.description, broker_stops=self.broker.can_stop,
                      daemon="stream-al run, own process, restarted after each kill -9")
        return fields
