"""The learner: decisions, labels, budget, warm-up, audit, and exact snapshot/restore."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from stream_al.budget import BudgetConfig
from stream_al.learner import Decision, Learner, LearnerConfig
from stream_al.records import OracleLabel, ParametricRecord, TransactionRecord
from stream_al.simulate.floor import FloorConfig, FloorSimulator
from stream_al.state import Checkpoint, dumps, loads
from tests.factories import T0, label, parametric


def floor(n: int, seed: int = 1, start: int = 0) -> Iterator[tuple[ParametricRecord, str]]:
    simulator = FloorSimulator(FloorConfig(run_length=max(n + start, 100)), seed=seed)
    for index, simulated in enumerate(simulator.stream(start + n)):
        if index >= start:
            yield ParametricRecord.model_validate(simulated.record), simulated.truth


def drive(learner: Learner, rows: Iterator[tuple[ParametricRecord, str]],
          delay: int = 20) -> list[Decision]:
    """Decide every record; answer each query from the truth ``delay`` records later."""
    decisions: list[Decision] = []
    waiting: list[tuple[int, str, str, datetime]] = []
    for index, (record, truth) in enumerate(rows):
        while waiting and waiting[0][0] <= index:
            _, query_id, answer, at = waiting.pop(0)
            learner.apply(OracleLabel(query_id=query_id, label=answer, labeled_at=at))
        decision = learner.decide(record, record.ts)
        decisions.append(decision)
        if decision.request:
            waiting.append((index + delay, decision.request.query_id, truth,
                            record.ts + timedelta(seconds=1)))
    return decisions


def config(**overrides: object) -> LearnerConfig:
    return LearnerConfig.model_validate(overrides)


#: Every record queried: a variable gate would query only about half of what B = 1 allows.
QUERY_ALL = {"budget": {"fraction": 1.0, "audit_fraction": 0.0},
             "gate": {"strategy": "fixed", "threshold": 0.0}}


def test_every_record_gets_one_prediction_and_queries_carry_the_record() -> None:
    learner = Learner(config())
    decisions = drive(learner, floor(500))
    assert len({d.prediction.record_id for d in decisions}) == 500
    asked = [d for d in decisions if d.request]
    assert asked and all(d.prediction.queried and d.request.record.record_id ==
                         d.prediction.record_id for d in asked if d.request)
    assert all(not d.prediction.queried for d in decisions if d.request is None)


def test_models_are_made_per_product() -> None:
    learner = Learner(config())
    drive(learner, floor(300))
    assert sorted(learner.registry.keys()) == ["MCU-B3", "PMIC-A7", "RF-C1"]


def test_query_ids_are_deterministic_for_a_record_and_model() -> None:
    first = Learner(config()).decide(parametric("dev-9"), T0)
    second = Learner(config(**QUERY_ALL)).decide(parametric("dev-9"), T0)
    assert second.request is not None
    assert second.request.query_id == (first.request or second.request).query_id


def test_the_cold_model_queries_at_random_for_warm_up_first() -> None:
    learner = Learner(config())
    decisions = drive(learner, floor(300))
    reasons = [d.request.reason for d in decisions if d.request]
    assert reasons[0] == "warmup"


@pytest.mark.parametrize("strategy", ["random", "fixed", "variable", "randomized", "hybrid"])
def test_queries_stay_within_the_budget_whatever_the_strategy(strategy: str) -> None:
    budget = BudgetConfig(fraction=0.05, window=500, audit_fraction=0.01)
    learner = Learner(config(gate={"strategy": strategy}, budget=budget))
    decisions = drive(learner, floor(4000))
    per_model: dict[str, list[bool]] = {}
    for d in decisions:
        per_model.setdefault(d.model_key, []).append(d.request is not None)
    for flags in per_model.values():
        for start in range(0, len(flags) - 500, 50):
            assert sum(flags[start:start + 500]) <= 0.05 * 500 + 1


def test_audits_are_asked_and_scored_apart() -> None:
    budget = BudgetConfig(fraction=0.2, audit_fraction=0.05)
    learner = Learner(config(budget=budget))
    decisions = drive(learner, floor(3000))
    reasons = Counter(d.request.reason for d in decisions if d.request)
    assert reasons["audit"] > 50
    scores = learner.policies["PMIC-A7"].scores.windows
    assert scores["audit"].count > 0 and scores["queried"].count > 0


def test_learning_from_labels_beats_the_cold_model() -> None:
    learner = Learner(config(budget={"fraction": 0.2}))
    rows = list(floor(6000))
    decisions = drive(learner, iter(rows))
    truth = [t for _, t in rows]
    def accuracy(part: slice) -> float:
        pairs = list(zip(decisions[part], truth[part], strict=True))
        return sum(d.prediction.predicted == t for d, t in pairs) / len(pairs)
    assert accuracy(slice(4000, 6000)) > accuracy(slice(0, 300)) + 0.05
    assert accuracy(slice(4000, 6000)) > 0.9


def test_label_outcomes_are_reported_never_raised() -> None:
    learner = Learner(config(**QUERY_ALL, query_ttl_s=60))
    request = learner.decide(parametric("d-1"), T0).request
    assert request is not None
    # Label-log time only moves forward: the unknown query's label came first.
    assert learner.apply(label("q-unknown", at=T0 + timedelta(seconds=10))).outcome == \
        "unknown_query"
    applied = learner.apply(label(request.query_id, at=T0 + timedelta(seconds=30)))
    assert (applied.outcome, applied.latency_s) == ("applied", 30.0)
    assert learner.apply(label(request.query_id)).outcome == "duplicate"
    late = learner.decide(parametric("d-2"), T0).request
    assert late is not None
    expired = learner.apply(label(late.query_id, at=T0 + timedelta(seconds=61)))
    assert expired.outcome == "expired" and "expired" in expired.detail
    assert learner.registry.get("PMIC-A7").version == 1


def test_a_new_class_from_the_oracle_is_learnt() -> None:
    learner = Learner(config(**QUERY_ALL))
    for i in range(40):
        request = learner.decide(parametric(f"d-{i}", vdd=float(i % 2)), T0).request
        assert request is not None
        learner.apply(label(request.query_id, "pass" if i % 2 else "bin_7_new"))
    proba = learner.decide(parametric("probe", vdd=0.0), T0).prediction.proba
    assert "bin_7_new" in proba


def test_transactions_share_a_model_unless_the_key_field_names_one() -> None:
    record = TransactionRecord(record_id="t1", ts=T0, numeric={"amount": 3.0},
                               categorical={"channel": "web"})
    assert Learner(config()).decide(record, T0).model_key == "transaction"
    keyed = Learner(config(model_key_field="channel"))
    assert keyed.decide(record, T0).model_key == "web"


def test_inline_labels_are_scored_and_learnt_only_when_configured() -> None:
    passive, learning = Learner(config()), Learner(config(learn_inline_labels=True))
    for learner in (passive, learning):
        assert learner.decide(parametric("i-1", label="pass"), T0).inline_correct is False
    assert passive.registry.get("PMIC-A7").version == 0
    assert learning.registry.get("PMIC-A7").version == 1


@pytest.mark.parametrize("measure", ["vote_entropy", "consensus_kl"])
def test_committee_measures_score_the_forest_members(measure: str) -> None:
    learner = Learner(config(model={"template": "arf", "n_models": 3},
                             committee_measure=measure))
    decisions = drive(learner, floor(400))
    assert all(0.0 <= d.prediction.uncertainty <= 1.0 for d in decisions)
    assert len({round(d.prediction.uncertainty, 6) for d in decisions[200:]}) > 1


@pytest.mark.parametrize("strategy", ["randomized", "hybrid"])
def test_snapshot_restore_gives_identical_decisions_on_10000_more_records(
        strategy: str) -> None:
    original = Learner(config(gate={"strategy": strategy}, budget={"fraction": 0.1}))
    drive(original, floor(1500))
    restored = loads(dumps(Checkpoint(original))).learner
    more = list(floor(10_000, start=1500))
    expected = drive(original, iter(more))
    actual = drive(restored, iter(more))
    for a, b in zip(expected, actual, strict=True):
        assert a.prediction == b.prediction
        assert a.request == b.request
    assert sum(d.request is not None for d in actual) > 100
