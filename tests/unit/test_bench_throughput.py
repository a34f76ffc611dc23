"""The pure parts of ``stream-al bench throughput``: percentiles, rates, the rounds'
order, spreads and paired ratios, the records and their send-time stamp, the daemon's
counters and settings file, the peers' model, the report. No broker, no timing: the
measurements themselves run in the integration test."""

from __future__ import annotations

import io
import json
import random
import sys
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import typer
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console
from typer.testing import CliRunner

from consumers.bench.throughput.options import (
    SENT_FIELD,
    bench_records,
    bench_topics,
    counters,
    daemon_settings,
    interleaved,
    labelled,
    latencies,
    latency_summary,
    learner_config,
    paired_ratio,
    percentile,
    rates,
    record_sizes,
    round_ratios,
    spread,
    stamped,
    summarise,
)
from consumers.bench.throughput.peer_apps import PeerModel, features
from consumers.bench.throughput.report import plot, rate_rows, show, verdict
from consumers.cli import build_cli
from consumers.commands.bench_throughput import _templates
from consumers.settings import KafkaSettings, load_settings
from stream_al.codec import decode_record
from stream_al.metrics import Metrics


@pytest.mark.parametrize("q", [0, 1, 37.5, 50, 95, 99, 100])
def test_percentiles_agree_with_numpy_linear_interpolation(q: float) -> None:
    rng = random.Random(7)
    values = [rng.lognormvariate(2, 1) for _ in range(1 + int(q) * 7)]  # 1 to 701 values
    assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))


def test_percentile_refuses_no_values_and_q_outside_0_100() -> None:
    with pytest.raises(ValueError, match="need values"):
        percentile([], 50)
    with pytest.raises(ValueError, match="q=101"):
        percentile([1.0], 101)


def test_latency_summary_is_ordered_and_counts_every_value() -> None:
    rng = random.Random(3)
    values = [rng.expovariate(0.1) for _ in range(500)]
    summary = latency_summary(values)
    assert summary["count"] == 500
    assert min(values) <= summary["p50_ms"] <= summary["p95_ms"] <= summary["p99_ms"]
    assert summary["p99_ms"] <= summary["max_ms"] == max(values)
    assert latency_summary([]) == {"count": 0}


def test_steady_rate_leaves_out_the_start_up_and_wall_rate_includes_it() -> None:
    row = rates(1001, started=10.0, first=12.0, last=14.0)
    assert row["records_per_s"] == pytest.approx(1000 / 2.0)
    assert row["records_per_s_wall"] == pytest.approx(1001 / 4.0)
    assert row["startup_s"] == pytest.approx(2.0)
    assert rates(1, 0.0, 1.0, 1.0)["records_per_s"] is None


def test_every_arm_runs_once_per_round_in_the_same_order_each_round() -> None:
    order = interleaved(["producer", "daemon", "peer"], 3)
    assert [arm for _, arm in order] == ["producer", "daemon", "peer"] * 3
    assert [round_ for round_, _ in order] == [1, 1, 1, 2, 2, 2, 3, 3, 3]
    assert interleaved(["a"], 0) == []


def test_the_spread_is_the_median_and_range_of_the_rounds_measured() -> None:
    assert spread([5.0, 1.0, 4.0, 2.0]) == {"median": 3.0, "min": 1.0, "max": 5.0, "n": 4}
    assert spread([None, 7.0]) == {"median": 7.0, "min": 7.0, "max": 7.0, "n": 1}
    rounds: list[dict[str, Any]] = [
        {"arms": {"a": {"records_per_s": 10.0, "cpu_us_per_record": None}}},
        {"arms": {"a": {"records_per_s": 30.0, "cpu_us_per_record": 50.0}}},
        {"arms": {}}]  # a round that did not run the arm
    arm = summarise(rounds, {"a": "arm a"})["a"]
    assert arm["label"] == "arm a"
    assert arm["records_per_s"] == {"median": 20.0, "min": 10.0, "max": 30.0, "n": 2}
    assert arm["cpu_us_per_record"]["n"] == 1


def test_ratios_are_paired_within_each_round_before_the_median() -> None:
    # The peer is fast in round 1 and slow in round 3, like the daemon: pairing cancels
    # the machine's load, the ratio of medians (12/40 = 0.3) would not.
    rounds = [{"daemon.logistic": 20.0, "peer.quix": 50.0},
              {"daemon.logistic": 12.0, "peer.quix": 40.0},
              {"daemon.logistic": 6.0, "peer.quix": 10.0}]
    ratio = paired_ratio(rounds, "daemon.logistic", ["peer.quix"])
    assert ratio["per_round"] == pytest.approx([0.4, 0.3, 0.6])
    assert ratio["median"] == pytest.approx(0.4)
    assert (ratio["min"], ratio["max"]) == pytest.approx((0.3, 0.6))
    assert ratio["denominator"] == "peer.quix"
    missing = paired_ratio([{"daemon.logistic": 5.0, "peer.quix": None}], "daemon.logistic",
                           ["peer.quix"])
    assert missing["per_round"] == [None] and missing["median"] is None


def test_the_bench_ratios_and_the_design_target_come_from_paired_rounds() -> None:
    rounds: list[dict[str, float | None]] = [
        {"daemon.logistic": 10_000.0, "daemon.arf": 2_000.0, "peer.quix": 20_000.0,
         "peer.confluent": 25_000.0, "consumer.kafka_python.decoded": 20_000.0,
         "producer.kafka_python": 12_500.0, "daemon.logistic.confluent": 30_000.0},
        {"daemon.logistic": 9_000.0, "daemon.arf": 1_000.0, "peer.quix": 15_000.0,
         "peer.confluent": None, "consumer.kafka_python.decoded": 30_000.0,
         "producer.kafka_python": 45_000.0, "daemon.logistic.confluent": 18_000.0}]
    at = round_ratios(rounds, ["logistic", "arf"])
    assert at["bare_decoded_records_per_s"]["median"] == pytest.approx(25_000.0)
    assert at["logistic_vs_bare_decoded"]["per_round"] == pytest.approx([0.5, 0.3])
    assert at["arf_vs_bare_decoded"]["per_round"] == pytest.approx([0.1, 1 / 30])
    assert at["daemon_vs_quix_peer"]["per_round"] == pytest.approx([0.5, 0.6])
    assert at["daemon_vs_confluent_peer"]["per_round"] == [pytest.approx(0.4), None]
    # The same daemon on the other client, paired with its kafka-python run and the peers.
    assert at["daemon_confluent_vs_daemon"]["per_round"] == pytest.approx([3.0, 2.0])
    assert at["daemon_confluent_vs_quix_peer"]["per_round"] == pytest.approx([1.5, 1.2])
    assert at["daemon_confluent_vs_confluent_peer"]["per_round"] == [pytest.approx(1.2), None]
    # min(consume, produce): the producer in round 1, the consumer in round 2.
    assert at["daemon_vs_min_consume_produce"]["per_round"] == pytest.approx([0.8, 0.3])
    assert at["daemon_vs_bare_decoded"]["median"] == pytest.approx(0.4)
    assert at["target_met"] is False  # 0.4 < 0.5
    met = round_ratios([{"daemon.logistic": 10.0, "consumer.kafka_python.decoded": 20.0}],
                       ["logistic"])
    assert met["target_met"] is True
    assert round_ratios([{"daemon.arf": 1.0}], ["arf"])["target_met"] is None
    # Scale-out: the N-replica arm over the one-replica arm, round by round.
    scaled = round_ratios([{"scale.logistic.x1": 4_000.0, "scale.logistic.x3": 9_000.0},
                           {"scale.logistic.x1": 5_000.0, "scale.logistic.x3": None}],
                          ["logistic"], replicas=3)["replicas_vs_one"]
    assert scaled["per_round"] == [pytest.approx(2.25), None]
    assert scaled["numerator"] == "scale.logistic.x3"


def test_the_peers_learn_about_a_tenth_of_records_chosen_by_id_alone() -> None:
    records = bench_records(2_000, seed=3)
    chosen = [r.record_id for r in records if labelled(r.record_id, 0.1)]
    assert 150 <= len(chosen) <= 250
    assert chosen == [r.record_id for r in records if labelled(r.record_id, 0.1)]
    assert not any(labelled(r.record_id, 0.0) for r in records)


def test_the_peer_predicts_each_record_and_learns_only_the_labelled_ones() -> None:
    records = bench_records(600, seed=4)
    labels = {r.record_id: r.truth for r in records if labelled(r.record_id, 0.1)}
    peer = PeerModel(labels)
    outputs = [peer.handle(json.loads(r.value)) for r in records]
    assert [o["record_id"] for o in outputs] == [r.record_id for r in records]
    assert peer.learnt == len(labels)
    assert set(peer.models) == {json.loads(r.value)["product"] for r in records}
    assert outputs[0]["proba"] == {} and outputs[0]["predicted"] is None  # nothing learnt
    last = outputs[-1]
    assert last["predicted"] in {"pass", "fail"}
    assert sum(last["proba"].values()) == pytest.approx(1.0, abs=1e-6)
    assert peer.first_at <= peer.last_at


def test_the_peers_features_are_the_daemons_less_the_skipped_tests() -> None:
    from stream_al.codec import decode_record
    from stream_al.features import FeatureConfig, extract

    record = bench_records(1, seed=5)[0]
    raw = json.loads(record.value)
    raw["measurements"]["leak_ua"] = None
    daemon = extract(decode_record(json.dumps(raw).encode()), FeatureConfig())
    assert features(raw) == {k: v for k, v in daemon.items() if v is not None}
    assert "leak_ua" not in features(raw)


def test_records_are_distinct_50_measurement_parametric_records_keyed_by_lot() -> None:
    records = bench_records(300, seed=5)
    assert len({r.record_id for r in records}) == 300
    for record in records[:20]:
        decoded = decode_record(record.value)
        assert decoded.kind == "parametric"
        assert len(decoded.measurements) == 50
        assert record.key == str(decoded.lot_id).encode()
    sizes = record_sizes(records)
    assert sizes["mean"] == pytest.approx(sum(len(r.value) for r in records) / 300)
    assert sizes["min"] <= sizes["mean"] <= sizes["max"]
    assert sizes["measurements"] == 50


def test_the_send_time_stamp_is_kept_by_the_decoder_as_an_extra_field() -> None:
    record = bench_records(1, seed=5)[0]
    value = stamped(record.value, 1_764_000_000_123_456_789)
    assert json.loads(value) == {**json.loads(record.value), SENT_FIELD: 1_764_000_000_123_456_789}
    assert getattr(decode_record(value), SENT_FIELD) == 1_764_000_000_123_456_789


def test_latencies_pair_each_prediction_with_its_send_and_skip_strangers() -> None:
    sent = {b"r1": 5_000_000_000, b"r2": 5_002_000_000}
    arrivals = [(b"r2", 5_010_000_000, 5_006), (b"other", 1, 1), (b"r1", 5_004_000_000, 5_001)]
    end_to_end, at_send = latencies(sent, arrivals)
    assert end_to_end == pytest.approx([8.0, 4.0])
    assert at_send == pytest.approx([4.0, 1.0])


def test_counters_read_the_same_totals_from_a_registry_and_from_its_exposition() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    for outcome in ("predicted", "predicted", "queried"):
        metrics.observe_record("parametric", outcome)
    metrics.observe_label("applied", 1.0)
    metrics.observe_label("duplicate", None)
    metrics.observe_dead_letter("record_invalid")
    # labels_read counts every outcome: the duplicate too.
    expected = {"predicted": 2, "queried": 1, "labels_applied": 1, "labels_read": 2,
                "dead_letters": 1}
    assert counters(registry.collect()) == expected
    text = generate_latest(registry).decode()
    assert counters(text_string_to_metric_families(text)) == expected


def test_the_daemons_settings_file_reads_back_as_the_same_settings(tmp_path: Path) -> None:
    kafka = KafkaSettings.model_validate({"bootstrap_servers": "127.0.0.1:1,127.0.0.1:2"})
    topics = bench_topics("bench-x.parametric", "bench-x-arf")
    settings = daemon_settings(kafka, topics, learner_config("arf", 0.1), tmp_path / "s", 1234)
    path = tmp_path / "daemon.json"
    path.write_text(settings.model_dump_json(), encoding="utf-8")
    assert load_settings(path).model_dump() == settings.model_dump()
    assert settings.learner.model.template == "arf"
    assert settings.learner.budget.fraction == 0.1
    assert settings.kafka.group_id != kafka.group_id  # its own group: reads from the start
    assert settings.topics.inputs == ("bench-x.parametric",)


def test_rows_share_and_verdict_follow_the_bare_decoding_consumer(tmp_path: Path) -> None:
    result = _result(bare=40_000.0, logistic=10_000.0)
    rows = {row["arm"]: row for row in rate_rows(result)}
    assert rows["consumer.kafka_python.decoded"]["share"] == pytest.approx(1.0)
    assert rows["daemon.logistic"]["share"] == pytest.approx(0.25)
    assert rows["daemon.logistic"]["min"] == pytest.approx(9_000.0)
    assert rows["daemon.logistic"]["cpu_us_per_record"] == pytest.approx(300.0)
    assert "no imputer" in rows["peer.quix"]["note"]
    assert "NOT met" in verdict(result)
    assert "daemon / Quix Streams peer: 0.25 ×" in verdict(result)
    assert ": met" in verdict(_result(bare=40_000.0, logistic=30_000.0))
    out = io.StringIO()
    show(result, Console(file=out, width=200))
    text = out.getvalue()
    assert "r1 0.50→0.70" in text
    assert "skipped peer.confluent (confluent_kafka is not installed): pip install -e " \
        "'.[bench]'" in text
    png = tmp_path / "out" / "throughput.png"
    plot(result, png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_every_latency_run_gets_a_table_and_bars(tmp_path: Path) -> None:
    result = _result(bare=40_000.0, logistic=10_000.0)
    behind = {"count": 10, "p50_ms": 2_400.0, "p95_ms": 4_100.0, "p99_ms": 4_600.0,
              "max_ms": 4_700.0}
    slow = {**result["latency"], "rate_achieved": 5_000.0, "sent": 50, "received": 50,
            "produce_to_consumed": behind, "produce_to_daemon_send": behind}
    result["latency_runs"] = [result["latency"], slow]
    out = io.StringIO()
    show(result, Console(file=out, width=250))
    text = out.getvalue()
    assert "fed at 500 records/s" in text and "fed at 5,000 records/s" in text
    assert "4600.0" in text  # the second run's p99
    png = tmp_path / "two.png"
    plot(result, png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_templates_are_checked_against_the_known_ones() -> None:
    assert _templates(" logistic, arf ") == ("logistic", "arf")
    with pytest.raises(typer.BadParameter, match="'forest'"):
        _templates("logistic,forest")
    with pytest.raises(typer.BadParameter, match="at least one"):
        _templates(" , ")


def test_the_command_is_registered_with_the_documented_options() -> None:
    result = CliRunner().invoke(build_cli(), ["bench", "throughput", "--help"])
    assert result.exit_code == 0
    for option in ("--records", "--bootstrap-servers", "--templates", "--latency-rate",
                   "--latency-seconds", "--rounds", "--out", "--plot"):
        assert option in result.output


def _result(bare: float, logistic: float) -> dict[str, Any]:
    """A results file as the bench writes it, with made-up figures: two rounds, the
    confluent peer skipped."""
    labels = {"producer.kafka_python": "producer, kafka-python",
              "consumer.kafka_python.decoded": "bare consumer, kafka-python, decoded",
              "daemon.logistic": "daemon, logistic", "peer.quix": "peer, Quix Streams + River",
              "inmemory.logistic": "in-memory pipeline, logistic"}
    rounds: list[dict[str, Any]] = []
    for round_, scale in ((1, 0.9), (2, 1.1)):
        rates_ = {"producer.kafka_python": 20_000.0, "consumer.kafka_python.decoded": bare,
                  "daemon.logistic": logistic * scale, "peer.quix": 4 * logistic * scale,
                  "inmemory.logistic": 2 * logistic}
        rounds.append({"round": round_, "load_average_before": [0.5 * round_, 0, 0],
                       "load_average_after": [0.5 * round_ + 0.2, 0, 0],
                       "arms": {name: {"records_per_s": rate, "records_per_s_wall": rate / 2,
                                       "startup_s": 2.0, "labels_applied": 90, "requests": 100,
                                       "mb_per_s": 24.0, "cpu_us_per_record": 300.0}
                                for name, rate in rates_.items()}})
    latency_figures = {"count": 10, "p50_ms": 5.0, "p95_ms": 9.0, "p99_ms": 12.0,
                       "max_ms": 15.0}
    per_round = [{n: row["records_per_s"] for n, row in r["arms"].items()} for r in rounds]
    return {
        "settings": {"records": 1000, "partitions": 6},
        "record_bytes": {"mean": 1230.0, "measurements": 50},
        "machine": {"kafka": "Apache Kafka 4.4.0", "cores": 2},
        "rounds": rounds, "arms": summarise(rounds, labels),
        "skipped": {"peer.confluent": "confluent_kafka is not installed: pip install -e "
                                      "'.[bench]'"},
        "latency": {"template": "logistic", "rate_achieved": 500.0, "seconds": 2.0,
                    "sent": 10, "received": 10, "produce_to_consumed": latency_figures,
                    "produce_to_daemon_send": latency_figures},
        "ratios": round_ratios(per_round, ["logistic"]),
    }


def test_a_latency_phase_missing_predictions_is_kept_on_record_and_run_again() -> None:
    from consumers.bench.throughput.run import _latency_run_retried

    rows = {1: {"sent": 200, "received": 0}, 2: {"sent": 200, "received": 200}}
    result = _latency_run_retried(lambda attempt: rows[attempt])
    assert result["received"] == 200 and result["stalled_attempts"] == [rows[1]]
    whole = _latency_run_retried(lambda attempt: rows[2])
    assert whole["stalled_attempts"] == []


def test_arms_run_limits_then_daemon_beside_peers_and_skip_what_is_not_installed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from consumers.bench.throughput.options import BENCH_EXTRA, ThroughputOptions
    from consumers.bench.throughput.run import bench_arms

    kafka = KafkaSettings.model_validate({"bootstrap_servers": "127.0.0.1:1"})
    options = ThroughputOptions(records=10, templates=("logistic", "arf"))
    records = bench_records(10, seed=1)

    def names() -> tuple[list[str], dict[str, str]]:
        arms, skipped = bench_arms(kafka, "run", "run.parametric", records, options, tmp_path)
        return [arm.name for arm in arms], skipped

    if find_spec("quixstreams") and find_spec("confluent_kafka"):
        every, none = names()
        assert every == ["producer.kafka_python", "producer.confluent",
                         "consumer.kafka_python.raw", "consumer.kafka_python.decoded",
                         "consumer.confluent.raw", "consumer.confluent.decoded",
                         "daemon.logistic", "daemon.logistic.confluent", "peer.quix",
                         "peer.confluent", "scale.logistic.x1", "scale.logistic.x2",
                         "daemon.arf", "inmemory.logistic", "inmemory.arf"]
        assert none == {}
    monkeypatch.setitem(sys.modules, "quixstreams", None)  # find_spec: not installed
    monkeypatch.setitem(sys.modules, "confluent_kafka", None)
    left, skipped = names()
    assert left == ["producer.kafka_python", "consumer.kafka_python.raw",
                    "consumer.kafka_python.decoded", "daemon.logistic", "scale.logistic.x1",
                    "scale.logistic.x2", "daemon.arf", "inmemory.logistic", "inmemory.arf"]
    assert set(skipped) == {"producer.confluent", "consumer.confluent.raw",
                            "consumer.confluent.decoded", "peer.quix", "peer.confluent",
                            "daemon.logistic.confluent"}
    assert all(reason.endswith(BENCH_EXTRA) for reason in skipped.values())
    # --replicas 1: no scale-out arms.
    options = ThroughputOptions(records=10, templates=("logistic",), replicas=1)
    single, _ = names()
    assert "daemon.logistic" in single and not any(n.startswith("scale.") for n in single)
