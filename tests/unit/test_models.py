"""Model templates and the registry: every template learns, new classes are learnt,
missing features are imputed, and a key's model is the same in every process."""

from __future__ import annotations

import pickle
import random
from collections.abc import Hashable
from datetime import UTC, datetime, timedelta
from typing import Any, get_args

import pytest
from river import forest, linear_model, naive_bayes, preprocessing, tree

from stream_al.learner import Learner, LearnerConfig
from stream_al.models import (
    _EVIDENCE,
    PLAIN_TEMPLATES,
    MeanImputer,
    ModelConfig,
    PlainClassifier,
    TemplateName,
    build_model,
    committee_members,
    member_probas,
    most_probable,
    stable_seed,
)
from stream_al.presence import completeness
from stream_al.records import OracleLabel, TransactionRecord
from stream_al.registry import ModelRegistry

TEMPLATES = get_args(TemplateName)
#: river_lr is River's binary logistic regression: it cannot learn a third class.
MULTICLASS = tuple(t for t in TEMPLATES if t != "river_lr")


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


@pytest.mark.parametrize("template", MULTICLASS)
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


def test_skipped_tests_stay_the_signal_beside_many_rarely_written_sensors() -> None:
    # 40 tests every part runs and 300 sensors written for one part in ten: a part whose
    # flow stopped halfway must still look far more incomplete than an ordinary one.
    rng = random.Random(0)
    imputer = MeanImputer()
    tests = [f"t{i}" for i in range(40)]
    sensors = [f"eq_{i}" for i in range(300)]

    def part(tests_run: int) -> dict[Hashable, Any]:
        x: dict[Hashable, Any] = {t: (1.0 if i < tests_run else None)
                                  for i, t in enumerate(tests)}
        return x | {s: (2.0 if rng.random() < 0.1 else None) for s in sensors}

    for _ in range(200):
        imputer.learn_one(part(40))
    ordinary = imputer.transform_one(part(40))["@imputed"]
    stopped = imputer.transform_one(part(20))["@imputed"]
    # Counted plainly, the ordinary part would be 0.79 imputed and the stopped one 0.85.
    assert ordinary < 0.05 and stopped > 0.4


def test_an_imputer_pickled_before_it_counted_records_weighs_every_feature_alike() -> None:
    imputer = MeanImputer(min_presence=0.5)
    imputer.learn_one({"a": 1.0, "b": 2.0})
    for name in ("learnt", "first", "min_presence"):
        del imputer.__dict__[name]  # as pickled by an earlier version
    restored = pickle.loads(pickle.dumps(imputer))  # noqa: S301 (our own object)
    assert restored.transform_one({"a": 1.0}) == {"a": 1.0, "b": 2.0, "@imputed": 0.5}


def test_a_mostly_missing_feature_is_left_out_and_a_late_test_is_not() -> None:
    imputer = MeanImputer(min_presence=0.5)
    for i in range(100):
        imputer.learn_one({"t1": 1.0, "sensor": 5.0 if i % 10 == 0 else None,
                           "late": 2.0 if i >= 70 else None})
    out = imputer.transform_one({"t1": 1.0, "sensor": 5.0, "late": 2.0})
    assert "sensor" not in out  # present in 1 of 10 labelled records
    assert out["late"] == 2.0 and out["t1"] == 1.0  # present in all 30 since it appeared
    assert imputer.presence("late") == 1.0 and imputer.presence("sensor") == 0.1


def test_a_rare_feature_is_kept_until_there_is_evidence_it_is_rare() -> None:
    imputer = MeanImputer(min_presence=0.5)
    imputer.learn_one({"t1": 1.0, "sensor": 5.0})
    for _ in range(5):
        imputer.learn_one({"t1": 1.0, "sensor": None})
    assert imputer.transform_one({"t1": 1.0, "sensor": 4.0})["sensor"] == 4.0


def _fill_as_first_written(imputer: MeanImputer, x: dict[Hashable, Any]) -> dict[Hashable, Any]:
    """``MeanImputer.transform_one`` as it was before its plan was cached per label."""
    filled = {name: value for name, value in x.items() if value is not None}
    rates = []
    for name, mean in imputer.means.items():
        rate = imputer.presence(name)
        has = filled.get(name) is not None
        if rate < imputer.min_presence and \
                imputer.learnt - imputer.first.get(name, 0) >= _EVIDENCE:
            filled.pop(name, None)
            continue
        rates.append((rate, has))
        if not has:
            filled[name] = mean.get()
    complete = completeness(rates)
    filled["@imputed"] = 0.0 if complete is None else 1.0 - complete
    return filled


def test_the_cached_fill_plan_fills_exactly_as_the_per_record_loop_did() -> None:
    rng = random.Random(3)
    names = [f"t{i}" for i in range(12)] + [f"eq_{i}" for i in range(6)]
    imputer = MeanImputer(min_presence=0.5)
    for step in range(400):
        share = {name: 0.95 if name[0] == "t" else 0.15 for name in names}
        x: dict[Hashable, Any] = {
            name: rng.gauss(0, 1) if rng.random() < share[name] else None
            for name in rng.sample(names, rng.randint(0, len(names)))}
        if step % 3 == 0:
            imputer.learn_one(x)  # a label between predictions: the plan is redone
        if step == 200:
            imputer.min_presence = 0.1
        out = imputer.transform_one(dict(x))
        expected = _fill_as_first_written(imputer, dict(x))
        assert list(out.items()) == list(expected.items())  # values and order
    restored = pickle.loads(pickle.dumps(imputer))  # noqa: S301 (our own object)
    assert "_plan" not in imputer.__getstate__()  # checkpoints carry no derived state
    assert restored.transform_one({"t1": 1.0}) == imputer.transform_one({"t1": 1.0})


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


@pytest.mark.parametrize("template", ["arf", "river_arf"])
def test_committee_members_exist_only_for_ensembles(template: str) -> None:
    arf = build_model(ModelConfig.model_validate({"template": template, "n_models": 4}), seed=1)
    for x, y in _stream(100):
        arf.learn_one(dict(x), y)
    assert len(committee_members(arf) or []) == 4
    assert len(member_probas(arf, {"a": 0.1, "b": None})) == 4
    assert committee_members(build_model(ModelConfig(), seed=1)) is None
    assert committee_members(build_model(ModelConfig(template="river_ht"), seed=1)) is None


def test_stable_seed_differs_by_key_and_most_probable_breaks_ties_by_name() -> None:
    assert stable_seed(1, "a") != stable_seed(1, "b")
    assert most_probable({"pass": 0.5, "fail": 0.5}) == "fail"
    assert most_probable({}) is None


@pytest.mark.parametrize("template", TEMPLATES)
def test_every_template_works_from_the_first_record(template: str) -> None:
    """An empty model predicts (no exception) and the first 20 labels are learnt."""
    model = build_model(ModelConfig.model_validate({"template": template}), seed=2)
    for x, y in _stream(20, seed=4):
        assert isinstance(model.predict_proba_one(dict(x)), dict)
        model.learn_one(dict(x), y)
    assert set(model.predict_proba_one({"a": 0.0, "b": 0.0})) <= {"pass", "fail"}


@pytest.mark.parametrize("template", TEMPLATES)
def test_the_learner_runs_every_template_from_the_first_record(template: str) -> None:
    config = LearnerConfig(model=ModelConfig.model_validate({"template": template}))
    learner = Learner(config)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    applied = 0
    for i, (x, y) in enumerate(_stream(20, seed=5)):
        now = start + timedelta(seconds=i)
        record = TransactionRecord(record_id=f"r{i}", ts=now, numeric=x)
        decision = learner.decide(record, now)
        if decision.request is not None:
            label = OracleLabel(query_id=decision.request.query_id, label=y, labeler="t",
                                labeled_at=now)
            applied += learner.apply(label).outcome == "applied"
    assert applied > 0


def test_plain_templates_are_river_models_with_nothing_added() -> None:
    def inner(template: str) -> object:
        [step] = build_model(ModelConfig.model_validate({"template": template}), 3).steps.values()
        assert isinstance(step, PlainClassifier)
        return step.classifier

    lr = inner("river_lr")
    assert [type(s) for s in lr.steps.values()] == [  # type: ignore[attr-defined]
        preprocessing.StandardScaler, linear_model.LogisticRegression]
    assert type(inner("river_ht")) is tree.HoeffdingTreeClassifier
    assert type(inner("river_gnb")) is naive_bayes.GaussianNB
    arf = inner("river_arf")
    assert isinstance(arf, forest.ARFClassifier) and arf.n_models == 10 and arf.seed == 3
    assert set(PLAIN_TEMPLATES) == {t for t in TEMPLATES if t.startswith("river_")}


def test_river_lr_names_its_two_classes_and_refuses_a_third() -> None:
    model = build_model(ModelConfig(template="river_lr"), seed=0)
    model.learn_one({"a": 1.0}, "pass")
    model.learn_one({"a": -1.0}, "fail")
    proba = model.predict_proba_one({"a": 1.0})
    assert set(proba) == {"pass", "fail"} and abs(sum(proba.values()) - 1.0) < 1e-9
    with pytest.raises(ValueError, match="third class"):
        model.learn_one({"a": 0.0}, "new_defect")


def test_a_plain_model_reads_none_as_an_absent_feature() -> None:
    model = build_model(ModelConfig(template="river_lr"), seed=0)
    model.learn_one({"a": 1.0, "b": None}, "pass")
    model.learn_one({"a": None, "b": 2.0}, "fail")
    assert set(model.predict_proba_one({"a": None, "b": None})) == {"pass", "fail"}
