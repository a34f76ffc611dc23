"""Model templates and the registry: every template learns, new classes are learnt,
missing features are imputed, and a key's model is the same in every process."""

from __future__ import annotations

import pickle
import random
from typing import get_args

import pytest

from stream_al.models import (
    MeanImputer,
    ModelConfig,
    TemplateName,
    build_model,
    committee_members,
    member_probas,
    most_probable,
    stable_seed,
)
from stream_al.registry import ModelRegistry

TEMPLATES = get_args(TemplateName)


def _stream(n: int, seed: int = 0) -> list[tuple[dict[str, float | None], str]]:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        a, b = rng.gauss(0, 1), rng.gauss(0, 1)
        x: dict[str, float | None] = {"a": a, "b": b if rng.random() > 0.2 else None}
        rows.append((x, "fail" if a + 0.5 * b > 0.8 else "pass"))
    return rows


@pytest.mark.parametrize("template", TEMPLATES)
def test_every_template_learns_better_than_the_majority_class(template: str) -> None:
    model = build_model(ModelConfig.model_validate({"template": template}), seed=3)
    hits = 0
    rows = _stream(1500)
    for x, y in rows:
        hits += most_probable(model.predict_proba_one(dict(x))) == y
        model.learn_one(dict(x), y)
    majority = max(sum(y == c for _, y in rows) for c in ("pass", "fail")) / len(rows)
    assert hits / len(rows) > majority + 0.03


@pytest.mark.parametrize("template", TEMPLATES)
def test_a_class_never_seen_before_is_learnt(template: str) -> None:
    model = build_model(ModelConfig.model_validate({"template": template}), seed=1)
    for x, y in _stream(200):
        model.learn_one(dict(x), y)
    for _ in range(30):
        model.learn_one({"a": 9.0, "b": 9.0}, "new_defect")
    assert "new_defect" in model.predict_proba_one({"a": 9.0, "b": 9.0})


@pytest.mark.parametrize("template", TEMPLATES)
def test_prediction_does_not_change_the_model(template: str) -> None:
    model = build_model(ModelConfig.model_validate({"template": template}), seed=1)
    for x, y in _stream(300):
        model.learn_one(dict(x), y)
    before = pickle.dumps(model)
    for x, _ in _stream(50, seed=9):
        model.predict_proba_one(dict(x))
    assert pickle.dumps(model) == before


def test_mean_imputer_fills_none_and_absent_known_features() -> None:
    imputer = MeanImputer()
    imputer.learn_one({"a": 1.0, "b": None})
    imputer.learn_one({"a": 3.0})
    assert imputer.transform_one({"b": None}) == {"a": 2.0, "@imputed": 1.0}
    assert imputer.transform_one({"a": 5.0, "c": 1.0}) == {"a": 5.0, "c": 1.0, "@imputed": 0.0}


def test_registry_builds_one_model_per_key_seeded_by_key_not_by_order() -> None:
    first, second = ModelRegistry(ModelConfig(template="arf"), 5), ModelRegistry(
        ModelConfig(template="arf"), 5)
    first.get("A"), first.get("B")
    second.get("B"), second.get("A")
    rows = _stream(300)
    for registry in (first, second):
        for x, y in rows:
            registry.get("A").learn(x, y)
    probe = {"a": 0.3, "b": 0.1}
    assert first.get("A").model.predict_proba_one(probe) == \
        second.get("A").model.predict_proba_one(probe)
    assert first.get("A").version == 300 and sorted(first.keys()) == ["A", "B"]


def test_warmup_ends_with_two_classes_or_at_the_cap() -> None:
    entry = ModelRegistry(ModelConfig(), 0).get("k")
    for _ in range(5):
        entry.learn({"a": 1.0}, "pass")
    assert not entry.is_warm(min_labels_per_class=3, max_warmup_labels=100)
    for _ in range(3):
        entry.learn({"a": -1.0}, "fail")
    assert entry.is_warm(min_labels_per_class=3, max_warmup_labels=100)
    assert ModelRegistry(ModelConfig(), 0).get("k").is_warm(3, 0)


def test_committee_members_exist_only_for_ensembles() -> None:
    arf = build_model(ModelConfig(template="arf", n_models=4), seed=1)
    for x, y in _stream(100):
        arf.learn_one(dict(x), y)
    assert len(committee_members(arf) or []) == 4
    assert len(member_probas(arf, {"a": 0.1, "b": None})) == 4
    assert committee_members(build_model(ModelConfig(), seed=1)) is None


def test_stable_seed_differs_by_key_and_most_probable_breaks_ties_by_name() -> None:
    assert stable_seed(1, "a") != stable_seed(1, "b")
    assert most_probable({"pass": 0.5, "fail": 0.5}) == "fail"
    assert most_probable({}) is None
