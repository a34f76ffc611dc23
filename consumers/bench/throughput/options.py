"""``stream-al bench throughput``: what one process sustains on a real broker.

In one run, on one topic of identical pre-produced records (simulated 50-measurement
parametric records), every arm once per round, in the same order each round (A B C A B C
…), so a burst of load from the machine's other work falls on every arm alike:

- the limits: kafka-python's and confluent-kafka's producers (acks=all, idempotent) each
  writing every record to a fresh topic; bare consumers of both clients reading them, raw
  and JSON-decoded (the decoding kafka-python one is the ceiling DESIGN §7 measures the
  daemon against);
- the daemon itself per model template (``stream-al run`` in its own process, as
  deployed, with a simulated oracle answering its queries from the truth);
- the peers: what a user would write instead, a Quix Streams application and a plain
  confluent-kafka loop around the same River pipeline (``peer_apps``), each in its own
  process, predicting every record and learning the labelled ~10 %;
- the daemon's pipeline on the in-memory bus, which separates the Kafka cost from the
  learner's;

then, once, produce→prediction latency at a fixed rate.

This module holds the figures and the pure helpers; ``loops`` the timed loops,
``daemon`` the daemon under test, ``peers`` the peers' processes, ``run`` the order of
the phases and ``report`` the table and the plot.

Rates are taken from the first record handled to the last ("steady"), which leaves out
the group join and the daemon's start-up, and also from the start of the phase ("wall").
Each arm is summed up as the median and the min–max of its rounds; a ratio between two
arms is taken within each round (the two ran minutes apart at most) and then summed up
the same way.
"""

from __future__ import annotations

import json
import math
import statistics
import time
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client.metrics_core import Metric

from consumers.settings import HttpSettings, KafkaSettings, Settings
from stream_al.budget import BudgetConfig
from stream_al.errors import StreamAlError
from stream_al.learner import LearnerConfig
from stream_al.models import ModelConfig, TemplateName
from stream_al.simulate.floor import FloorConfig, FloorSimulator
from stream_al.topics import TopicNames

Row = dict[str, Any]
#: Progress callback: records done so far in the current phase.
Tick = Callable[[int], None]

#: Extra record field carrying the producer's send time (DESIGN §2 keeps unknown fields).
SENT_FIELD = "bench_sent_ns"
POLL_MAX_RECORDS: int = Settings.model_fields["poll_max_records"].default
#: A phase making no progress this long has failed; a guard, never a measurement.
STALL_S = 60.0
_COUNTERS = {  # result field → (sample name, label, label value); None sums every sample
    "predicted": ("stream_al_records_total", "outcome", "predicted"),
    "queried": ("stream_al_records_total", "outcome", "queried"),
    "labels_applied": ("stream_al_labels_total", "outcome", "applied"),
    "labels_read": ("stream_al_labels_total", None, None),
    "dead_letters": ("stream_al_dead_letters_total", None, None),
}


#: The template of the latency run: DESIGN §7's target is stated for the linear one.
LATENCY_TEMPLATE: TemplateName = "logistic"


@dataclass(frozen=True)
class ThroughputOptions:
    """What ``stream-al bench throughput`` measures and where the results go."""

    records: int = 50_000
    bootstrap_servers: str | None = None
    templates: tuple[TemplateName, ...] = ("logistic", "arf")
    #: One latency run per rate, records/s; the first is the headline (``latency``).
    latency_rates: tuple[float, ...] = (500.0,)
    latency_seconds: float = 20.0
    out: Path = Path("bench-results/throughput.json")
    plot: Path | None = Path("bench-results/throughput.png")
    partitions: int = 6
    budget: float = 0.1
    oracle: bool = True
    seed: int = 11
    rounds: int = 3
    #: kafka.fetch_max_wait_ms of the daemon (and of the bench's own consumers).
    fetch_wait_ms: int = 500
    #: The scale-out arms: this many replicas in one group against one (1: not run).
    replicas: int = 2

    def latency_records(self, rate: float) -> int:
        return max(1, round(rate * self.latency_seconds))


class BenchError(StreamAlError):
    """A benchmark phase could not complete (the daemon died, a topic stalled)."""


class DaemonStalled(BenchError):
    """The daemon stopped making progress while alive. Seen with kafka-python 3.0.12: the
    main thread blocks forever in ``KafkaConsumer.poll`` (``send_fetches`` → ``net.run`` →
    an untimed ``Event.wait``) while the I/O thread idles in ``select``. ``log`` holds the
    daemon's output, ending with every thread's stack."""

    def __init__(self, message: str, log: Path) -> None:
        super().__init__(message)
        self.log = log


@dataclass(frozen=True)
class BenchRecord:
    record_id: str
    key: bytes
    value: bytes
    truth: str


def bench_records(count: int, seed: int, measurements: int = 50) -> list[BenchRecord]:
    """Simulated parametric records as a floor producer sends them, keyed by lot."""
    config = FloorConfig(run_length=max(count, 100), tests_per_product=measurements)
    return [BenchRecord(s.record["record_id"], str(s.record["lot_id"]).encode(),
                        json.dumps(s.record, separators=(",", ":")).encode(), s.truth)
            for s in FloorSimulator(config, seed).stream(count)]


def stamped(value: bytes, sent_ns: int) -> bytes:
    """A JSON object with the send time appended as one more field.

    >>> stamped(b'{"a":1}', 5)
    b'{"a":1,"bench_sent_ns":5}'
    """
    return b'%s,"%s":%d}' % (value[:-1], SENT_FIELD.encode(), sent_ns)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile, interpolating linearly between closest ranks (numpy's default).

    >>> percentile([4, 1, 3, 2], 50), percentile([1, 2, 3, 4], 100)
    (2.5, 4.0)
    """
    if not values or not 0 <= q <= 100:
        raise ValueError(f"need values and q in [0, 100], got {len(values)} values, q={q}")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def latency_summary(milliseconds: Sequence[float]) -> Row:
    """Count, mean, p50/p95/p99 and max of latencies in milliseconds."""
    if not milliseconds:
        return {"count": 0}
    return {"count": len(milliseconds), "mean_ms": statistics.fmean(milliseconds),
            **{f"p{q}_ms": percentile(milliseconds, q) for q in (50, 95, 99)},
            "max_ms": max(milliseconds)}


def rates(records: int, started: float, first: float, last: float) -> Row:
    """records/s from the first record handled to the last (steady) and from the start
    of the phase (wall); times in seconds on one clock.

    >>> rates(101, 0.0, 2.0, 3.0)["records_per_s"]
    100.0
    """
    steady = (records - 1) / (last - first) if records > 1 and last > first else None
    return {"records": records, "startup_s": first - started, "seconds": last - first,
            "records_per_s": steady,
            "records_per_s_wall": records / (last - started) if last > started else None}


#: The bare kafka-python arms the daemon is weighed against (DESIGN §7, and issue 13).
BARE_DECODED = "consumer.kafka_python.decoded"
PRODUCER = "producer.kafka_python"
QUIX_PEER, CONFLUENT_PEER = "peer.quix", "peer.confluent"
#: What every skipped arm's note says: the one command that brings them in.
BENCH_EXTRA = "pip install -e '.[bench]'"


def daemon_arm(template: str, client: str = "kafka-python") -> str:
    """``daemon.logistic`` on kafka-python (its name from before confluent-kafka
    became the default client), ``daemon.logistic.confluent``."""
    return f"daemon.{template}" if client == "kafka-python" else f"daemon.{template}.{client}"


def scale_arm(template: str, replicas: int) -> str:
    """``scale.logistic.x2``: that many daemons in one group, ready before the records."""
    return f"scale.{template}.x{replicas}"


def interleaved(arms: Sequence[str], rounds: int) -> list[tuple[int, str]]:
    """(round, arm) in the order they run: every arm once per round, the same order each.

    >>> interleaved(["a", "b"], 2)
    [(1, 'a'), (1, 'b'), (2, 'a'), (2, 'b')]
    """
    return [(round_, arm) for round_ in range(1, rounds + 1) for arm in arms]


def spread(values: Iterable[float | None]) -> Row:
    """Median, min and max of the measured values (None: not measured that round).

    >>> spread([3.0, None, 1.0, 2.0])
    {'median': 2.0, 'min': 1.0, 'max': 3.0, 'n': 3}
    >>> spread([None])
    {'median': None, 'min': None, 'max': None, 'n': 0}
    """
    known = [v for v in values if v is not None]
    if not known:
        return {"median": None, "min": None, "max": None, "n": 0}
    return {"median": statistics.median(known), "min": min(known), "max": max(known),
            "n": len(known)}


def paired_ratio(per_round: Sequence[Mapping[str, float | None]], numerator: str,
                 denominators: Sequence[str]) -> Row:
    """``numerator``'s rate over the smallest of ``denominators``' rates, within each round
    (arms measured minutes apart share the machine's load), then the spread of those.
    A round missing any of the arms gives no ratio.

    >>> paired_ratio([{"d": 10.0, "p": 40.0}, {"d": 12.0, "p": 30.0}], "d", ["p"])["per_round"]
    [0.25, 0.4]
    >>> paired_ratio([{"d": 10.0, "c": 20.0, "p": 50.0}], "d", ["c", "p"])["median"]
    0.5
    """
    found: list[float | None] = []
    for rates_ in per_round:
        top = rates_.get(numerator)
        bottom = [rates_.get(name) for name in denominators]
        known = [b for b in bottom if b]
        found.append(top / min(known) if top and len(known) == len(bottom) else None)
    return {**spread(found), "per_round": found, "numerator": numerator,
            "denominator": denominators[0] if len(denominators) == 1
            else f"min({', '.join(denominators)})"}


#: The figures of an arm's row summed up across rounds.
SUMMED = ("records_per_s", "records_per_s_wall", "cpu_us_per_record", "cpu_us_per_record_total")


def summarise(rounds: Sequence[Mapping[str, Any]], labels: Mapping[str, str]) -> Row:
    """Per arm, in the order run: its label and the spread of each figure across rounds.

    >>> rounds = [{"arms": {"a": {"records_per_s": r}}} for r in (9.0, 7.0, 8.0)]
    >>> summarise(rounds, {"a": "arm a"})["a"]["records_per_s"]
    {'median': 8.0, 'min': 7.0, 'max': 9.0, 'n': 3}
    """
    return {name: {"label": label, **{field: spread(
                r["arms"][name].get(field) for r in rounds if name in r["arms"])
                for field in SUMMED}}
            for name, label in labels.items()}


def round_ratios(per_round: Sequence[Mapping[str, float | None]],
                 templates: Sequence[str], target: float = 0.5,
                 target_template: str = "logistic", replicas: int = 2) -> Row:
    """The paired ratios of the bench: each template over the bare decoding consumer
    (DESIGN §7's verdict on the median), and the target template's daemon over each peer
    and over min(consume, produce) of kafka-python. ``per_round``: arm → records/s."""
    daemon = daemon_arm(target_template)
    on_confluent = daemon_arm(target_template, "confluent")
    per: Row = {f"{t}_vs_bare_decoded": paired_ratio(per_round, daemon_arm(t), [BARE_DECODED])
                for t in templates}
    per.update({
        "daemon_vs_quix_peer": paired_ratio(per_round, daemon, [QUIX_PEER]),
        "daemon_vs_confluent_peer": paired_ratio(per_round, daemon, [CONFLUENT_PEER]),
        "daemon_vs_bare_decoded": paired_ratio(per_round, daemon, [BARE_DECODED]),
        "daemon_vs_min_consume_produce": paired_ratio(per_round, daemon,
                                                      [BARE_DECODED, PRODUCER]),
        # The same daemon on confluent-kafka: the client choice, and the peer on it.
        "daemon_confluent_vs_daemon": paired_ratio(per_round, on_confluent, [daemon]),
        "daemon_confluent_vs_quix_peer": paired_ratio(per_round, on_confluent, [QUIX_PEER]),
        "daemon_confluent_vs_confluent_peer": paired_ratio(per_round, on_confluent,
                                                           [CONFLUENT_PEER]),
        # Scale-out: N replicas in one group against one, started and fed alike.
        "replicas_vs_one": paired_ratio(per_round, scale_arm(target_template, replicas),
                                        [scale_arm(target_template, 1)])})
    measured = per["daemon_vs_bare_decoded"]["median"]
    return {"bare_decoded_records_per_s": spread(r.get(BARE_DECODED) for r in per_round),
            **per, "target": target, "target_template": target_template,
            "target_met": None if measured is None else measured >= target}


def skip_line(skipped: dict[str, str]) -> str:
    """The one line that says what was left out and how to bring it in.

    >>> skip_line({"peer.quix": "quixstreams is not installed: pip install -e '.[bench]'"})
    "skipped peer.quix (quixstreams is not installed): pip install -e '.[bench]'"
    """
    why = sorted({reason.partition(":")[0] for reason in skipped.values()})
    return f"skipped {', '.join(skipped)} ({'; '.join(why)}): {BENCH_EXTRA}"


def labelled(record_id: str, fraction: float) -> bool:
    """Whether a peer learns from this record: ~``fraction`` of records, chosen by record id
    alone (CRC-32, the same in every process), so each peer learns the same ones.

    >>> sum(labelled(f"r{i}", 0.1) for i in range(10_000))
    1020
    """
    return zlib.crc32(record_id.encode()) % 10_000 < fraction * 10_000


def counters(families: Iterable[Metric]) -> dict[str, int]:
    """The record, label and dead-letter totals of a daemon's metrics."""
    found = dict.fromkeys(_COUNTERS, 0)
    for family in families:
        for sample in family.samples:
            for field, (name, label, value) in _COUNTERS.items():
                if sample.name == name and (label is None or sample.labels.get(label) == value):
                    found[field] += int(sample.value)
    return found


def learner_config(template: TemplateName, budget: float) -> LearnerConfig:
    return LearnerConfig(model=ModelConfig(template=template),
                         budget=BudgetConfig(fraction=budget))


def bench_topics(input_topic: str, prefix: str) -> TopicNames:
    return TopicNames(inputs=(input_topic,), predictions=f"{prefix}.predictions",
                      requests=f"{prefix}.requests", labels=f"{prefix}.labels",
                      dlq=f"{prefix}.dlq")


def daemon_settings(kafka: KafkaSettings, topics: TopicNames, config: LearnerConfig,
                    state_dir: Path, port: int) -> Settings:
    """What the daemon under test runs with: its own group, state and metrics port."""
    return Settings(kafka=kafka.model_copy(update={"group_id": f"{topics.predictions}-daemon"}),
                    http=HttpSettings(host="127.0.0.1", port=port), topics=topics,
                    learner=config, state_dir=state_dir, log_level="WARNING")


def latencies(sent: Mapping[bytes, int], arrivals: Sequence[tuple[bytes, int, int]]
              ) -> tuple[list[float], list[float]]:
    """Milliseconds from each send to (a) the prediction's arrival at a consumer and (b) its
    broker timestamp, the moment the daemon sent it. Arrivals are (key, arrived ns, ts ms).

    >>> latencies({b"r1": 1_000_000_000}, [(b"r1", 1_020_000_000, 1_010), (b"x", 0, 0)])
    ([20.0], [10.0])
    """
    known = [(sent[key], arrived, stamp) for key, arrived, stamp in arrivals if key in sent]
    return ([(arrived - at) / 1e6 for at, arrived, _ in known],
            [stamp - at / 1e6 for at, _, stamp in known])


def record_sizes(records: Sequence[BenchRecord]) -> Row:
    """Payload sizes in bytes, and what the latency run's send-time field adds."""
    sizes = [len(r.value) for r in records]
    first = records[0].value
    return {"mean": statistics.fmean(sizes), "min": min(sizes), "max": max(sizes),
            "measurements": len(json.loads(first)["measurements"]),
            "send_time_field": len(stamped(first, time.time_ns())) - len(first)}


def check_stall(progress_at: float, what: str) -> None:
    """Raise if nothing moved since ``progress_at`` (``time.time()``) for ``STALL_S``."""
    if time.time() - progress_at > STALL_S:
        raise BenchError(f"no progress for {STALL_S:.0f} s: {what}")
