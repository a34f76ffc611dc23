"""``stream-al bench throughput`` at toy sizes on the real broker: every arm runs in each
round, the daemon and each peer predict every record exactly once, and the results file
holds every figure. Nothing here is about speed: the figures are only checked to exist
and be consistent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kafka.admin import KafkaAdminClient
from rich.console import Console

from consumers.bench.throughput.options import (
    BENCH_EXTRA,
    ThroughputOptions,
    bench_records,
    labelled,
)
from consumers.bench.throughput.peers import missing
from consumers.bench.throughput.run import run_bench

pytestmark = pytest.mark.integration

RECORDS = 400
ROUNDS = 2
#: The arms that need the [bench] extra (scripts/test installs it, so CI runs them).
CONFLUENT_ARMS = ("producer.confluent", "consumer.confluent.raw", "consumer.confluent.decoded",
                  "peer.confluent", "daemon.logistic.confluent")


def test_a_small_run_measures_every_arm_in_every_round_and_writes_every_field(
    kafka_bootstrap: str, kafka_admin: KafkaAdminClient, tmp_path: Path
) -> None:
    options = ThroughputOptions(records=RECORDS, bootstrap_servers=kafka_bootstrap,
                                latency_rates=(100, 50), latency_seconds=2, out=tmp_path / "t.json",
                                plot=None, rounds=ROUNDS)
    with (tmp_path / "progress.txt").open("w", encoding="utf-8") as progress:
        returned = run_bench(options, Console(file=progress, width=200))
    result = json.loads(options.out.read_text(encoding="utf-8"))

    assert result == json.loads(json.dumps(returned))
    assert set(result) >= {"run_id", "settings", "record_bytes", "rounds", "arms", "skipped",
                           "latency", "latency_runs", "ratios", "machine", "code"}
    assert result["record_bytes"]["measurements"] == 50
    expected = ["producer.kafka_python", "consumer.kafka_python.raw",
                "consumer.kafka_python.decoded", "daemon.logistic", "daemon.arf",
                "inmemory.logistic", "inmemory.arf", "peer.quix", "scale.logistic.x1",
                "scale.logistic.x2", *CONFLUENT_ARMS]
    skipped = set(result["skipped"])
    if missing("confluent_kafka") is None:
        assert skipped.isdisjoint(CONFLUENT_ARMS)
    if missing("quixstreams") is None:
        assert "peer.quix" not in skipped
    for name in skipped:
        assert BENCH_EXTRA in result["skipped"][name]
    run = [name for name in expected if name not in skipped]
    assert set(result["arms"]) == set(run)

    assert [r["round"] for r in result["rounds"]] == list(range(1, ROUNDS + 1))
    labels = sum(labelled(r.record_id, options.budget) for r in bench_records(RECORDS, 11))
    for round_ in result["rounds"]:
        assert list(round_["arms"]) == list(result["arms"])  # the same order every round
        assert len(round_["load_average_before"]) == len(round_["load_average_after"]) == 3
        arms = round_["arms"]
        for name in run:
            assert arms[name]["records"] == RECORDS, name
            assert arms[name]["records_per_s"] > 0, name
        daemons = [f"daemon.{t}" for t in ("logistic", "arf")] + [
            n for n in run if n == "daemon.logistic.confluent"]
        for name in daemons:
            daemon = arms[name]
            assert daemon["client"] == ("confluent" if name.endswith("confluent")
                                        else "kafka-python")
            assert daemon["predictions"] == daemon["distinct_record_ids"] == RECORDS
            assert daemon["predicted"] + daemon["queried"] == RECORDS
            assert daemon["dead_letters"] == 0
            assert 0 < daemon["requests"] <= RECORDS
            assert daemon["cpu_s_total"] > 0
        for replicas in (1, 2):  # every record predicted once, by one replica or another
            scale = arms[f"scale.logistic.x{replicas}"]
            assert scale["replicas"] == replicas
            assert scale["predictions"] == scale["distinct_record_ids"] == RECORDS
            assert len(scale["records_per_replica"]) == replicas
            assert sum(scale["records_per_replica"]) == RECORDS
            # Every replica reads every label, whichever one asked: each learns some.
            assert all(n > 0 for n in scale["labels_learnt_per_replica"]), scale
        for name in (n for n in run if n.startswith("peer.")):
            peer = arms[name]  # its output topic, read back: every record predicted once
            assert peer["predictions"] == peer["distinct_record_ids"] == RECORDS, name
            assert peer["labels_applied"] == labels, name
            assert peer["models"] == 3 and peer["cpu_s_total"] > 0, name
    for name, arm in result["arms"].items():
        assert arm["records_per_s"]["n"] == ROUNDS, name
        assert arm["records_per_s"]["min"] <= arm["records_per_s"]["median"]
        assert arm["records_per_s"]["median"] <= arm["records_per_s"]["max"]

    ratios = result["ratios"]
    wanted = ["daemon_vs_bare_decoded", "daemon_vs_min_consume_produce",
              "logistic_vs_bare_decoded", "arf_vs_bare_decoded", "replicas_vs_one"]
    wanted += [key for key, arm in (("daemon_vs_quix_peer", "peer.quix"),
                                    ("daemon_vs_confluent_peer", "peer.confluent"))
               if arm in run]
    for key in wanted:
        assert len(ratios[key]["per_round"]) == ROUNDS, key
        assert all(value > 0 for value in ratios[key]["per_round"]), key
        assert ratios[key]["median"] > 0, key
    assert isinstance(ratios["target_met"], bool)

    # One latency run per rate, the first also the headline.
    assert result["latency"] == result["latency_runs"][0]
    assert [run["rate_target"] for run in result["latency_runs"]] == [100, 50]
    for latency, count in zip(result["latency_runs"], (200, 100), strict=True):
        assert latency["received"] == latency["sent"] == count
        for key in ("produce_to_consumed", "produce_to_daemon_send"):
            assert latency[key]["count"] == count
            assert 0 < latency[key]["p50_ms"] <= latency[key]["p99_ms"]
    assert {"cores", "python", "kafka_python", "river", "kafka", "quixstreams",
            "confluent_kafka", "librdkafka"} <= set(result["machine"])
    assert result["code"]["stream_al"]
    leftovers = [t for t in kafka_admin.list_topics() if t.startswith(result["run_id"])]
    assert leftovers == [], "a given broker is left without the bench's topics"
