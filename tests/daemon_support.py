"""Drives ``stream-al run`` and ``stream-al oracle simulate`` as real processes against a
real broker: per-test config, the floor's records, reading topics back, and folding the
request and label logs offline into the model every daemon must end with.

Every process a ``Harness`` starts is killed when it closes, on failure too; each is
also asked by Linux to die with the test process (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.consumer.fetcher import ConsumerRecord
from prometheus_client.parser import text_string_to_metric_families

from consumers.daemon.checkpoints import CheckpointStore
from consumers.kafka.topics import topic_plan
from consumers.kafka_local import LocalKafka, reap_orphans
from consumers.kafka_local.config import free_port
from consumers.settings import DEFAULT_CLIENT
from stream_al.codec import decode_label, decode_prediction, decode_record, decode_request
from stream_al.errors import DecodeError
from stream_al.features import extract
from stream_al.learner import Learner, LearnerConfig
from stream_al.simulate.base import SimulatedRecord
from stream_al.simulate.floor import FloorConfig, FloorSimulator
from stream_al.state import Checkpoint
from stream_al.topics import TopicNames

STREAM_AL = str(Path(sys.executable).with_name("stream-al"))
#: Stops a broken test from hanging; never asserted on as a speed.
HANG_GUARD_S = 180.0
_PR_SET_PDEATHSIG = 1
_PORT_LINE = re.compile(rb"serving /metrics, /healthz, /readyz on port (\d+)")

#: Metric samples keyed by (sample name, sorted label pairs).
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
#: The learner of the recovery tests: a fifth of the records may be queried, 5 % audited.
BUDGETED: Mapping[str, Any] = {"budget": {"fraction": 0.2, "audit_fraction": 0.05}}
#: Partitions of a test's input topic (``make_topics``); the floor's testers spread over them.
INPUT_PARTITIONS = 3


def wait_until(condition: Callable[[], bool], what: str, guard_s: float = HANG_GUARD_S,
               every_s: float = 0.2) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` if the hang guard passes."""
    deadline = time.monotonic() + guard_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting ({guard_s:.0f} s) for {what}")
        time.sleep(every_s)


# -- processes -----------------------------------------------------------------------


def _clean_env() -> dict[str, str]:
    """The test's environment minus STREAM_AL_* (they would override the config file)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("STREAM_AL_")}


def _die_with_test() -> Callable[[], None] | None:
    """A pre-exec hook: Linux kills the child if the test process dies, even by SIGKILL
    (when no teardown runs). libc is looked up before the fork."""
    if sys.platform != "linux":
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    return lambda: prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class Proc:
    """One ``stream-al`` process in a session of its own; stdout and stderr go to ``log``."""

    def __init__(self, name: str, args: list[str], log: Path) -> None:
        self.name, self.log = name, log
        with log.open("wb") as sink:
            self.popen = subprocess.Popen(  # noqa: S603 - an argument list, never a shell
                [STREAM_AL, *args], stdin=subprocess.DEVNULL, stdout=sink,
                stderr=subprocess.STDOUT, env=_clean_env(), start_new_session=True,
                preexec_fn=_die_with_test())  # one prctl call in the child, no locks

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def alive(self) -> bool:
        return self.popen.poll() is None

    def last_words(self, lines: int = 12) -> str:
        """Whether it still runs and the end of its log: for the message of a wait that
        gave up, so a process that stopped talking (or stopped) says so in CI's output."""
        state = "running" if self.alive() else f"exited {self.popen.returncode}"
        tail = "\n".join(f"  | {line}" for line in self.output().splitlines()[-lines:])
        return f"{self.name} ({state}), the end of its log:\n{tail}"

    def kill9(self) -> None:
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(timeout=30)

    def terminate(self, guard_s: float = 60.0) -> int:
        """SIGTERM and wait for the exit code."""
        self.popen.send_signal(signal.SIGTERM)
        return self.popen.wait(timeout=guard_s)


class DaemonProc(Proc):
    """``stream-al run``; its HTTP port is read from its log once it serves."""

    port = 0

    def wait_for_port(self) -> None:
        wait_until(self._read_port, f"{self.name} to serve HTTP (log {self.log})")

    def _read_port(self) -> bool:
        if not self.alive():
            raise AssertionError(f"{self.name} exited early:\n{self.output()[-3000:]}")
        found = _PORT_LINE.search(self.log.read_bytes())
        self.port = int(found.group(1)) if found else 0
        return found is not None

    def get(self, path: str) -> tuple[int, bytes]:
        url = f"http://127.0.0.1:{self.port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310
                return int(response.status), response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def metrics(self) -> Samples:
        status, body = self.get("/metrics")
        assert status == 200, body
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(body.decode())
                for s in family.samples}

    def readyz(self) -> tuple[int, dict[str, Any]]:
        status, body = self.get("/readyz")
        return status, json.loads(body)

    def scored(self) -> float:
        """Records consumed so far (``stream_al_records_total``, every outcome)."""
        return total(self.metrics(), "stream_al_records_total")

    def labels_read(self, outcome: str | None = None) -> float:
        """Labels read so far (``stream_al_labels_total``), of one ``outcome`` if given."""
        labels = {} if outcome is None else {"outcome": outcome}
        return total(self.metrics(), "stream_al_labels_total", **labels)


def total(samples: Samples, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``."""
    return sum(value for (sample, pairs), value in samples.items()
               if sample == name and labels.items() <= dict(pairs).items())


@dataclass
class Harness:
    """Topics, config files and processes of one test; ``close`` kills what is left."""

    bootstrap: str
    topics: TopicNames
    group: str
    workdir: Path
    #: ``kafka.client`` of every process started through this harness.
    client: str = DEFAULT_CLIENT

    def __post_init__(self) -> None:
        self.procs: list[Proc] = []

    def __enter__(self) -> Harness:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
        if error is not None:  # pytest shows captured output with the failure
            for proc in self.procs:
                print(f"--- tail of {proc.log} ---\n{proc.output()[-4000:]}")

    def close(self) -> None:
        for proc in self.procs:
            if proc.alive():
                proc.popen.kill()
                proc.popen.wait(timeout=30)

    def config(self, name: str, *, state_dir: Path | None = None, group: str | None = None,
               bootstrap: str | None = None, learner: Mapping[str, Any] | None = None,
               checkpoint_s: float = 1.0, checkpoint_labels: int = 200) -> Path:
        """A settings file for this test's topics; returns its path."""
        settings = {
            "kafka": {"bootstrap_servers": [bootstrap or self.bootstrap],
                      "group_id": group or self.group, "client_id": name,
                      "client": self.client},
            "http": {"host": "127.0.0.1", "port": 0},
            "topics": self.topics.model_dump(mode="json"),
            "learner": dict(learner or {}),
            "checkpoint": {"interval_s": checkpoint_s, "every_labels": checkpoint_labels},
            "state_dir": str(state_dir or self.workdir / f"{name}-state"),
        }
        path = self.workdir / f"{name}.json"
        path.write_text(json.dumps(settings, indent=1), encoding="utf-8")
        return path

    def daemon(self, name: str, config: Path) -> DaemonProc:
        proc = DaemonProc(name, ["run", "--config", str(config)], self._log(name))
        self.procs.append(proc)  # before waiting, so a hung start is killed too
        proc.wait_for_port()
        return proc

    def oracle(self, records: Iterable[SimulatedRecord], delay_s: float = 0.2) -> Proc:
        """``stream-al oracle simulate`` answering with the truth of ``records`` (written to
        ``truth.csv`` in the work dir) after ``delay_s``."""
        truth = write_truth(self.workdir / "truth.csv", records)
        args = ["oracle", "simulate", "--config", str(self.config("oracle")),
                "--truth", str(truth), "--delay", str(delay_s)]
        proc = Proc("oracle", args, self._log("oracle"))
        self.procs.append(proc)
        return proc

    def drain(self, daemon: Proc, oracle: Proc, state_dir: Path) -> None:
        """Wait until the daemon owning ``state_dir`` has scored every record and the
        oracle has answered every request; stop the oracle (exit 0), wait until the daemon
        has read every label, and stop it (exit 0)."""
        try:
            wait_until(lambda: self.logs_read_to_end(state_dir) and self.answered(),
                       "every record scored and every request answered")
        except AssertionError as error:
            raise AssertionError(f"{error}; {self.progress(state_dir)}\n"
                                 f"{oracle.last_words()}\n{daemon.last_words()}") from None
        code = oracle.terminate()
        assert code == 0, f"the oracle exited {code} on SIGTERM"
        wait_until(lambda: self.logs_read_to_end(state_dir), "every label read")
        code = daemon.terminate()
        assert code == 0, f"{daemon.name} exited {code} on SIGTERM"

    # -- this test's topics (helpers below, bound to its broker and topic names) --

    def produce_floor(self, records: Iterable[SimulatedRecord]) -> list[tuple[int, int]]:
        """Send floor records to the input topic, each tester to a partition of its own."""
        return produce_floor(self.bootstrap, self.topics.inputs[0], records, INPUT_PARTITIONS)

    def produce(self, topic: str, messages: Iterable[tuple[int, bytes | None, bytes]]
                ) -> list[tuple[int, int]]:
        return produce(self.bootstrap, topic, messages)

    def read(self, topic: str) -> list[ConsumerRecord]:
        return read_topic(self.bootstrap, topic)

    def count(self, topic: str) -> int:
        return count(self.bootstrap, topic)

    def answered(self) -> bool:
        """Does every request on the request log have a label on the label log?

        Judged by query id, not by counting: across an outage a request may be sent
        again (restored from a checkpoint) and a label the broker did not acknowledge is
        sent again by the oracle, so both logs may hold one query twice."""
        asked = {decode_request(m.value).query_id for m in self.read(self.topics.requests)}
        told = {decode_label(m.value).query_id for m in self.read(self.topics.labels)}
        return asked <= told

    def progress(self, state_dir: Path) -> str:
        """Where a drain stands, for the message of a drain that gave up."""
        asked = Counter(decode_request(m.value).query_id for m in self.read(self.topics.requests))
        told = Counter(decode_label(m.value).query_id for m in self.read(self.topics.labels))
        return (f"{sum(asked.values())} requests ({len(asked)} queries), "
                f"{sum(told.values())} labels ({len(told)} queries), "
                f"{len(asked.keys() - told.keys())} queries unanswered; "
                f"checkpoint covers the logs: {self.logs_read_to_end(state_dir)}")

    def predicted(self) -> Counter[str]:
        """Record id → how many predictions the predictions topic holds for it."""
        return Counter(decode_prediction(m.value).record_id
                       for m in self.read(self.topics.predictions))

    def logs_read_to_end(self, state_dir: Path, inputs: bool = True) -> bool:
        """Has the daemon owning ``state_dir`` checkpointed every label and request (and,
        with ``inputs``, every input record) now on the topics?"""
        topics = self.topics
        names = [topics.requests, topics.labels] + (list(topics.inputs) if inputs else [])
        return covers(state_dir, ends_of(self.bootstrap, names))

    def checkpoint(self, state_dir: Path) -> Checkpoint:
        """The checkpoint in ``state_dir``, as the daemon owning it last wrote it."""
        return load_checkpoint(state_dir)

    def fold(self, learner: Mapping[str, Any]) -> Fold:
        """``fold_logs`` over the request and label logs as they stand now."""
        requests = [m.value for m in self.read(self.topics.requests)]
        labels = [m.value for m in self.read(self.topics.labels)]
        return Fold(*fold_logs(LearnerConfig.model_validate(learner), requests, labels))

    def _log(self, name: str) -> Path:
        runs = sum(1 for proc in self.procs if proc.name == name)
        return self.workdir / f"{name}-{runs}.log"


# -- the floor -----------------------------------------------------------------------


def floor(count: int, seed: int = 1) -> list[SimulatedRecord]:
    """``count`` parametric records of three products on six testers."""
    return list(FloorSimulator(FloorConfig(run_length=max(count, 100)), seed).stream(count))


def payload(record: SimulatedRecord) -> bytes:
    return json.dumps(record.record).encode()


def write_truth(path: Path, records: Iterable[SimulatedRecord]) -> Path:
    lines = ["record_id,label"] + [f"{r.record['record_id']},{r.truth}" for r in records]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def partition_of(record: SimulatedRecord, partitions: int) -> int:
    """Testers T-091… spread evenly over the partitions, each tester keeping one."""
    return int(record.record["tester_id"].rsplit("-", 1)[1]) % partitions


def produce(bootstrap: str, topic: str, messages: Iterable[tuple[int, bytes | None, bytes]]
            ) -> list[tuple[int, int]]:
    """Send (partition, key, value) messages; return where each landed (partition, offset)."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20,
                             max_request_size=2 * 1_048_576)
    try:
        futures = [producer.send(topic, key=key, value=value, partition=partition)
                   for partition, key, value in messages]
        producer.flush(timeout=60)
        return [(meta.partition, meta.offset) for meta in (f.get(timeout=60) for f in futures)]
    finally:
        producer.close(timeout=10)


def produce_floor(bootstrap: str, topic: str, records: Iterable[SimulatedRecord],
                  partitions: int) -> list[tuple[int, int]]:
    return produce(bootstrap, topic, ((partition_of(r, partitions),
                                       r.record["tester_id"].encode(), payload(r))
                                      for r in records))


# -- reading topics back -------------------------------------------------------------


def _partitions(consumer: KafkaConsumer, topic: str) -> list[TopicPartition]:
    return [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        partitions = _partitions(consumer, topic)
        return {tp.partition: end for tp, end in consumer.end_offsets(partitions).items()}
    finally:
        consumer.close()


def read_topic(bootstrap: str, topic: str) -> list[ConsumerRecord]:
    """Every message now on ``topic``, partition by partition, each in log order."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                             auto_offset_reset="earliest", fetch_max_bytes=8_000_000,
                             max_partition_fetch_bytes=4_000_000)
    try:
        partitions = _partitions(consumer, topic)
        ends = consumer.end_offsets(partitions)
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        seen: dict[TopicPartition, list[ConsumerRecord]] = {tp: [] for tp in partitions}
        deadline = time.monotonic() + HANG_GUARD_S
        while any(consumer.position(tp) < ends[tp] for tp in partitions):
            assert time.monotonic() < deadline, f"could not read {topic} to its end"
            for tp, records in consumer.poll(timeout_ms=200).items():
                seen[tp] += [r for r in records if r.offset < ends[tp]]
        return [record for tp in partitions for record in seen[tp]]
    finally:
        consumer.close()


def count(bootstrap: str, topic: str) -> int:
    return sum(end_offsets(bootstrap, topic).values())  # our topics are never compacted


# -- checkpoints and the offline fold -----------------------------------------------


def load_checkpoint(state_dir: Path) -> Checkpoint:
    """The checkpoint in ``state_dir``, read as the daemon reads it (its store knows the
    key the daemon signed it with)."""
    checkpoint = CheckpointStore(state_dir).load()
    assert checkpoint is not None, f"no checkpoint in {state_dir}"
    return checkpoint


def fold_logs(config: LearnerConfig, requests: Iterable[bytes], labels: Iterable[bytes]
              ) -> tuple[Learner, Counter[str]]:
    """The model every replica must hold: every request remembered, then every label
    applied in label-log order. Requests that share a query id carry the same record,
    so which copy joins does not change what is learnt."""
    learner = Learner(config)
    for value in requests:
        learner.accept_request(decode_request(value))
    outcomes: Counter[str] = Counter()
    for value in labels:
        try:
            outcomes[learner.apply(decode_label(value)).outcome] += 1
        except DecodeError:
            outcomes["invalid"] += 1
    return learner, outcomes


Probas = dict[str, list[dict[str, float]]]


def probe(learner: Learner, records: Iterable[SimulatedRecord]) -> Probas:
    """Each model's class probabilities on ``records`` (decoded as the daemon decodes)."""
    probas: Probas = {}
    for sim in records:
        record = decode_record(payload(sim))
        key = learner.model_key_for(record)
        if key in learner.registry:
            x = dict(extract(record, learner.config.features))
            probas.setdefault(key, []).append(
                dict(learner.registry.get(key).model.predict_proba_one(x)))
    return probas


def versions(learner: Learner) -> dict[str, int]:
    """Labels learnt per model."""
    return {key: learner.registry.get(key).version for key in learner.registry.keys()}


@dataclass
class Fold:
    """The model folded offline from the logs (``fold_logs``), and each label's outcome."""

    learner: Learner
    outcomes: Counter[str]

    @property
    def learnt(self) -> int:
        """Labels learnt, over every model."""
        return sum(versions(self.learner).values())


def assert_same_models(*learners: Learner, probes: int = 200) -> None:
    """The ``learners`` have learnt as many labels per model, and give the same class
    probabilities (float for float) on ``probes`` fresh floor records."""
    first, *others = learners
    for n, other in enumerate(others, start=2):
        assert versions(other) == versions(first), (
            f"labels per model: learner {n} {versions(other)} != learner 1 {versions(first)}")
    records = floor(probes, seed=99)
    expected = probe(first, records)
    for n, other in enumerate(others, start=2):
        assert probe(other, records) == expected, (  # exact float equality
            f"learner {n} and learner 1 differ on the {probes} probe records")


def make_topics(admin: KafkaAdminClient, unique: Callable[..., str],
                input_partitions: int = INPUT_PARTITIONS) -> TopicNames:
    """Fresh topics for one test, configured as ``stream-al topics create`` makes them,
    except that predictions get ONE partition: then their log order is the order the
    daemon decided in (the budget is a property of that order)."""
    topics = TopicNames(inputs=(unique("parametric"),), predictions=unique("predictions"),
                        requests=unique("requests"), labels=unique("labels"), dlq=unique("dlq"),
                        claims=unique("claims"))
    plans = [replace(plan, partitions=1) if plan.name == topics.predictions else plan
             for plan in topic_plan(topics, input_partitions)]
    admin.create_topics([NewTopic(plan.name, plan.partitions, 1, topic_configs=dict(plan.config))
                         for plan in plans])
    admin.wait_for_topics([plan.name for plan in plans], timeout_ms=30_000)
    return topics


def ends_of(bootstrap: str, topics: Iterable[str]) -> dict[tuple[str, int], int]:
    """(topic, partition) → end offset, for every partition of ``topics``."""
    return {(topic, partition): end for topic in topics
            for partition, end in end_offsets(bootstrap, topic).items()}


def covers(state_dir: Path, ends: Mapping[tuple[str, int], int]) -> bool:
    """Does the checkpoint in ``state_dir`` stand at ``ends`` for every partition given?"""
    if not (state_dir / "checkpoint.bin").is_file():
        return False
    offsets = load_checkpoint(state_dir).offsets
    return all(offsets.get(tp, 0) == end for tp, end in ends.items())


@contextmanager
def restartable_broker(prefix: str, data_dir: Path) -> Iterator[LocalKafka]:
    """A broker of one test's own on fixed ports, so it can be stopped and started
    again on the same data and clients reconnect; ``prefix`` + this session's pid names
    it, so an orphan of a killed session is reaped first."""
    reap_orphans(prefix)
    port = free_port()
    kafka = LocalKafka(f"{prefix}{os.getpid()}", port=port,
                       controller_port=free_port(avoid=frozenset({port})),
                       data_dir=data_dir, die_with_parent=True)
    kafka.start()
    try:
        yield kafka
    finally:
        kafka.discard()
