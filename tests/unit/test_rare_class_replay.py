"""``learner.rare_class_replay``: a rare class's labels shown to the classifier again,
never to the imputer or scaler, whose statistics describe the records."""

from __future__ import annotations

from collections import Counter

import pytest
from river import compose

from stream_al.learner import Learner, LearnerConfig
from stream_al.models import ModelConfig, build_model
from stream_al.records import ParametricRecord
from stream_al.registry import ModelEntry
from stream_al.replay import replay
from stream_al.simulate.floor import FloorConfig, FloorSimulator


def _entry(counts: dict[str, int]) -> ModelEntry:
    entry = ModelEntry(build_model(ModelConfig(), seed=0))
    entry.class_counts = Counter(counts)
    return entry


@pytest.mark.parametrize(("alpha", "label", "repeats"), [
    (0.0, "fail", 1),    # off: every label once
    (1.0, "pass", 1),    # the most frequent class is never repeated
    (0.5, "fail", 3),    # √(9 / 1)
    (1.0, "fail", 8),    # 9 / 1, capped at rare_class_replay_max (8)
])
def test_a_label_is_repeated_by_its_class_rarity(alpha: float, label: str,
                                                 repeats: int) -> None:
    learner = Learner(LearnerConfig(rare_class_replay=alpha))
    assert learner._repeats(_entry({"pass": 9}), label) == repeats


def test_the_first_label_is_learnt_once() -> None:
    learner = Learner(LearnerConfig(rare_class_replay=1.0))
    assert learner._repeats(_entry({}), "pass") == 1


def _scaler_and_weights(repeats: int) -> tuple[float, dict[str, float]]:
    entry = ModelEntry(build_model(ModelConfig(template="logistic"), seed=0))
    entry.learn({"vdd": 1.0, "idd": 0.5}, "pass")
    entry.learn({"vdd": -1.0, "idd": 0.2}, "fail", repeats=repeats)
    model: compose.Pipeline = entry.model
    scaler = model["StandardScaler"]
    proba = model.predict_proba_one({"vdd": -1.0, "idd": 0.2})
    return float(scaler.counts["vdd"]), proba


def test_repeats_reach_the_classifier_only() -> None:
    once_count, once = _scaler_and_weights(1)
    thrice_count, thrice = _scaler_and_weights(3)
    assert once_count == thrice_count == 2  # the scaler saw each record once
    assert thrice["fail"] > once["fail"]  # the classifier saw the fail three times
    assert _entry({}).version == 0


def test_on_an_imbalanced_floor_replay_lets_fewer_fails_escape() -> None:
    simulator = FloorSimulator(FloorConfig(run_length=3_000, fail_rate=0.05), seed=2)
    stream = [(ParametricRecord.model_validate(s.record), s.truth)
              for s in simulator.stream(3_000)]
    results = {}
    for alpha in (0.0, 1.0):
        config = LearnerConfig.model_validate({
            "rare_class_replay": alpha, "prior_correction": 0.0,
            "budget": {"fraction": 0.1, "audit_fraction": 0.0}})
        results[alpha] = replay(stream, config, len(stream))
    plain, replayed = results[0.0], results[1.0]
    assert plain.escape_rate is not None and replayed.escape_rate is not None
    assert replayed.escape_rate < plain.escape_rate
