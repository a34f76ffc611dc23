"""The pure parts of ``stream-al bench throughput``: percentiles, rates and ratios, the
records and their send-time stamp, the daemon's counters and settings file, the report.
No broker, no timing: the measurements themselves run in the integration test."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import typer
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from consumers.bench.throughput.options import (
    SENT_FIELD,
    bench_records,
    bench_topics,
    counters,
    daemon_settings,
    latencies,
    latency_summary,
    learner_config,
    percentile,
    rates,
    ratios,
    record_sizes,
    stamped,
)
from consumers.bench.throughput.report import plot, rate_rows, verdict
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


def test_the_design_target_is_met_at_half_the_mean_bare_rate_and_not_below() -> None:
    at = ratios([38_000.0, 42_000.0], {"logistic": 20_000.0, "arf": 4_000.0})
    assert at["bare_decoded_records_per_s"] == pytest.approx(40_000.0)
    assert at["logistic_vs_bare_decoded"] == pytest.approx(0.5)
    assert at["arf_vs_bare_decoded"] == pytest.approx(0.1)
    assert at["target_met"] is True
    assert ratios([40_000.0], {"logistic": 19_999.0})["target_met"] is False
    assert ratios([40_000.0], {"arf": 30_000.0})["target_met"] is None  # linear not run


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
    expected = {"predicted": 2, "queried": 1, "labels_applied": 1, "dead_letters": 1}
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
    rows = {row["loop"]: row for row in rate_rows(result)}
    assert rows["bare consumer, json.loads"]["share"] == pytest.approx(0.9)
    assert rows["bare consumer, json.loads, after"]["share"] == pytest.approx(1.1)
    assert rows["daemon, logistic"]["share"] == pytest.approx(0.25)
    assert rows["daemon, logistic"]["us_per_record"] == pytest.approx(100.0)
    assert "NOT met" in verdict(result)
    assert verdict(_result(bare=40_000.0, logistic=30_000.0)).endswith(": met")
    png = tmp_path / "out" / "throughput.png"
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
                   "--latency-seconds", "--out", "--plot"):
        assert option in result.output


def _result(bare: float, logistic: float) -> dict[str, Any]:
    """A results file as the bench writes it, with made-up figures."""
    daemon = {"records_per_s": logistic, "records_per_s_wall": logistic / 2, "startup_s": 2.0,
              "labels_applied": 90, "requests": 100}
    latency_figures = {"count": 10, "p50_ms": 5.0, "p95_ms": 9.0, "p99_ms": 12.0,
                       "max_ms": 15.0}
    return {
        "settings": {"records": 1000, "partitions": 6},
        "record_bytes": {"mean": 1230.0, "measurements": 50},
        "machine": {"kafka": "Apache Kafka 4.4.0", "cores": 2},
        "producer": {"records_per_s": 20_000.0, "mb_per_s": 24.0},
        "bare_consumer": {kind: {"records_per_s": rate, "records_per_s_wall": rate / 2,
                                 "startup_s": 0.3}
                          for kind, rate in (("raw", 3 * bare), ("decoded", 0.9 * bare),
                                             ("decoded_after", 1.1 * bare))},
        "pipeline": {"logistic": daemon},
        "inmemory": {"logistic": {"records_per_s": 2 * logistic,
                                  "us_per_record": 5e5 / logistic, "labels_applied": 95}},
        "latency": {"template": "logistic", "rate_achieved": 500.0, "seconds": 2.0,
                    "sent": 10, "received": 10, "produce_to_consumed": latency_figures,
                    "produce_to_daemon_send": latency_figures},
        "ratios": ratios([0.9 * bare, 1.1 * bare], {"logistic": logistic}),
    }


def test_a_latency_phase_missing_predictions_is_kept_on_record_and_run_again() -> None:
    from consumers.bench.throughput.run import _latency_run_retried

    rows = {1: {"sent": 200, "received": 0}, 2: {"sent": 200, "received": 200}}
    result = _latency_run_retried(lambda attempt: rows[attempt])
    assert result["received"] == 200 and result["stalled_attempts"] == [rows[1]]
    whole = _latency_run_retried(lambda attempt: rows[2])
    assert whole["stalled_attempts"] == []
