"""The prior-corrected decision rule: γ = 0 is the most probable class, γ = 1 trades
escapes for overkill on an imbalanced floor, and old checkpoints keep deciding."""

from __future__ import annotations

import pickle
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stream_al.class_prior import ClassPrior
from stream_al.learner import Learner, LearnerConfig
from stream_al.models import most_probable
from stream_al.records import ParametricRecord
from stream_al.replay import replay
from stream_al.simulate.floor import FloorConfig, FloorSimulator
from tests.factories import T0

distributions = st.dictionaries(st.sampled_from(["pass", "fail", "bin7"]),
                                st.floats(0.0, 1.0), min_size=1, max_size=3)


@given(st.lists(distributions, min_size=1, max_size=30))
def test_without_correction_the_prediction_is_the_most_probable_class(
        stream: list[dict[str, float]]) -> None:
    prior = ClassPrior(window=10)
    for proba in stream:
        assert prior.corrected(proba, gamma=0.0) == most_probable(proba)


@given(st.lists(distributions, min_size=1, max_size=30), st.floats(0.0, 1.0))
def test_the_corrected_class_is_always_one_the_model_gave(
        stream: list[dict[str, float]], gamma: float) -> None:
    prior = ClassPrior(window=10)
    for proba in stream:
        assert prior.corrected(proba, gamma) in proba


def test_a_rare_class_wins_when_it_is_more_likely_than_usual() -> None:
    prior = ClassPrior(window=50)
    for _ in range(50):
        prior.corrected({"pass": 0.97, "fail": 0.03}, gamma=1.0)
    assert prior.share("fail") == pytest.approx(0.03)
    assert prior.corrected({"pass": 0.85, "fail": 0.15}, gamma=1.0) == "fail"
    assert prior.corrected({"pass": 0.85, "fail": 0.15}, gamma=0.0) == "pass"
    assert prior.corrected({"pass": 0.99, "fail": 0.01}, gamma=1.0) == "pass"


def test_the_prior_follows_the_recent_records() -> None:
    prior = ClassPrior(window=20)
    for _ in range(200):
        prior.corrected({"pass": 0.5, "fail": 0.5}, gamma=1.0)
    for _ in range(200):
        prior.corrected({"pass": 0.9, "fail": 0.1}, gamma=1.0)
    assert prior.share("fail") == pytest.approx(0.1, abs=0.01)


def _floor(n: int) -> list[tuple[ParametricRecord, str]]:
    simulator = FloorSimulator(FloorConfig(run_length=n, fail_rate=0.05), seed=2)
    return [(ParametricRecord.model_validate(s.record), s.truth) for s in simulator.stream(n)]


def test_on_an_imbalanced_floor_correction_trades_escapes_for_overkill() -> None:
    stream = _floor(3_000)
    results = {}
    for gamma in (0.0, 1.0):
        config = LearnerConfig.model_validate({
            "prior_correction": gamma, "budget": {"fraction": 0.1, "audit_fraction": 0.0}})
        results[gamma] = replay(stream, config, len(stream))
    plain, corrected = results[0.0], results[1.0]
    assert plain.labels_used == corrected.labels_used  # the rule changes no query
    assert plain.escape_rate is not None and corrected.escape_rate is not None
    assert corrected.escape_rate < plain.escape_rate
    assert corrected.overkill is not None and plain.overkill is not None
    assert corrected.overkill > plain.overkill
    # Whether balanced accuracy gains is the benchmark's question, not a contract: on this
    # short stream (3,000 parts, 294 labels) the full correction loses it to overkill.


def test_a_policy_from_a_checkpoint_without_a_prior_still_decides() -> None:
    stream = _floor(300)
    learner = Learner(LearnerConfig(prior_correction=0.5))
    for record, _ in stream[:100]:
        learner.decide(record, T0)
    for policy in learner.policies.values():
        vars(policy).pop("prior")  # as ModelPolicy was pickled before it had one
    restored: Learner = pickle.loads(pickle.dumps(learner))  # noqa: S301 (our own object)
    for index, (record, _) in enumerate(stream[100:]):
        decision = restored.decide(record, T0 + timedelta(seconds=index))
        assert decision.prediction.proba == {} or decision.prediction.predicted is not None
