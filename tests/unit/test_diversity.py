"""``learner.gate.diversity``: a record like the model's last queries counts as less
uncertain, so the budget is not spent on a run of near-duplicates."""

from __future__ import annotations

import pickle
import random
from datetime import UTC, datetime, timedelta

from stream_al.diversity import RecentQueries
from stream_al.learner import Learner, LearnerConfig
from stream_al.records import OracleLabel, TransactionRecord

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _scaled_like(recent: RecentQueries, n: int = 200) -> None:
    rng = random.Random(1)
    for _ in range(n):
        recent.observe({"a": rng.gauss(0, 1), "b": rng.gauss(0, 1)})


def test_a_record_like_a_query_is_near_and_others_are_not() -> None:
    recent = RecentQueries()
    _scaled_like(recent)
    assert recent.nearness({"a": 0.0, "b": 0.0}) == 0.0  # nothing asked yet
    recent.remember({"a": 1.0, "b": 1.0})
    near = recent.nearness({"a": 1.05, "b": 0.95})
    far = recent.nearness({"a": -2.0, "b": 1.5})
    assert 0.0 <= far < 0.5 < near <= 1.0


def test_missing_values_and_late_features_neither_fail_nor_count_as_distance() -> None:
    recent = RecentQueries()
    _scaled_like(recent)
    recent.remember({"a": 1.0, "b": None})
    recent.observe({"a": 0.5, "c": 3.0})  # a feature first seen now
    assert 0.5 < recent.nearness({"a": 1.0, "b": 2.0, "c": None}) <= 1.0
    restored = pickle.loads(pickle.dumps(recent))  # noqa: S301 (our own object)
    assert restored.nearness({"a": 1.0}) == recent.nearness({"a": 1.0})


def test_only_the_oldest_of_a_full_memory_is_forgotten() -> None:
    recent = RecentQueries(memory=2)
    _scaled_like(recent)
    for a in (1.0, 2.0, 3.0):
        recent.remember({"a": a, "b": 0.0})
    assert recent.nearness({"a": 1.0, "b": 0.0}) < recent.nearness({"a": 3.0, "b": 0.0})


def _runs(runs: int, length: int) -> list[tuple[TransactionRecord, str]]:
    """``runs`` runs of ``length`` near-identical records (one place each), the class
    split at a = 0: a floor where adjacent parts are alike."""
    rng = random.Random(3)
    stream: list[tuple[TransactionRecord, str]] = []
    for run in range(runs):
        a, b = rng.gauss(0, 0.6), rng.gauss(0, 1)
        for i in range(length):
            x = {"a": a + rng.gauss(0, 0.01), "b": b + rng.gauss(0, 0.01)}
            record = TransactionRecord(record_id=f"r{run}-{i}", numeric=x,
                                       ts=T0 + timedelta(seconds=len(stream)))
            stream.append((record, "fail" if x["a"] > 0 else "pass"))
    return stream


def _runs_asked(diversity: float) -> tuple[int, int]:
    """(uncertainty queries, runs they reached)."""
    config = LearnerConfig.model_validate({
        "gate": {"strategy": "variable", "diversity": diversity}, "prior_correction": 0.0,
        "budget": {"fraction": 0.1, "audit_fraction": 0.0}})
    learner = Learner(config)
    asked: list[str] = []
    for record, truth in _runs(60, 25):
        decision = learner.decide(record, record.ts)
        if decision.request is not None and decision.request.reason == "uncertainty":
            asked.append(record.record_id.split("-")[0])
            learner.apply(OracleLabel(query_id=decision.request.query_id, label=truth,
                                      labeled_at=record.ts))
        elif decision.request is not None:
            learner.apply(OracleLabel(query_id=decision.request.query_id, label=truth,
                                      labeled_at=record.ts))
    return len(asked), len(set(asked))


def test_with_diversity_the_uncertainty_queries_reach_more_runs() -> None:
    assert _runs_asked(1.0) > _runs_asked(0.0)
