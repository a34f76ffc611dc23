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
from dataclasses import dataclass
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

from consumers.bench.throughput.daemon import daemon_run, latency_run, replicas_run
from consumers.bench.throughput.loops import (
    confluent_consume,
    confluent_produce,
    consume,
    ensure_topics,
    inmemory,
    produce,
)
from consumers.bench.throughput.options import (
    LATENCY_TEMPLATE,
    PRODUCER,
    BenchRecord,
    DaemonStalled,
    Row,
    ThroughputOptions,
    Tick,
    bench_records,
    daemon_arm,
    interleaved,
    learner_config,
    record_sizes,
    round_ratios,
    scale_arm,
    skip_line,
    summarise,
)
from consumers.bench.throughput.peers import PeerKind, missing, peer_run
from consumers.kafka.topics import TopicPlan, delete_topics
from consumers.settings import KafkaClient, KafkaSettings
from stream_al import __version__
from stream_al.learner import LearnerConfig
from stream_al.models import TemplateName

T = TypeVar("T")
#: A bare consumer loop: (kafka, topic, count, decode, group, tick) → its row.
Reader = Callable[[KafkaSettings, str, int, bool, str, Tick], Row]


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
                                              "client_id": "stream-al-bench",
                                              "fetch_max_wait_ms": options.fetch_wait_ms})
        run_id = f"bench-{uuid.uuid4().hex[:8]}"
        try:
            result = measure(kafka, run_id, options, Path(workdir), phases, console)
        finally:
            if options.bootstrap_servers:  # someone else's broker: leave it as it was
                delete_topics(kafka, run_id)
    result["machine"] = machine(kafka_version, load_before, os.getloadavg())
    result["code"] = code_version()
    options.out.parent.mkdir(parents=True, exist_ok=True)
    options.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    return result


@dataclass(frozen=True)
class Arm:
    """One thing measured once per round: ``body(round, tick)`` gives its row."""

    name: str
    label: str
    body: Callable[[int, Tick], Row]


def measure(kafka: KafkaSettings, run_id: str, options: ThroughputOptions, workdir: Path,
            phases: Phases, console: Console | None = None) -> Row:
    """Every arm once per round, in the same order each round, on one topic of identical
    records, then the latency run; topics start with ``run_id``."""
    n, topic = options.records, f"{run_id}.parametric"
    records = phases.run("simulating records", n, lambda tick: bench_records(n, options.seed))
    ensure_topics(kafka, [TopicPlan(topic, options.partitions, {})])
    result: Row = {"run_id": run_id, "settings": _settings(options),
                   "record_bytes": record_sizes(records)}
    # The input is written once, unmeasured; each producer arm writes a fresh topic.
    phases.run("writing the input topic", n, lambda tick: produce(kafka, topic, records, tick))
    arms, skipped = bench_arms(kafka, run_id, topic, records, options, workdir)
    if skipped and console is not None:
        console.print(skip_line(skipped), markup=False, highlight=False)
    rounds: list[Row] = []
    by_name = {arm.name: arm for arm in arms}
    for round_, name in interleaved([arm.name for arm in arms], options.rounds):
        if not rounds or rounds[-1]["round"] != round_:
            if rounds:
                rounds[-1]["load_average_after"] = list(os.getloadavg())
            rounds.append({"round": round_, "load_average_before": list(os.getloadavg()),
                           "arms": {}})
        arm = by_name[name]
        rounds[-1]["arms"][name] = phases.run(f"r{round_} {arm.label}", n,
                                              partial(arm.body, round_))
    rounds[-1]["load_average_after"] = list(os.getloadavg())
    result["rounds"] = rounds
    result["arms"] = summarise(rounds, {arm.name: arm.label for arm in arms})
    result["skipped"] = skipped
    result["latency_runs"] = [_latency_at(kafka, run_id, rate, options, workdir, phases)
                              for rate in options.latency_rates]
    result["latency"] = result["latency_runs"][0]
    per_round = [{name: row.get("records_per_s") for name, row in r["arms"].items()}
                 for r in rounds]
    result["ratios"] = round_ratios(per_round, options.templates, replicas=options.replicas)
    return result


def bench_arms(kafka: KafkaSettings, run_id: str, topic: str, records: Sequence[BenchRecord],
               options: ThroughputOptions, workdir: Path) -> tuple[list[Arm], dict[str, str]]:
    """The arms in the order each round runs them: the limits, the first template's daemon
    followed by the peers (the pairs the ratios divide run back to back), the other
    daemons, the in-memory pipelines; and the arms left out, with why."""
    n, partitions = len(records), options.partitions
    no_confluent, no_quix = missing("confluent_kafka"), missing("quixstreams")
    arms = [Arm(PRODUCER, "producer, kafka-python", partial(
        _to_sink, kafka, run_id, "kafka-python", produce, records, partitions))]
    skipped: dict[str, str] = {}
    if no_confluent:
        skipped.update({"producer.confluent": no_confluent,
                        "consumer.confluent.raw": no_confluent,
                        "consumer.confluent.decoded": no_confluent})
    else:
        arms.append(Arm("producer.confluent", "producer, confluent-kafka", partial(
            _to_sink, kafka, run_id, "confluent", confluent_produce, records, partitions)))
    readers: list[tuple[str, Reader]] = [("kafka_python", consume)]
    if not no_confluent:
        readers.append(("confluent", confluent_consume))
    for client, read in readers:
        for kind, decode in (("raw", False), ("decoded", True)):
            name = f"consumer.{client}.{kind}"
            arms.append(Arm(name, f"bare consumer, {client.replace('_', '-')}, {kind}",
                            partial(_consume_body, read, kafka, topic, n, decode,
                                    f"{run_id}-{name.replace('.', '-').replace('_', '-')}")))
    peers: list[Arm] = []
    kinds: tuple[tuple[PeerKind, str, str | None], ...] = (
        ("quix", "peer, Quix Streams + River", no_quix),
        ("confluent", "peer, confluent-kafka loop + River", no_confluent))
    for kind, label, why in kinds:
        if why:
            skipped[f"peer.{kind}"] = why
        else:
            peers.append(Arm(f"peer.{kind}", label, _peer_body(kafka, topic, kind, records,
                                                               options, workdir)))
    # The peers run the logistic pipeline: they follow that daemon (or the first one).
    beside = LATENCY_TEMPLATE if LATENCY_TEMPLATE in options.templates else options.templates[0]
    for template in options.templates:
        arms.append(Arm(daemon_arm(template), f"daemon, {template}", _daemon_body(
            kafka, topic, template, records, options, workdir)))
        if template == beside:
            on_confluent = daemon_arm(template, "confluent")
            if no_confluent:
                skipped[on_confluent] = no_confluent
            else:
                arms.append(Arm(on_confluent, f"daemon, {template}, confluent-kafka",
                                _daemon_body(kafka, topic, template, records, options,
                                             workdir, "confluent")))
            arms.extend(peers)
            if options.replicas > 1:
                arms += [Arm(scale_arm(template, n), f"{n} replica{'s' * (n > 1)} in one "
                             f"group, {template}", _replicas_body(kafka, run_id, template,
                                                                   records, options, workdir, n))
                         for n in (1, options.replicas)]
    for template in options.templates:
        arms.append(Arm(f"inmemory.{template}", f"in-memory pipeline, {template}", partial(
            _inmemory_body, records, learner_config(template, options.budget),
            options.oracle)))
    return arms, skipped


def _to_sink(kafka: KafkaSettings, run_id: str, slug: str,
             write: Callable[[KafkaSettings, str, Sequence[BenchRecord], Tick], Row],
             records: Sequence[BenchRecord], partitions: int, round_: int, tick: Tick) -> Row:
    """A producer arm on a fresh topic of its own, deleted after (each is N records)."""
    sink = f"{run_id}.r{round_}.{slug}.sink"
    ensure_topics(kafka, [TopicPlan(sink, partitions, {})])
    try:
        return write(kafka, sink, records, tick)
    finally:
        delete_topics(kafka, sink)


def _consume_body(read: Reader, kafka: KafkaSettings, topic: str, count: int, decode: bool,
                  group: str, round_: int, tick: Tick) -> Row:
    """A bare consumer arm, in a group of its own each round (so it reads from the start)."""
    return read(kafka, topic, count, decode, f"{group}-r{round_}", tick)


def _peer_body(kafka: KafkaSettings, topic: str, kind: PeerKind,
               records: Sequence[BenchRecord], options: ThroughputOptions,
               workdir: Path) -> Callable[[int, Tick], Row]:
    return lambda round_, tick: peer_run(kafka, topic, kind, records, options, workdir, tick,
                                         round_)


def _daemon_body(kafka: KafkaSettings, topic: str, template: TemplateName,
                 records: Sequence[BenchRecord], options: ThroughputOptions,
                 workdir: Path, client: KafkaClient = "kafka-python"
                 ) -> Callable[[int, Tick], Row]:
    return lambda round_, tick: _daemon_run_retried(kafka, topic, template, records, options,
                                                    workdir, tick, round_, client)


def _replicas_body(kafka: KafkaSettings, run_id: str, template: TemplateName,
                   records: Sequence[BenchRecord], options: ThroughputOptions, workdir: Path,
                   replicas: int) -> Callable[[int, Tick], Row]:
    return lambda round_, tick: replicas_run(kafka, run_id, template, records, options,
                                             workdir, tick, replicas, round_)


def _inmemory_body(records: Sequence[BenchRecord], config: LearnerConfig, answer: bool,
                   round_: int, tick: Tick) -> Row:
    return inmemory(records, config, answer, tick)


def _daemon_run_retried(kafka: KafkaSettings, topic: str, template: TemplateName,
                        records: Sequence[BenchRecord], options: ThroughputOptions,
                        workdir: Path, tick: Tick, round_: int = 1,
                        client: KafkaClient = "kafka-python") -> Row:
    """A stalled daemon (see DaemonStalled) is kept on record, its thread dump saved beside
    the results, and the run repeated once on fresh topics."""
    stalls: list[str] = []
    for attempt in (1, 2):
        try:
            run = daemon_run(kafka, topic, template, records, options, workdir, tick, attempt,
                             round_, client)
            return {**run, "stalled_attempts": stalls}
        except DaemonStalled as stall:
            kept = options.out.with_name(
                f"{options.out.stem}-{template}-{client}-r{round_}-stall{attempt}.log")
            kept.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(stall.log, kept)
            if attempt == 2:
                raise
            stalls.append(str(kept))
    raise AssertionError("unreachable")


def _latency_at(kafka: KafkaSettings, run_id: str, rate: float, options: ThroughputOptions,
                workdir: Path, phases: Phases) -> Row:
    return _latency_run_retried(lambda attempt: phases.run(
        f"latency at {rate:g}/s", options.latency_records(rate),
        lambda tick: latency_run(kafka, f"{run_id}-{rate:g}-{attempt}", rate, options,
                                 workdir, tick)))


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
               for name in ("kafka-python", "river", "pydantic", "crc32c", "confluent-kafka",
                            "quixstreams")},
            "librdkafka": _librdkafka(),
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


def _librdkafka() -> str:
    try:
        import confluent_kafka
    except ImportError:
        return "not installed"
    return str(confluent_kafka.libversion()[0])


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
