"""The peers under test: ``peer_apps`` in a process of its own on the bench's topic, run
until it has predicted every record, timed from the first record it handled to the last
(its own clock, which is also the one that stamps the daemon's predictions)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from consumers.bench.throughput.daemon import (
    children_cpu_s,
    cpu_figures,
    wait_for_messages,
)
from consumers.bench.throughput.loops import ensure_topics, topic_timestamps
from consumers.bench.throughput.options import (
    BENCH_EXTRA,
    BenchError,
    BenchRecord,
    Row,
    ThroughputOptions,
    Tick,
    labelled,
    rates,
)
from consumers.kafka.topics import TopicPlan
from consumers.settings import KafkaSettings

PeerKind = Literal["quix", "confluent"]
#: What each peer needs installed, by import name.
NEEDS: dict[PeerKind, str] = {"quix": "quixstreams", "confluent": "confluent_kafka"}
#: A peer exits by itself after its last prediction; this long is a hang.
_EXIT_S = 60.0


def missing(module: str) -> str | None:
    """Why an arm needing ``module`` cannot run, or None when it can."""
    if importlib.util.find_spec(module) is None:
        return f"{module} is not installed: {BENCH_EXTRA}"
    return None


def peer_run(kafka: KafkaSettings, topic: str, kind: PeerKind, records: Sequence[BenchRecord],
             options: ThroughputOptions, workdir: Path, tick: Tick, round_: int = 1) -> Row:
    """One peer from the beginning of ``topic`` in a fresh group, to its own predictions
    topic, until it has predicted every record and exited."""
    prefix = f"{topic}-peer-{kind}-r{round_}"
    output = f"{prefix}.predictions"
    ensure_topics(kafka, [TopicPlan(output, options.partitions, {})])
    # The labels reach the peer joined to their records, as the daemon's oracle answers
    # at once: the peer learns a record's label right after predicting it.
    labels = {r.record_id: r.truth for r in records if labelled(r.record_id, options.budget)}
    config, result, log = (workdir / f"{prefix}.{suffix}" for suffix in ("json", "result.json",
                                                                           "log"))
    config.write_text(json.dumps({
        "bootstrap": ",".join(kafka.bootstrap_servers), "group": f"{prefix}-group",
        "input": topic, "output": output, "count": len(records), "labels": labels,
        "state_dir": str(workdir / f"{prefix}-state"), "result": str(result)}),
        encoding="utf-8")
    env = {**os.environ, "PYTHONFAULTHANDLER": "1"}
    children_before = children_cpu_s()
    started = time.time()
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "consumers.bench.throughput.peer_apps", kind, str(config)],
            stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        steady_cpu = wait_for_messages(kafka, output, len(records), tick, process, log,
                                       what=f"the {kind} peer", exits_when_done=True)
        code = process.wait(timeout=_EXIT_S)
    except subprocess.TimeoutExpired:
        raise BenchError(f"the {kind} peer did not exit {_EXIT_S:.0f} s after its last "
                         f"prediction; its log: {log}") from None
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    if code != 0:
        raise BenchError(f"the {kind} peer exited ({code}); its log: {log}")
    total_cpu = children_cpu_s() - children_before
    handled = json.loads(result.read_text(encoding="utf-8"))
    stamps, distinct = topic_timestamps(kafka, output, len(records))
    return {"peer": kind,
            **rates(len(records), started, handled["first_at"], handled["last_at"]),
            "predictions": len(stamps), "distinct_record_ids": distinct,
            "labels_applied": handled["learnt"], "models": handled["models"],
            **cpu_figures(steady_cpu, total_cpu, len(records))}
