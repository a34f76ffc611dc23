"""The Metrics object: DESIGN §8 names and labels, bounded label values, real values."""

from __future__ import annotations

import math
from typing import get_args

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from stream_al.evaluation import WINDOWS, Window
from stream_al.learner import LabelOutcome
from stream_al.metrics import (
    DEAD_LETTER_REASONS,
    LABEL_LATENCY_BUCKETS,
    LABEL_OUTCOMES,
    PROCESSING_BUCKETS,
    UNCERTAINTY_BUCKETS,
    Metrics,
    lag_from,
)
from tests.prometheus_support import DESIGN_METRICS, promtool

_ACCURACIES: dict[Window, float | None] = {"queried": 0.7, "audit": 0.9, "inline": None}


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def metrics(registry: CollectorRegistry) -> Metrics:
    return Metrics(registry)


def exercise_every_metric(metrics: Metrics) -> None:
    metrics.observe_record("parametric", "predicted")
    metrics.observe_record("transaction", "queried")
    metrics.observe_record("unknown", "dead_letter")
    metrics.observe_query("PMIC-A7", "uncertainty")
    metrics.observe_uncertainty(0.42)
    metrics.observe_processing(3e-5)
    metrics.observe_label("applied", 95.0)
    metrics.observe_dead_letter("record_invalid")
    metrics.observe_query_skip("too_large")
    metrics.set_model_state("PMIC-A7", threshold=0.61, queried_fraction=0.04,
                            budget_fraction=0.05, accuracies=_ACCURACIES, labels=12)
    metrics.set_pending_queries(7)
    metrics.set_consumer_lag("ate.parametric", 3, 120)
    metrics.mark_checkpoint(1_795_000_000.0)


def exposed_metrics(registry: CollectorRegistry) -> dict[str, set[str]]:
    """Exposed metric name → label names (a histogram by its base name, without ``le``)."""
    exposed: dict[str, set[str]] = {}
    for family in registry.collect():
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            name = family.name if family.type == "histogram" else sample.name
            exposed.setdefault(name, set()).update(set(sample.labels) - {"le"})
    return exposed


# -- the contract of DESIGN §8 ----------------------------------------------------------------


def test_every_design_metric_is_exposed_with_exactly_its_labels(
        metrics: Metrics, registry: CollectorRegistry) -> None:
    exercise_every_metric(metrics)
    assert exposed_metrics(registry) == DESIGN_METRICS


def test_counters_get_the_total_suffix_the_prometheus_client_way(
        metrics: Metrics, registry: CollectorRegistry) -> None:
    metrics.observe_record("parametric", "predicted")
    exposition = generate_latest(registry).decode()
    assert 'stream_al_records_total{kind="parametric",outcome="predicted"} 1.0' in exposition
    assert "stream_al_records_total_total" not in exposition


def test_vocabularies_match_the_core(metrics: Metrics) -> None:
    assert LABEL_OUTCOMES == get_args(LabelOutcome)
    assert set(WINDOWS) == {"queried", "audit", "inline"}


# -- records, queries, labels, dead letters ---------------------------------------------------


def test_known_combinations_read_zero_before_their_first_event(
        registry: CollectorRegistry) -> None:
    Metrics(registry)
    assert registry.get_sample_value(
        "stream_al_records_total", {"kind": "transaction", "outcome": "dead_letter"}) == 0.0
    assert registry.get_sample_value("stream_al_labels_total", {"outcome": "expired"}) == 0.0
    assert registry.get_sample_value("stream_al_dead_letters_total",
                                     {"reason": "label_duplicate"}) == 0.0


def test_records_are_counted_by_kind_and_outcome(
        metrics: Metrics, registry: CollectorRegistry) -> None:
    for _ in range(3):
        metrics.observe_record("parametric", "queried")
    metrics.observe_record("parametric", "predicted")
    value = registry.get_sample_value
    assert value("stream_al_records_total", {"kind": "parametric", "outcome": "queried"}) == 3
    assert value("stream_al_records_total", {"kind": "parametric", "outcome": "predicted"}) == 1


@pytest.mark.parametrize(("kind", "outcome"), [("parametric", "dropped"), ("L123-0001", "queried")])
def test_unlisted_record_labels_are_refused(metrics: Metrics, kind: str, outcome: str) -> None:
    with pytest.raises(ValueError, match="is not one of"):
        metrics.observe_record(kind, outcome)


def test_a_query_creates_every_reason_of_its_model_at_zero(
        metrics: Metrics, registry: CollectorRegistry) -> None:
    metrics.observe_query("PMIC-A7", "audit")
    value = registry.get_sample_value
    assert value("stream_al_queries_total", {"model_key": "PMIC-A7", "reason": "audit"}) == 1
    assert value("stream_al_queries_total", {"model_key": "PMIC-A7", "reason": "novelty"}) == 0
    with pytest.raises(ValueError, match="query reason"):
        metrics.observe_query("PMIC-A7", "curiosity")


def test_label_latency_is_observed_only_when_known(
        metrics: Metrics, registry: CollectorRegistry) -> None:
    metrics.observe_label("applied", 1500.0)
    metrics.observe_label("unknown_query", None)
    value = registry.get_sample_value
    assert value("stream_al_labels_total", {"outcome": "applied"}) == 1
    assert value("stream_al_labels_total", {"outcome": "unknown_query"}) == 1
    assert value("stream_al_label_latency_seconds_count") == 1
    assert value("stream_al_label_latency_seconds_sum") == 1500.0
    assert value("stream_al_label_latency_seconds_bucket", {"le": "1200.0"}) == 0
    assert value("stream_al_label_latency_seconds_bucket", {"le": "1800.0"}) == 1


def test_an_unlisted_dead_letter_code_counts_as_other_never_as_free_text(
        metrics: Metrics, registry: CollectorRegistry) -> None:
    metrics.observe_dead_letter("label_expired")
    metrics.observe_dead_letter("measurements.vdd: value is not a number")
    exposition = generate_latest(registry).decode()
    assert registry.get_sample_value("stream_al_dead_letters_total",
                                     {"reason": "label_expired"}) == 1
    assert registry.get_sample_value("stream_al_dead_letters_total", {"reason": "other"}) == 1
    assert "not a number" not in exposition


def test_dead_letter_codes_cover_the_pipeline_codes() -> None:
    label_codes = {f"label_{outcome}" for outcome in LABEL_OUTCOMES if outcome != "applied"}
    assert {"record_invalid", "request_invalid"} | label_codes <= set(DEAD_LETTER_REASONS)


# -- state gauges -------------------------------------------------------------------------


def test_model_state_is_published(metrics: Metrics, registry: CollectorRegistry) -> None:
    metrics.set_model_state("PMIC-A7", threshold=0.61, queried_fraction=0.06,
                            budget_fraction=0.05, accuracies=_ACCURACIES, labels=40)
    value = registry.get_sample_value
    key = {"model_key": "PMIC-A7"}
    assert value("stream_al_query_threshold", key) == 0.61
    assert value("stream_al_budget_spent_ratio", key) == pytest.approx(1.2)
    assert value("stream_al_model_accuracy", {**key, "window": "audit"}) == 0.9
    assert value("stream_al_model_accuracy", {**key, "window": "queried"}) == 0.7
    assert value("stream_al_model_accuracy", {**key, "window": "inline"}) is None
    assert value("stream_al_model_labels_total", key) == 40


def test_model_label_total_never_moves_back_after_a_restore(
        metrics: Metrics, registry: CollectorRegistry) -> None:
    for labels in (40, 35, 40, 42):  # 35: restored from an older checkpoint, then replayed
        metrics.set_model_state("PMIC-A7", threshold=0.5, queried_fraction=0.0,
                                budget_fraction=0.05, accuracies={}, labels=labels)
    assert registry.get_sample_value("stream_al_model_labels_total",
                                     {"model_key": "PMIC-A7"}) == 42


def test_spent_ratio_without_a_budget(metrics: Metrics, registry: CollectorRegistry) -> None:
    def ratio(queried: float) -> float | None:
        metrics.set_model_state("X", threshold=1.0, queried_fraction=queried,
                                budget_fraction=0.0, accuracies={}, labels=0)
        return registry.get_sample_value("stream_al_budget_spent_ratio", {"model_key": "X"})

    assert ratio(0.0) == 0.0
    assert ratio(0.01) == math.inf


def test_unknown_accuracy_window_is_refused(metrics: Metrics) -> None:
    with pytest.raises(ValueError, match="window"):
        metrics.set_model_state("X", threshold=1.0, queried_fraction=0.0, budget_fraction=0.1,
                                accuracies={"yesterday": 0.5},  # type: ignore[dict-item]
                                labels=0)


def test_consumer_lag_is_set_and_forgotten_per_partition(
        metrics: Metrics, registry: CollectorRegistry) -> None:
    metrics.set_consumer_lag("ate.parametric", 0, 250)
    metrics.set_consumer_lag("ate.parametric", 1, 4)
    metrics.forget_partition("ate.parametric", 0)
    metrics.forget_partition("ate.parametric", 9)  # never published: harmless
    value = registry.get_sample_value
    assert value("stream_al_consumer_lag", {"topic": "ate.parametric", "partition": "0"}) is None
    assert value("stream_al_consumer_lag", {"topic": "ate.parametric", "partition": "1"}) == 4


def test_pending_checkpoint_uncertainty_and_processing(
        metrics: Metrics, registry: CollectorRegistry) -> None:
    metrics.set_pending_queries(13)
    metrics.mark_checkpoint(1_795_000_123.5)
    metrics.observe_uncertainty(0.83)
    metrics.observe_processing(4e-5)
    value = registry.get_sample_value
    assert value("stream_al_pending_queries") == 13
    assert value("stream_al_last_checkpoint_timestamp_seconds") == 1_795_000_123.5
    assert value("stream_al_uncertainty_bucket", {"le": "0.8"}) == 0
    assert value("stream_al_uncertainty_bucket", {"le": "0.85"}) == 1
    assert value("stream_al_processing_seconds_bucket", {"le": "5e-05"}) == 1


def test_build_info_names_the_versions(registry: CollectorRegistry) -> None:
    Metrics(registry)
    [family] = [f for f in registry.collect() if f.name == "stream_al_build"]
    [sample] = family.samples
    assert sample.name == "stream_al_build_info" and sample.value == 1
    assert sample.labels["version"] and sample.labels["python"].count(".") == 2
    assert sample.labels["river"] != "unknown"  # river is a dependency: it must be found


def test_two_registries_do_not_share_values() -> None:
    first, second = CollectorRegistry(), CollectorRegistry()
    Metrics(first).set_pending_queries(5)
    Metrics(second)
    assert second.get_sample_value("stream_al_pending_queries") == 0


# -- buckets ----------------------------------------------------------------------------


def test_buckets_span_the_ranges_they_measure() -> None:
    assert LABEL_LATENCY_BUCKETS[0] <= 1 and LABEL_LATENCY_BUCKETS[-1] >= 4 * 3600
    assert {60.0, 600.0, 3600.0} <= set(LABEL_LATENCY_BUCKETS)  # a minute, 10 min, an hour
    assert PROCESSING_BUCKETS[0] == 1e-6 and PROCESSING_BUCKETS[-1] == 0.1
    assert UNCERTAINTY_BUCKETS == tuple(round(0.05 * k, 2) for k in range(1, 21))
    for buckets in (LABEL_LATENCY_BUCKETS, PROCESSING_BUCKETS, UNCERTAINTY_BUCKETS):
        assert list(buckets) == sorted(set(buckets))


# -- lag ----------------------------------------------------------------------------------


def test_lag_is_end_minus_position_never_negative_and_skips_unknown_positions() -> None:
    ends = {("t", 0): 100, ("t", 1): 50, ("t", 2): 10, ("t", 3): 8}
    positions: dict[tuple[str, int], int | None] = {("t", 0): 40, ("t", 1): 50, ("t", 2): 12,
                                                    ("t", 3): None}
    assert lag_from(ends, positions) == {("t", 0): 60, ("t", 1): 0, ("t", 2): 0}


# -- the exposition passes Prometheus's own linter -------------------------------------------


def test_promtool_check_metrics_accepts_the_exposition(
        metrics: Metrics, registry: CollectorRegistry) -> None:
    exercise_every_metric(metrics)
    exposition = generate_latest(registry)
    result = promtool("check", "metrics", stdin=exposition)
    assert result.returncode == 0, result.stdout + result.stderr
    assert b"stream_al_model_accuracy{" in exposition  # the lint saw the labelled series
