"""The daemon under test: ``stream-al run`` in its own process (as deployed) with a
simulated oracle beside it, run to a count of predictions, or kept ready for the
latency run."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from consumers.bench.throughput.loops import (
    Arrival,
    confluent_produce,
    ensure_topics,
    message_count,
    paced_produce,
    produce,
    topic_timestamps,
    watching,
)
from consumers.bench.throughput.options import (
    LATENCY_TEMPLATE,
    STALL_S,
    BenchError,
    BenchRecord,
    DaemonStalled,
    Row,
    ThroughputOptions,
    Tick,
    bench_records,
    bench_topics,
    counters,
    daemon_settings,
    latencies,
    latency_summary,
    learner_config,
    rates,
)
from consumers.kafka.kafka_python import native_consumer, native_partitions_of
from consumers.kafka.topics import topic_plan
from consumers.oracle.simulate import run_oracle
from consumers.settings import DEFAULT_CLIENT, KafkaClient, KafkaSettings, Settings
from stream_al.models import TemplateName
from stream_al.oracle import SimulatedOracle

_RUN_DAEMON = "from consumers.cli import main; main()"
#: How long the latency run waits for its last predictions (a guard, not a measurement).
_DRAIN_S = 60.0


def daemon_run(kafka: KafkaSettings, topic: str, template: TemplateName,
               records: Sequence[BenchRecord], options: ThroughputOptions, workdir: Path,
               tick: Tick, attempt: int = 1, round_: int = 1,
               client: KafkaClient = "kafka-python") -> Row:
    """``stream-al run`` from the beginning of ``topic`` until it has predicted every record;
    the rate comes from the predictions' own timestamps (set when the daemon sent them).
    The oracle's thread runs in this process: its CPU is not the daemon's. ``client`` is the
    daemon's ``kafka.client``; the bench's own oracle and readers keep ``kafka``'s."""
    prefix = f"{topic}-{template}-{client}-r{round_}" + (
        f"-attempt{attempt}" if attempt > 1 else "")
    topics = bench_topics(topic, prefix)
    ensure_topics(kafka, topic_plan(topics, options.partitions))
    port = free_port()
    settings = daemon_settings(kafka.model_copy(update={"client": client}), topics,
                               learner_config(template, options.budget), workdir / prefix, port)
    truth = {r.record_id: r.truth for r in records}
    children_before = children_cpu_s()
    # The same oracle, on the bench's client, whichever client the daemon runs on.
    with answering_oracle(settings.model_copy(update={"kafka": kafka}), truth, options.oracle):
        started = time.time()
        with running_daemon(settings, workdir, prefix) as daemon:
            steady_cpu = wait_for_messages(kafka, topics.predictions, len(records), tick,
                                           daemon, workdir / f"{prefix}.log")
            seen = scrape(port)
    total_cpu = children_cpu_s() - children_before
    stamps, distinct = topic_timestamps(kafka, topics.predictions, len(records))
    return {"template": template, "client": client,
            **rates(len(records), started, min(stamps) / 1000, max(stamps) / 1000),
            "predictions": len(stamps), "distinct_record_ids": distinct,
            "requests": message_count(kafka, topics.requests), **seen,
            **cpu_figures(steady_cpu, total_cpu, len(records))}


def replicas_run(kafka: KafkaSettings, run_id: str, template: TemplateName,
                 records: Sequence[BenchRecord], options: ThroughputOptions, workdir: Path,
                 tick: Tick, replicas: int, round_: int = 1,
                 client: KafkaClient = DEFAULT_CLIENT) -> Row:
    """``replicas`` daemons in one group, each with its own state and port, all ready
    (partitions assigned) before the records are written to a fresh input topic, so no
    replica runs alone while another joins; until every record has its prediction.
    Every replica reads every request and label (each keeps the whole model): the
    labels each one learnt are in ``labels_learnt_per_replica``."""
    prefix = f"{run_id}-x{replicas}-{template}-{client}-r{round_}"
    topics = bench_topics(f"{prefix}.parametric", prefix)
    ensure_topics(kafka, topic_plan(topics, options.partitions))
    ports = [free_port() for _ in range(replicas)]
    configs = [daemon_settings(kafka.model_copy(update={"client": client}), topics,
                               learner_config(template, options.budget),
                               workdir / f"{prefix}-{i}", port) for i, port in enumerate(ports)]
    truth = {r.record_id: r.truth for r in records}
    with contextlib.ExitStack() as running:
        running.enter_context(answering_oracle(configs[0].model_copy(update={"kafka": kafka}),
                                               truth, options.oracle))
        daemons = [running.enter_context(running_daemon(config, workdir, f"{prefix}-{i}"))
                   for i, config in enumerate(configs)]
        for daemon, port, i in zip(daemons, ports, range(replicas), strict=True):
            wait_ready(port, daemon, workdir / f"{prefix}-{i}.log")
        write = _fastest_producer()
        started = time.time()
        write(kafka, topics.inputs[0], records, lambda done: None)
        steady_cpu = wait_for_messages(kafka, topics.predictions, len(records), tick,
                                       daemons[0], workdir / f"{prefix}-0.log",
                                       what=f"{replicas} replicas", others=daemons[1:])
        # Without the oracle no label ever comes: nothing to wait for.
        seen = (labels_settled(kafka, topics.requests, topics.labels, ports) if options.oracle
                else [scrape(port) for port in ports])
    stamps, distinct = topic_timestamps(kafka, topics.predictions, len(records))
    return {"template": template, "client": client, "replicas": replicas,
            **rates(len(records), started, min(stamps) / 1000, max(stamps) / 1000),
            "predictions": len(stamps), "distinct_record_ids": distinct,
            "requests": message_count(kafka, topics.requests),
            "records_per_replica": [row["predicted"] + row["queried"] for row in seen],
            "labels_learnt_per_replica": [row["labels_applied"] for row in seen],
            "cpu_us_per_record": steady_cpu}


def labels_settled(kafka: KafkaSettings, requests: str, labels: str, ports: Sequence[int],
                   timeout_s: float = _DRAIN_S) -> list[dict[str, int]]:
    """Every replica's counters once the oracle has answered every request and each
    replica has read every label (or ``timeout_s`` passed): the last predictions go out
    before the last labels come back, so counters read at once would say a replica had
    learnt nothing when its labels were still on their way."""
    deadline = time.monotonic() + timeout_s
    while True:
        seen = [scrape(port) for port in ports]
        told = message_count(kafka, labels)
        settled = told >= message_count(kafka, requests) and all(
            row["labels_read"] >= told for row in seen)
        if settled or time.monotonic() > deadline:
            return seen
        time.sleep(0.25)


def _fastest_producer() -> Callable[[KafkaSettings, str, Sequence[BenchRecord], Tick], Row]:
    """confluent-kafka's producer where installed (several times kafka-python's, so the
    replicas are never waiting for their input), else kafka-python's."""
    return produce if importlib.util.find_spec("confluent_kafka") is None else confluent_produce


def cpu_figures(steady_us_per_record: float | None, total_s: float, records: int) -> Row:
    """A child's CPU: per record while it was producing (what the loop costs), and over
    its whole life from its rusage (start-up, group join and shutdown included)."""
    return {"cpu_us_per_record": steady_us_per_record, "cpu_s_total": total_s,
            "cpu_us_per_record_total": 1e6 * total_s / records}


def children_cpu_s() -> float:
    """User + system seconds of this process's children that have been waited for: the
    difference across one child's life is that child's (the bench starts one at a time)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def process_cpu_s(pid: int) -> float | None:
    """User + system seconds of a running process, every thread, from /proc (None where
    there is no /proc, or once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rpartition(")")[2].split()
    except OSError:
        return None
    # After the command's closing parenthesis: state is field 3, utime 14 and stime 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def latency_run(kafka: KafkaSettings, run_id: str, rate: float, options: ThroughputOptions,
                workdir: Path, tick: Tick) -> Row:
    """Records at a fixed rate into a ready daemon; each prediction's delay after the send."""
    records = bench_records(options.latency_records(rate), options.seed + 1)
    prefix = f"{run_id}-latency"
    topics = bench_topics(f"{prefix}.parametric", prefix)
    ensure_topics(kafka, topic_plan(topics, options.partitions))
    port = free_port()
    settings = daemon_settings(kafka, topics, learner_config(LATENCY_TEMPLATE, options.budget),
                               workdir / prefix, port)
    truth = {r.record_id: r.truth for r in records}
    with (answering_oracle(settings, truth, options.oracle),
          running_daemon(settings, workdir, prefix) as daemon):
        wait_ready(port, daemon, workdir / f"{prefix}.log")
        with watching(kafka, topics.predictions) as seen:
            sent, seconds = paced_produce(kafka, topics.inputs[0], records,
                                          rate, tick)
            _drain(seen, len(sent))
            arrivals = list(seen)
    end_to_end, at_send = latencies(sent, arrivals)
    return {"template": LATENCY_TEMPLATE, "fetch_max_wait_ms": kafka.fetch_max_wait_ms,
            "rate_target": rate,
            "rate_achieved": len(sent) / seconds, "seconds": seconds, "sent": len(sent),
            "received": len(arrivals),
            "produce_to_consumed": latency_summary(end_to_end),
            "produce_to_daemon_send": latency_summary(at_send)}


def _drain(seen: list[Arrival], count: int) -> None:
    """Until ``count`` predictions arrived, or none for ``_DRAIN_S``."""
    held, progress_at = -1, time.monotonic()
    while len(seen) < count and time.monotonic() - progress_at < _DRAIN_S:
        if len(seen) > held:
            held, progress_at = len(seen), time.monotonic()
        time.sleep(0.05)


@contextmanager
def running_daemon(settings: Settings, workdir: Path, name: str
                   ) -> Iterator[subprocess.Popen[bytes]]:
    """``stream-al run`` on a settings file; SIGTERM (then kill) when done."""
    config = workdir / f"{name}.json"
    config.write_text(settings.model_dump_json(), encoding="utf-8")
    # The file must be the whole truth: STREAM_AL_* variables would override it.
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAM_AL_")}
    env["PYTHONFAULTHANDLER"] = "1"  # SIGABRT on a stall then dumps every thread's stack
    with (workdir / f"{name}.log").open("wb") as log:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            [sys.executable, "-c", _RUN_DAEMON, "run", "--config", str(config)],
            stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextmanager
def answering_oracle(settings: Settings, truth: Mapping[str, str], enabled: bool
                     ) -> Iterator[None]:
    """The simulated oracle on the daemon's topics, answering at once from the truth."""
    if not enabled:
        yield
        return
    stop = threading.Event()
    oracle = SimulatedOracle(lambda request: truth.get(request.record_id))
    thread = threading.Thread(target=run_oracle, args=(settings, oracle, stop),
                              kwargs={"group": f"{settings.topics.requests}-oracle"},
                              name="bench-oracle", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=30)


def wait_for_messages(kafka: KafkaSettings, topic: str, count: int, tick: Tick,
                      daemon: subprocess.Popen[bytes], log: Path, what: str = "the daemon",
                      exits_when_done: bool = False,
                      others: Sequence[subprocess.Popen[bytes]] = ()) -> float | None:
    """Until ``topic`` holds ``count`` messages; fails if ``daemon`` exits (unless it
    ``exits_when_done`` and wrote them all) or stalls. Returns its CPU µs per message
    between the first sample with messages and the last (None without /proc).
    ``others``: replicas beside it, whose CPU counts too and whose exit fails the wait."""
    watcher = native_consumer(kafka, None)
    first: tuple[int, float] | None = None
    last: tuple[int, float] | None = None

    def sample(held: int) -> None:
        nonlocal first, last
        cpus = [process_cpu_s(p.pid) for p in (daemon, *others)] if held else [None]
        if None not in cpus:
            cpu = sum(c for c in cpus if c is not None)
            first, last = first or (held, cpu), (held, cpu)

    def steady() -> float | None:
        if first is None or last is None or last[0] <= first[0]:
            return None
        return 1e6 * (last[1] - first[1]) / (last[0] - first[0])

    try:
        partitions = native_partitions_of(watcher, [topic])
        seen, progress_at = -1, time.time()
        while True:
            held = sum(watcher.end_offsets(partitions).values())
            sample(held)
            tick(held)
            if held >= count:
                return steady()
            if daemon.poll() is not None:
                held = sum(watcher.end_offsets(partitions).values())  # it may just have ended
                if exits_when_done and daemon.returncode == 0 and held >= count:
                    tick(held)
                    return steady()
                raise BenchError(f"{what} exited ({daemon.returncode}) at {held}/{count} "
                                 f"messages; its log: {log}\n{_tail(log)}")
            if gone := [p for p in others if p.poll() is not None]:
                raise BenchError(f"a replica beside {what} exited ({gone[0].returncode}) at "
                                 f"{held}/{count} messages; logs beside {log}")
            if held > seen:
                seen, progress_at = held, time.time()
            if time.time() - progress_at > STALL_S:
                _dump_stacks(daemon)
                raise DaemonStalled(f"no progress for {STALL_S:.0f} s: {topic} at "
                                    f"{held}/{count} messages; {what}'s main thread:\n"
                                    f"{_main_thread(log)}", log)
            time.sleep(0.25)
    finally:
        watcher.close()


def scrape(port: int) -> dict[str, int]:
    """The daemon's own counters, read from its /metrics endpoint."""
    url = f"http://127.0.0.1:{port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - fixed local URL
        return counters(text_string_to_metric_families(response.read().decode()))


def wait_ready(port: int, daemon: subprocess.Popen[bytes], log: Path,
               timeout_s: float = 120.0) -> None:
    """Until /readyz says 200 (checkpoint loaded, connected, partitions assigned)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if daemon.poll() is not None:
            raise BenchError(f"the daemon exited ({daemon.returncode}) before it was ready; "
                             f"its log: {log}\n{_tail(log)}")
        try:
            url = f"http://127.0.0.1:{port}/readyz"
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - fixed local URL
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.2)  # not listening yet, or 503 not ready
    raise BenchError(f"the daemon was not ready within {timeout_s:.0f} s; its log: {log}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _dump_stacks(daemon: subprocess.Popen[bytes]) -> None:
    """Ask our stalled child for its threads' stacks (faulthandler prints them on SIGABRT)."""
    daemon.send_signal(signal.SIGABRT)
    try:
        daemon.wait(timeout=10)
    except subprocess.TimeoutExpired:
        daemon.kill()
        daemon.wait()


def _main_thread(log: Path) -> str:
    """The faulthandler dump's stack of the main thread, or the log's tail."""
    text = log.read_text(encoding="utf-8", errors="replace")
    current = text.rfind("Current thread")
    if current < 0:
        return _tail(log)
    return text[current:].split("\n\n", 1)[0]


def _tail(log: Path, lines: int = 15) -> str:
    try:
        return "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
