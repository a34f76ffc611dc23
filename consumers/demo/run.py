"""``stream-al demo``: the whole loop in one process on a simulated floor.

A synthetic floor publishes parametric records onto the in-memory bus; the daemon's
pipeline scores them and queries within budget; a simulated oracle answers after a
delay; labels flow back and are learnt. /metrics is served while it runs. At the end
the same stream is replayed with random sampling and with every label, for the
summary table and the learning-curve PNG.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from prometheus_client import CollectorRegistry
from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from consumers.bench.plots import demo_curves
from consumers.daemon.checkpoints import CheckpointStore
from consumers.daemon.http import HealthServer
from stream_al.budget import BudgetConfig
from stream_al.bus import InMemoryConsumer
from stream_al.codec import decode_prediction
from stream_al.evaluation import LearningCurve
from stream_al.gates import GateConfig
from stream_al.inmemory import InMemoryLoop
from stream_al.learner import Learner, LearnerConfig
from stream_al.metrics import Metrics
from stream_al.oracle import SimulatedOracle
from stream_al.pipeline import Pipeline
from stream_al.records import ParametricRecord
from stream_al.replay import ReplayResult, replay
from stream_al.simulate.floor import FloorConfig, FloorSimulator
from stream_al.topics import TopicNames


@dataclass(frozen=True)
class DemoOptions:
    records: int = 30_000
    seed: int = 7
    out: Path = Path("demo-out")
    metrics_port: int = 9108
    strategy: str = "hybrid"
    budget: float = 0.1
    oracle_delay_s: float = 60.0
    rate: float | None = None
    hold_s: float = 0.0
    #: Devices per step; the oracle answers at step ends, so a large step delays labels
    #: beyond the replays the demo is compared with (250 put hybrid below random).
    chunk: int = 50


@dataclass
class DemoState:
    """What the live view and the summary show."""

    curve: LearningCurve
    processed: int = 0
    hits: int = 0
    labels: int = 0
    queries: dict[str, int] = field(default_factory=dict)


def run_demo(options: DemoOptions, console: Console) -> dict[str, object]:
    floor = FloorConfig(run_length=options.records)
    stream = list(FloorSimulator(floor, options.seed).stream(options.records))
    truth = {s.record["record_id"]: s.truth for s in stream}
    config = LearnerConfig(gate=GateConfig.model_validate({"strategy": options.strategy}),
                           budget=BudgetConfig(fraction=options.budget), seed=options.seed)
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    pipeline = Pipeline(Learner(config), TopicNames(), metrics)
    oracle = SimulatedOracle(lambda r: truth.get(r.record_id),
                             timedelta(seconds=options.oracle_delay_s), seed=options.seed)
    loop = InMemoryLoop(pipeline, oracle)
    server = HealthServer("127.0.0.1", options.metrics_port, registry, lambda: (True, []),
                          port_hint="use --metrics-port (0 picks a free port)").start()
    console.print(f"[bold]stream-al demo[/]: {options.records:,} devices, {options.strategy} "
                  f"gate, budget {options.budget:.0%}, metrics on "
                  f"http://127.0.0.1:{server.port}/metrics")
    state = DemoState(LearningCurve.for_run(options.records))
    try:
        _drive(stream, loop, pipeline, truth, state, options, console)
        summary = _compare(stream, config, options, state, console)
        if options.hold_s > 0:
            console.print(f"serving /metrics for {options.hold_s:.0f} more seconds")
            time.sleep(options.hold_s)
    finally:
        server.stop()
    return summary


def _drive(stream: list, loop: InMemoryLoop, pipeline: Pipeline,  # type: ignore[type-arg]
           truth: dict[str, str], state: DemoState, options: DemoOptions,
           console: Console) -> None:
    predictions = InMemoryConsumer(loop.bus, [pipeline.topics.predictions])
    progress = Progress(TextColumn("devices"), BarColumn(), MofNCompleteColumn(),
                        TimeRemainingColumn(), console=console)
    task = progress.add_task("devices", total=len(stream))
    topic = pipeline.topics.inputs[0]
    store = _Checkpoints(options.out / "state")
    started = time.monotonic()
    with Live(Group(progress, _view(state, pipeline)), console=console,
              refresh_per_second=4) as live:
        for start in range(0, len(stream), options.chunk):
            chunk = stream[start:start + options.chunk]
            for simulated in chunk:
                record = simulated.record
                loop.publish(topic, record["record_id"].encode(),
                             json.dumps(record).encode())
            now = ParametricRecord.model_validate(chunk[-1].record).ts
            while loop.step(now, max_records=options.chunk):
                pass
            _score(predictions, truth, state, pipeline)
            _publish(loop, pipeline, store, now)
            progress.update(task, completed=start + len(chunk))
            live.update(Group(progress, _view(state, pipeline)))
            _pace(options.rate, start + len(chunk), started)
        _finish(loop, now, options)
        _score(predictions, truth, state, pipeline)
        store.last = float("-inf")
        _publish(loop, pipeline, store, now)
        live.update(Group(progress, _view(state, pipeline)))
    console.line()


def _publish(loop: InMemoryLoop, pipeline: Pipeline, store: _Checkpoints,
             now: datetime) -> None:
    """State gauges, the in-memory consumer's lag, and a checkpoint now and then: the
    same signals the daemon gives, so the dashboard shows the demo as it would a floor."""
    pipeline.publish_state(now)
    if pipeline.metrics is None:
        return
    for (topic, partition), position in loop.inputs.positions.items():
        end = loop.bus.end_offsets(topic)[partition]
        pipeline.metrics.set_consumer_lag(topic, partition, end - position)
    store.maybe_save(pipeline)


class _Checkpoints:
    """Checkpoints every few wall-clock seconds into the output folder."""

    def __init__(self, folder: Path, every_s: float = 5.0) -> None:
        self.store = CheckpointStore(folder)
        self.every_s = every_s
        self.last = float("-inf")

    def maybe_save(self, pipeline: Pipeline) -> None:
        if time.monotonic() - self.last < self.every_s:
            return
        self.store.prepare()
        self.store.save(pipeline.checkpoint(datetime.now(UTC)))
        self.last = time.monotonic()
        if pipeline.metrics is not None:
            pipeline.metrics.mark_checkpoint(time.time())


def _finish(loop: InMemoryLoop, now: datetime, options: DemoOptions) -> None:
    """Let the oracle answer what is still open, as the floor would after the run."""
    end = now + timedelta(seconds=options.oracle_delay_s + 1)
    loop.step(end)
    loop.step(end)


def _pace(rate: float | None, done: int, started: float) -> None:
    if rate:
        ahead = done / rate - (time.monotonic() - started)
        if ahead > 0:
            time.sleep(ahead)


def _score(predictions: InMemoryConsumer, truth: dict[str, str], state: DemoState,
           pipeline: Pipeline) -> None:
    registry = pipeline.learner.registry
    state.labels = sum(registry.get(key).version for key in registry.keys())
    for message in predictions.poll(1_000_000):
        prediction = decode_prediction(message.value or b"")
        hit = prediction.predicted == truth[prediction.record_id]
        state.processed += 1
        state.hits += hit
        state.curve.update(hit, state.labels)
    state.queries = {}
    for policy in pipeline.learner.policies.values():
        for reason, count in policy.queries.items():
            state.queries[reason] = state.queries.get(reason, 0) + count


def _view(state: DemoState, pipeline: Pipeline) -> Table:
    learner = pipeline.learner
    table = Table(title="live", show_header=True)
    for header in ("model", "labels", "threshold", "budget spent", "audit acc",
                   "queried acc"):
        table.add_column(header, justify="right")
    for key in sorted(learner.registry.keys()):
        windows = learner.policies[key].scores.rolling() if key in learner.policies else {}
        table.add_row(key, str(learner.registry.get(key).version),
                      f"{learner.threshold(key):.3f}", f"{learner.budget.spent_ratio(key):.3f}",
                      _fmt(windows.get("audit")), _fmt(windows.get("queried")))
    accuracy = state.hits / state.processed if state.processed else 0.0
    asked = " · ".join(f"{reason} {count:,}" for reason, count in sorted(state.queries.items()))
    table.caption = (f"devices {state.processed:,} · prequential accuracy {accuracy:.3f} · "
                     f"labels {state.labels:,} · pending {len(learner.pending):,}\n"
                     f"queries: {asked or 'none yet'}")
    return table


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _compare(stream: list, config: LearnerConfig, options: DemoOptions,  # type: ignore[type-arg]
             state: DemoState, console: Console) -> dict[str, object]:
    console.print("replaying the same floor with random sampling and with every label …")
    records = [(ParametricRecord.model_validate(s.record), s.truth) for s in stream]
    delay = int(options.oracle_delay_s * 1000 / FloorConfig().device_interval_ms)
    random_config = config.model_copy(update={"gate": GateConfig(strategy="random")})
    all_config = config.model_copy(update={
        "gate": GateConfig(strategy="fixed", threshold=0.0),
        "budget": BudgetConfig(fraction=1.0, audit_fraction=0.0)})
    random_run = replay(records, random_config, len(records), delay=delay)
    all_run = replay(records, all_config, len(records), delay=delay)
    active_accuracy = state.hits / max(1, state.processed)
    summary = _summary_table(state, active_accuracy, random_run, all_run, options)
    console.print(summary)
    options.out.mkdir(parents=True, exist_ok=True)
    png = options.out / "learning-curve.png"
    demo_curves(png, [(f"{options.strategy} B={options.budget:g} (this run)", state.curve),
                      (f"random B={options.budget:g}", random_run.curve),
                      ("all labels", all_run.curve)],
                f"stream-al demo: {options.records:,} devices, oracle delay "
                f"{options.oracle_delay_s:g} s")
    result = {"records": state.processed, "labels_active": state.labels,
              "accuracy_active": active_accuracy, "labels_random": random_run.labels_used,
              "accuracy_random": random_run.accuracy, "labels_all": all_run.labels_used,
              "accuracy_all": all_run.accuracy, "plot": str(png)}
    (options.out / "summary.json").write_text(json.dumps(result, indent=1) + "\n")
    console.print(f"learning curve: {png}\nsummary: {options.out / 'summary.json'}")
    return result


def _summary_table(state: DemoState, active_accuracy: float, random_run: ReplayResult,
                   all_run: ReplayResult, options: DemoOptions) -> Table:
    table = Table(title="summary: same devices, same oracle delay")
    for header in ("run", "labels used", "share of devices", "prequential accuracy",
                   "of all-labels accuracy"):
        table.add_column(header, justify="right")
    for name, labels, accuracy in (
            (f"{options.strategy} (this run)", state.labels, active_accuracy),
            ("random, same budget", random_run.labels_used, random_run.accuracy),
            ("all labels", all_run.labels_used, all_run.accuracy)):
        table.add_row(name, f"{labels:,}", f"{labels / max(1, state.processed):.1%}",
                      f"{accuracy:.4f}", f"{accuracy / max(all_run.accuracy, 1e-9):.1%}")
    return table

