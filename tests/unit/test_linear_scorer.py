"""The folded logistic scorer gives the pipeline's distribution at every state it can
be in: missing, left-out, never-learnt and extreme values, two classes and more; and it
steps aside where it cannot."""

from __future__ import annotations

import math
import pickle
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from river import compose

from stream_al.linear_scorer import LinearScorer
from stream_al.models import IMPUTED, ModelConfig, build_model
from stream_al.registry import ModelEntry

NAMES = [f"t{i}" for i in range(12)] + ["sensor_rare", "late_test"]


def _record(rng: random.Random, step: int, scale: float = 1.0) -> dict[str, float | None]:
    x: dict[str, float | None] = {}
    for i, name in enumerate(NAMES[:12]):
        x[name] = None if rng.random() < 0.1 * (i % 3) else rng.gauss(i, 1 + i) * scale
    # Written for one record in twenty: the imputer leaves it out once it has evidence.
    x["sensor_rare"] = rng.gauss(0, 1) if rng.random() < 0.05 else None
    if step > 60:  # a test added to the program later
        x["late_test"] = rng.gauss(5, 2)
    return x


def _label(x: dict[str, float | None], classes: int) -> str:
    score = sum(v for v in (x["t1"], x["t4"]) if v is not None)
    return f"c{int(abs(score)) % classes}" if classes > 2 else ("fail" if score > 6 else "pass")


def _close(ours: dict[Any, float] | None, theirs: dict[Any, float]) -> bool:
    assert ours is not None
    return list(ours) == list(theirs) and all(
        math.isclose(ours[c], theirs[c], rel_tol=1e-9, abs_tol=1e-12) for c in theirs)


@pytest.mark.parametrize("classes", [2, 3, 5])
@pytest.mark.parametrize("min_presence", [0.0, 0.3])
def test_the_folded_scorer_gives_the_pipelines_distribution_at_every_state(
        classes: int, min_presence: float) -> None:
    rng = random.Random(classes * 10 + int(min_presence * 10))
    model = build_model(ModelConfig(template="logistic", min_presence=min_presence), seed=5)
    compared = 0
    for step in range(200):
        x = _record(rng, step)
        scorer = LinearScorer.compile(model)
        if scorer is not None:
            probes: list[dict[str, float | None]] = [
                x, _record(rng, step, scale=1e6), {"t0": 1.0}, {"never_seen": 3.0},
                {name: None for name in NAMES}, {}]
            for probe in probes:
                assert _close(scorer.predict_proba(probe), model.predict_proba_one(dict(probe)))
                compared += 1
        model.learn_one(dict(x), _label(x, classes))
    # Only the untrained model (no class, nothing to fold) was left to the pipeline.
    assert compared == 199 * 6
    assert LinearScorer.compile(model) is not None


@settings(max_examples=60, deadline=None)
@given(st.lists(st.dictionaries(st.sampled_from(NAMES),
                                st.none() | st.floats(-1e12, 1e12, allow_nan=False)),
                min_size=2, max_size=30),
       st.dictionaries(st.sampled_from(NAMES + ["other"]),
                       st.none() | st.floats(-1e12, 1e12, allow_nan=False)))
def test_any_history_and_record_score_as_the_pipeline_scores_them(
        history: list[dict[str, float | None]], probe: dict[str, float | None]) -> None:
    model = build_model(ModelConfig(template="logistic", min_presence=0.2), seed=1)
    for i, x in enumerate(history):
        model.learn_one(dict(x), ("pass", "fail", "bin7")[i % 3])
    scorer = LinearScorer.compile(model)
    assert scorer is not None
    theirs = model.predict_proba_one(dict(probe))
    ours = scorer.predict_proba(probe)
    if all(math.isfinite(p) for p in theirs.values()):
        assert ours is not None and _close(ours, theirs)
    else:  # the pipeline's own answer (and its error) stands
        assert ours is None


def test_it_steps_aside_for_other_templates_and_for_the_imputers_own_name() -> None:
    for template in ("softmax", "naive_bayes", "hoeffding_tree", "arf", "river_lr"):
        model = build_model(ModelConfig.model_validate({"template": template}), seed=1)
        model.learn_one({"a": 1.0}, "pass")
        model.learn_one({"a": -1.0}, "fail")
        assert LinearScorer.compile(model) is None, template
    model = build_model(ModelConfig(template="logistic"), seed=1)
    model.learn_one({"a": 1.0}, "pass")
    scorer = LinearScorer.compile(model)
    assert scorer is not None and scorer.predict_proba({"a": 1.0, IMPUTED: 0.5}) is None
    assert scorer.predict_proba({"a": math.nan}) is None
    with compose.learn_during_predict():  # the pipeline would learn as it predicts
        assert LinearScorer.compile(model) is None


def test_the_entry_refolds_after_every_label_and_is_pickled_without_its_fold() -> None:
    entry = ModelEntry(build_model(ModelConfig(template="logistic"), seed=2))
    rng = random.Random(3)
    for step in range(40):
        x = _record(rng, step)
        assert _close(entry.predict_proba(x), entry.model.predict_proba_one(dict(x))) \
            or entry.version == 0
        entry.learn(x, _label(x, 2))
    assert entry._scorer is not None and entry._scorer[0] == 39
    restored = pickle.loads(pickle.dumps(entry))  # noqa: S301 (our own object)
    assert restored._scorer is None
    x = _record(rng, 99)
    assert _close(restored.predict_proba(x), entry.model.predict_proba_one(dict(x)))
