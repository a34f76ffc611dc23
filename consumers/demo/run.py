"""``stream-al demo``: the whole loop in one process on a simulated floor.

A synthetic floor publishes parametric records onto the in-memory bus; the daemon's
pipeline scores them and queries within budget; a simulated oracle answers after a
delay; labels flow back and are learnt. /metrics is served while it runs.

Beside the active strategy, two more pipelines see the same devices in the same steps,
each with its own oracle of the same delay: a random baseline paced to the active arm's
label count (``consumers.demo.arms``) and a learner asking about every device. The
summary table and the PNG compare the three.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry
from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from consumers.bench.plots import DemoLine, demo_curves
from consumers.daemon.checkpoints import CheckpointStore
from consumers.daemon.http import HealthServer
from consumers.demo.arms import Arm, Pace, PacedRandomLearner
from stream_al.budget import BudgetConfig
from stream_al.evaluation import annotation_savings, labels_to_reach
from stream_al.gates import GateConfig
from stream_al.learner import Learner, LearnerConfig
from stream_al.metrics import Metrics
from stream_al.oracle import SimulatedOracle
from stream_al.pipeline import Pipeline
from stream_al.records import ParametricRecord
from stream_al.simulate.base import SimulatedRecord
from stream_al.simulate.floor import FloorConfig, FloorSimulator
from stream_al.simulate.parametric import RARE_MODE

#: Annotation savings compare the labels each arm needs to reach this share of the
#: all-labels arm's accuracy (as ``bench labels`` does).
SAVINGS_TARGET = 0.95


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
    #: (every arm steps alike, so none is favoured, but all learn later).
    chunk: int = 50


@dataclass(frozen=True)
class DemoArms:
    active: Arm
    random: Arm
    every: Arm
    pace: Pace

    def all(self) -> tuple[Arm, Arm, Arm]:
        return self.active, self.random, self.every


@dataclass(frozen=True)
class Floor:
    """The simulated devices and what only the simulator knows about them."""

    stream: list[SimulatedRecord]
    truth: dict[str, str]
    rare_mode_begins: int  # the first device that may carry the rare failure mode
    rare_mode_first: int | None  # the first device that does
    device_interval_ms: int


def simulate_floor(options: DemoOptions) -> Floor:
    config = FloorConfig(run_length=options.records)
    simulator = FloorSimulator(config, options.seed)
    stream = list(simulator.stream(options.records))
    first = next((index for index, s in enumerate(stream) if s.mode == RARE_MODE), None)
    return Floor(stream, {s.record["record_id"]: s.truth for s in stream},
                 simulator.rare_mode_begins, first, config.device_interval_ms)


def run_demo(options: DemoOptions, console: Console) -> dict[str, object]:
    registry = CollectorRegistry()
    metrics = Metrics(registry)  # served from the first scrape on, zeros until the run
    # The port first: one taken is an error at once, not after simulating the floor.
    server = HealthServer("127.0.0.1", options.metrics_port, registry, lambda: (True, []),
                          port_hint="use --metrics-port (0 picks a free port)").start()
    try:
        floor = simulate_floor(options)
        arms = _arms(options, floor, metrics)
        console.print(f"[bold]stream-al demo[/]: {options.records:,} devices, "
                      f"{options.strategy} gate, budget {options.budget:.0%}, beside it random "
                      "at the same label count and every label; metrics on "
                      f"http://127.0.0.1:{server.port}/metrics")
        _drive(floor, arms, options, console)
        summary = _compare(floor, arms, options, console)
        if options.hold_s > 0:
            console.print(f"serving /metrics for {options.hold_s:.0f} more seconds")
            time.sleep(options.hold_s)
    finally:
        server.stop()
    return summary


def _arms(options: DemoOptions, floor: Floor, metrics: Metrics) -> DemoArms:
    """The three pipelines; only the active one reports to /metrics."""
    config = LearnerConfig(gate=GateConfig.model_validate({"strategy": options.strategy}),
                           budget=BudgetConfig(fraction=options.budget), seed=options.seed)
    # Same budget, warm-up and audits as the active arm; only the gate differs.
    random_config = config.model_copy(update={"gate": GateConfig(strategy="random")})
    every_config = config.model_copy(update={
        "gate": GateConfig(strategy="fixed", threshold=0.0),
        "budget": BudgetConfig(fraction=1.0, audit_fraction=0.0)})
    total = len(floor.stream)

    def oracle() -> SimulatedOracle:
        # One per arm, all alike: an answer to one arm is no answer to another.
        return SimulatedOracle(lambda request: floor.truth.get(request.record_id),
                               timedelta(seconds=options.oracle_delay_s), seed=options.seed)

    pace = Pace()
    return DemoArms(
        Arm.start(f"{options.strategy} (this run)", Learner(config), oracle(), total, metrics),
        Arm.start("random, same labels", PacedRandomLearner(random_config, pace), oracle(),
                  total),
        Arm.start("all labels", Learner(every_config), oracle(), total), pace)


def _drive(floor: Floor, arms: DemoArms, options: DemoOptions, console: Console) -> None:
    stream = floor.stream
    progress = Progress(TextColumn("devices"), BarColumn(), MofNCompleteColumn(),
                        TimeRemainingColumn(), console=console)
    task = progress.add_task("devices", total=len(stream))
    store = _Checkpoints(options.out / "state")
    started = time.monotonic()
    active = arms.active
    with Live(Group(progress, _view(arms)), console=console, refresh_per_second=4) as live:
        for start in range(0, len(stream), options.chunk):
            chunk = stream[start:start + options.chunk]
            values = [(s.record["record_id"], json.dumps(s.record).encode()) for s in chunk]
            now = ParametricRecord.model_validate(chunk[-1].record).ts
            # The active arm first: the random arm is paced by its queries in this step.
            active.step(values, now, options.chunk)
            active.score(floor.truth, arms.pace)
            for arm in (arms.random, arms.every):
                arm.step(values, now, options.chunk)
                arm.score(floor.truth)
            _publish(active, store, now)
            progress.update(task, completed=start + len(chunk))
            live.update(Group(progress, _view(arms)))
            _pace(options.rate, start + len(chunk), started)
        for arm in arms.all():
            _finish(arm, now, options)
            arm.score(floor.truth)
        store.last = float("-inf")
        _publish(active, store, now)
        live.update(Group(progress, _view(arms)))
    console.line()


def _publish(arm: Arm, store: _Checkpoints, now: datetime) -> None:
    """State gauges, the in-memory consumer's lag, and a checkpoint now and then: the
    same signals the daemon gives, so the dashboard shows the demo as it would a floor."""
    pipeline, loop = arm.pipeline, arm.loop
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


def _finish(arm: Arm, now: datetime, options: DemoOptions) -> None:
    """Let the oracle answer what is still open, as the floor would after the run."""
    end = now + timedelta(seconds=options.oracle_delay_s + 1)
    arm.loop.step(end)
    arm.loop.step(end)


def _pace(rate: float | None, done: int, started: float) -> None:
    if rate:
        ahead = done / rate - (time.monotonic() - started)
        if ahead > 0:
            time.sleep(ahead)


def _view(arms: DemoArms) -> Table:
    learner = arms.active.learner
    table = Table(title="live", show_header=True)
    for header in ("model", "labels", "threshold", "budget spent", "audit acc",
                   "queried acc"):
        table.add_column(header, justify="right")
    for key in sorted(learner.registry.keys()):
        windows = learner.policies[key].scores.rolling() if key in learner.policies else {}
        table.add_row(key, str(learner.registry.get(key).version),
                      f"{learner.threshold(key):.3f}", f"{learner.budget.spent_ratio(key):.3f}",
                      _fmt(windows.get("audit")), _fmt(windows.get("queried")))
    asked = " · ".join(f"{reason} {count:,}"
                       for reason, count in sorted(arms.active.queries_by_reason().items()))
    lines = [f"devices {arms.active.scores.confusion.records:,} · pending "
             f"{len(learner.pending):,} · queries: {asked or 'none yet'}"]
    for arm in arms.all():
        scores = arm.scores
        lines.append(f"{arm.name}: labels {scores.labels:,} · accuracy "
                     f"{scores.confusion.accuracy:.3f} · balanced "
                     f"{scores.confusion.balanced_accuracy:.3f}")
    table.caption = "\n".join(lines)
    return table


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _compare(floor: Floor, arms: DemoArms, options: DemoOptions,
             console: Console) -> dict[str, object]:
    every = arms.every.scores.confusion
    accuracy_target = SAVINGS_TARGET * every.accuracy
    balanced_target = SAVINGS_TARGET * every.balanced_accuracy
    rows = {key: _measures(arm, accuracy_target, balanced_target)
            for key, arm in zip(("active", "random", "all"), arms.all(), strict=True)}
    savings = {
        "annotation_savings": annotation_savings(rows["active"]["labels_to_95"],
                                                 rows["random"]["labels_to_95"]),
        "annotation_savings_balanced": annotation_savings(
            rows["active"]["labels_to_95_balanced"], rows["random"]["labels_to_95_balanced"])}
    console.print(_summary_table(arms, rows, savings, floor))
    options.out.mkdir(parents=True, exist_ok=True)
    png = options.out / "learning-curve.png"
    demo_curves(png, [_line(arm, minority=every.minority) for arm in arms.all()],
                floor.rare_mode_begins, balanced_target,
                f"stream-al demo: {options.records:,} devices, B = {options.budget:g}, "
                f"oracle delay {options.oracle_delay_s:g} s")
    active, random, full = rows["active"], rows["random"], rows["all"]
    result: dict[str, Any] = {
        # The keys of earlier versions, unchanged in meaning (the random and all-labels
        # runs are now live arms beside the active one, no longer replays).
        "records": arms.active.scores.confusion.records,
        "labels_active": active["labels"], "accuracy_active": active["accuracy"],
        "labels_random": random["labels"], "accuracy_random": random["accuracy"],
        "labels_all": full["labels"], "accuracy_all": full["accuracy"], "plot": str(png),
        "strategy": options.strategy, "budget": options.budget,
        "oracle_delay_s": options.oracle_delay_s,
        "random_baseline": "live, paced to the active arm's query count",
        "all_labels_baseline": "live, every device asked",
        "label_gap": (random["labels"] - active["labels"]) / max(1, active["labels"]),
        "random_most_ahead": arms.pace.most_ahead,
        "savings_target": SAVINGS_TARGET,
        **savings,
        "rare_mode_begins": floor.rare_mode_begins,
        "rare_mode_first_device": floor.rare_mode_first,
    }
    for key, row in rows.items():
        for measure in ("queries", "balanced_accuracy", "escape_rate", "overkill",
                        "labels_to_95", "labels_to_95_balanced"):
            result[f"{measure}_{key}"] = row[measure]
    (options.out / "summary.json").write_text(json.dumps(result, indent=1) + "\n")
    console.print(f"learning curve: {png}\nsummary: {options.out / 'summary.json'}")
    return result


def _measures(arm: Arm, accuracy_target: float, balanced_target: float) -> dict[str, Any]:
    scores, confusion = arm.scores, arm.scores.confusion
    return {"labels": scores.labels, "queries": scores.queries,
            "accuracy": confusion.accuracy, "balanced_accuracy": confusion.balanced_accuracy,
            "escape_rate": confusion.escape_rate, "overkill": confusion.overkill,
            "labels_to_95": labels_to_reach(scores.curve.prequential(), accuracy_target),
            "labels_to_95_balanced": labels_to_reach(scores.balanced_by_labels(),
                                                     balanced_target)}


def _line(arm: Arm, minority: str | None) -> DemoLine:
    points = arm.scores.points
    escape = [None if minority is None or minority not in p.recent_recalls
              else 1.0 - p.recent_recalls[minority] for p in points]
    return DemoLine(arm.name, [p.devices for p in points], [p.recent_balanced for p in points],
                    escape, arm.scores.balanced_by_labels(), budgeted=arm.name != "all labels")


def _summary_table(arms: DemoArms, rows: dict[str, dict[str, Any]],
                   savings: dict[str, float | None], floor: Floor) -> Table:
    table = Table(title="summary: the same devices in the same order, each arm with its own "
                  "oracle of the same delay, all three live")
    table.add_column("run", no_wrap=True)
    for header in ("labels used", "of devices", "accuracy", "balanced acc", "escapes",
                   "overkill", "labels to 95 % acc", "savings", "labels to 95 % bal",
                   "savings (bal)"):
        table.add_column(header, justify="right")
    devices = max(1, arms.active.scores.confusion.records)
    for key, arm in zip(("active", "random", "all"), arms.all(), strict=True):
        row = rows[key]
        if key == "active":
            saved = (_percent(savings["annotation_savings"]),
                     _percent(savings["annotation_savings_balanced"]))
        else:
            saved = ("baseline", "baseline") if key == "random" else ("–", "–")
        table.add_row(arm.name, f"{row['labels']:,}", f"{row['labels'] / devices:.1%}",
                      f"{row['accuracy']:.4f}", f"{row['balanced_accuracy']:.4f}",
                      _percent(row["escape_rate"]), _percent(row["overkill"]),
                      _count(row["labels_to_95"]), saved[0],
                      _count(row["labels_to_95_balanced"]), saved[1])
    gap = (rows["random"]["labels"] - rows["active"]["labels"]) / max(1, rows["active"]["labels"])
    onset = f"device {floor.rare_mode_begins:,}"
    if floor.rare_mode_first is not None:
        onset += f" (first such part: device {floor.rare_mode_first:,})"
    table.caption = (
        f"Random is paced to the active arm's queries: labels {gap:+.1%} against it. "
        "Prequential scores; escapes: fails predicted pass, overkill: passes predicted fail.\n"
        "Savings: labels to reach 95 % of the all-labels arm's prequential (balanced) "
        "accuracy for good, 1 − active/random; – where an arm never got there.\n"
        f"The rare failure mode may appear from {onset}.")
    return table


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def _count(value: int | None) -> str:
    return "–" if value is None else f"{value:,}"
