"""The body of ``stream-al bench throughput``: the broker, the phases in order under
their progress bars, and the JSON file."""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from importlib import metadata
from pathlib import Path
from typing import TypeVar

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from consumers.bench.throughput.daemon import daemon_run, latency_run
from consumers.bench.throughput.loops import consume, ensure_topics, inmemory, produce
from consumers.bench.throughput.options import (
    LATENCY_TEMPLATE,
    BenchRecord,
    DaemonStalled,
    Row,
    ThroughputOptions,
    Tick,
    bench_records,
    learner_config,
    ratios,
    record_sizes,
)
from consumers.kafka.topics import TopicPlan, delete_topics
from consumers.settings import KafkaSettings
from stream_al import __version__
from stream_al.models import TemplateName

T = TypeVar("T")


class _RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        return Text(f"{task.speed:>9,.0f} rec/s" if task.speed else "", style="cyan")


class Phases:
    """Runs each phase under its own progress bar."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(TextColumn("{task.description:<28}"), BarColumn(),
                                 MofNCompleteColumn(), _RateColumn(), TimeElapsedColumn(),
                                 console=console, refresh_per_second=4)

    def run(self, name: str, total: int, body: Callable[[Tick], T]) -> T:
        task = self.progress.add_task(name, total=total)
        result = body(lambda done: self.progress.update(task, completed=done))
        self.progress.update(task, completed=total)
        return result


def run_bench(options: ThroughputOptions, console: Console) -> Row:
    """Start a broker unless one is given, measure, write the JSON; return the results."""
    load_before = os.getloadavg()
    phases = Phases(console)
    with (_broker(options.bootstrap_servers) as (bootstrap, kafka_version),
          tempfile.TemporaryDirectory(prefix="stream-al-bench-") as workdir, phases.progress):
        kafka = KafkaSettings.model_validate({"bootstrap_servers": bootstrap,
                                              "client_id": "stream-al-bench"})
        run_id = f"bench-{uuid.uuid4().hex[:8]}"
        try:
            result = measure(kafka, run_id, options, Path(workdir), phases)
        finally:
            if options.bootstrap_servers:  # someone else's broker: leave it as it was
                delete_topics(kafka, run_id)
    result["machine"] = machine(kafka_version, load_before, os.getloadavg())
    result["code"] = code_version()
    options.out.parent.mkdir(parents=True, exist_ok=True)
    options.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    return result


def measure(kafka: KafkaSettings, run_id: str, options: ThroughputOptions, workdir: Path,
            phases: Phases) -> Row:
    """Every phase, in one run, on one topic of identical records; topics start with
    ``run_id``."""
    n, topic = options.records, f"{run_id}.parametric"
    records = phases.run("simulating records", n, lambda tick: bench_records(n, options.seed))
    ensure_topics(kafka, [TopicPlan(topic, options.partitions, {})])
    result: Row = {"run_id": run_id, "settings": _settings(options),
                   "record_bytes": record_sizes(records)}
    result["producer"] = phases.run("producer (acks=all)", n,
                                    lambda tick: produce(kafka, topic, records, tick))
    result["bare_consumer"] = {
        kind: phases.run(f"bare consumer, {kind}", n,
                         partial(consume, kafka, topic, n, decode, f"{run_id}-bare-{kind}"))
        for kind, decode in (("raw", False), ("decoded", True))}
    result["pipeline"] = {
        t: phases.run(f"daemon, {t}", n,
                      partial(_daemon_run_retried, kafka, topic, t, records, options, workdir))
        for t in options.templates}
    result["bare_consumer"]["decoded_after"] = phases.run(
        "bare consumer, decoded again", n,
        partial(consume, kafka, topic, n, True, f"{run_id}-bare-decoded-after"))
    result["inmemory"] = {
        t: phases.run(f"in-memory pipeline, {t}", n,
                      partial(inmemory, records, learner_config(t, options.budget),
                              options.oracle))
        for t in options.templates}
    result["latency"] = _latency_run_retried(
        lambda attempt: phases.run(
            f"latency at {options.latency_rate:g}/s", options.latency_records,
            lambda tick: latency_run(kafka, f"{run_id}-{attempt}", options.latency_records,
                                     options, workdir, tick)))
    bare = result["bare_consumer"]
    result["ratios"] = ratios([bare["decoded"]["records_per_s"],
                               bare["decoded_after"]["records_per_s"]],
                              {t: r["records_per_s"] for t, r in result["pipeline"].items()})
    return result


def _daemon_run_retried(kafka: KafkaSettings, topic: str, template: TemplateName,
                        records: Sequence[BenchRecord], options: ThroughputOptions,
                        workdir: Path, tick: Tick) -> Row:
    """A stalled daemon (see DaemonStalled) is kept on record, its thread dump saved beside
    the results, and the run repeated once on fresh topics."""
    stalls: list[str] = []
    for attempt in (1, 2):
        try:
            run = daemon_run(kafka, topic, template, records, options, workdir, tick, attempt)
            return {**run, "stalled_attempts": stalls}
        except DaemonStalled as stall:
            kept = options.out.with_name(f"{options.out.stem}-{template}-stall{attempt}.log")
            kept.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(stall.log, kept)
            if attempt == 2:
                raise
            stalls.append(str(kept))
    raise AssertionError("unreachable")


def _latency_run_retried(run: Callable[[int], Row]) -> Row:
    """Predictions missing after the drain are the same kafka-python stall as a stalled
    daemon (a poll that never returns, in the daemon or in the watcher): the attempt is
    kept on record and the phase repeated once on fresh topics."""
    first = run(1)
    if first["received"] >= first["sent"]:
        return {**first, "stalled_attempts": []}
    return {**run(2), "stalled_attempts": [first]}


def machine(kafka_version: str, load_before: tuple[float, float, float],
            load_after: tuple[float, float, float]) -> Row:
    """What the figures were measured on, and how busy it was (others share it)."""
    return {"cores": os.cpu_count(), "cpu": _cpu_model(), "platform": platform.platform(),
            "python": platform.python_version(), "kafka": kafka_version,
            **{name.replace("-", "_"): _version(name)
               for name in ("kafka-python", "river", "pydantic", "crc32c")},
            "load_average_before": list(load_before), "load_average_after": list(load_after)}


def code_version() -> Row:
    """Which code was measured: the commit, and the files of the daemon's path that
    differed from it (others may be editing them while the bench runs)."""
    def git(*args: str) -> str:
        try:
            done = subprocess.run(["git", *args], capture_output=True, text=True,  # noqa: S603,S607
                                  check=False, cwd=Path(__file__).parent, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return ""
        return done.stdout.strip() if done.returncode == 0 else ""

    changed = git("status", "--porcelain", "--", "stream_al", "consumers").splitlines()
    return {"stream_al": __version__, "git_commit": git("rev-parse", "HEAD") or None,
            "uncommitted": [line[3:] for line in changed]}


@contextmanager
def _broker(bootstrap: str | None) -> Iterator[tuple[str, str]]:
    """The given broker, or a local Apache Kafka of our own, always stopped after."""
    if bootstrap:
        yield bootstrap, "external broker (version not probed)"
        return
    from consumers.kafka_local import KAFKA_VERSION, LocalKafka

    local = LocalKafka(f"bench-{os.getpid()}", die_with_parent=True)
    try:
        yield local.start(), f"Apache Kafka {KAFKA_VERSION} (local, KRaft, single node)"
    finally:
        local.discard()



def _settings(options: ThroughputOptions) -> Row:
    fields = dataclasses.asdict(options)
    fields.update(out=str(options.out), plot=str(options.plot) if options.plot else None,
                  templates=list(options.templates), latency_template=LATENCY_TEMPLATE,
                  daemon="stream-al run, own process", oracle_delay_s=0.0)
    return fields


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
