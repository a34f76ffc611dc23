"""A poll batch decided as runs (``Learner.decide_each``, ``Pipeline.handle_inputs``)
gives every record what it would get alone: the same presence share to the last bit,
the same distribution to 1e-12, and the same prediction, query and dead letters."""

from __future__ import annotations

import copy
import json
import math
import random
from datetime import timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream_al.bus import Message
from stream_al.codec import encode
from stream_al.features import FeatureConfig, extract, extractor
from stream_al.learner import Learner, LearnerConfig, _runs
from stream_al.models import ModelConfig
from stream_al.pipeline import Pipeline
from stream_al.presence import Presence
from stream_al.records import OracleLabel, ParametricRecord, Record
from stream_al.simulate.floor import FloorConfig, FloorSimulator
from stream_al.topics import TopicNames
from tests.factories import T0

TOPICS = TopicNames(inputs=("floor.parametric",))


@given(st.lists(st.lists(st.sampled_from([0.5, None, float("nan"), -2.0]), min_size=4,
                         max_size=4), min_size=1, max_size=30),
       st.integers(min_value=1, max_value=40))
def test_a_runs_presence_shares_are_the_one_by_one_shares_exactly(
        rows: list[list[float | None]], before: int) -> None:
    names = ["a", "b", "c", "d"]
    history = random.Random(before)
    one, run = Presence(), Presence()
    for _ in range(before):  # every name has had a value, at different rates
        values = {n: (1.0 if history.random() < 0.3 + 0.2 * i else None)
                  for i, n in enumerate(names)}
        values["a"] = 1.0
        one.share_then_learn(values)
        run.share_then_learn(values)
    if any(run._present.get(n) is None for n in names):
        return
    alone = [one.share_then_learn(dict(zip(names, row, strict=True))) for row in rows]
    matrix = np.array(rows, dtype=np.float64)
    assert run.shares_then_learn(names, matrix == matrix) == alone
    assert run._present == one._present and run.records == one.records


def test_a_run_with_a_name_never_seen_is_left_to_the_records_themselves() -> None:
    presence = Presence()
    presence.share_then_learn({"a": 1.0})
    has = np.array([[True, True]])
    assert presence.shares_then_learn(["a", "new"], has) is None
    assert presence.records == 1 and "new" not in presence._present


def _records(count: int, seed: int) -> list[ParametricRecord]:
    config = FloorConfig(run_length=max(count, 100), tests_per_product=20)
    return [ParametricRecord.model_validate(s.record)
            for s in FloorSimulator(config, seed).stream(count)]


def _taught(seed: int, labels: int = 60) -> Learner:
    """A logistic learner that has learnt ``labels`` labels on every product."""
    learner = Learner(LearnerConfig(model=ModelConfig(template="logistic")))
    config = FloorConfig(run_length=1000, tests_per_product=20)
    for shown, simulated in enumerate(FloorSimulator(config, seed).stream(labels * 3)):
        record = ParametricRecord.model_validate(simulated.record)
        key = learner.model_key_for(record)
        learner.decide(record, T0)
        learner.registry.get(key).learn(extract(record, learner.config.features),
                                        simulated.truth)
        assert shown < labels * 3
    return learner


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_runs_distributions_are_each_records_own_to_1e_12(seed: int) -> None:
    learner = _taught(seed)
    features = extractor(learner.config.features)
    by_key: dict[str, list[ParametricRecord]] = {}
    for record in _records(400, seed + 10):
        by_key.setdefault(learner.model_key_for(record), []).append(record)
    compared = 0
    for key, records in by_key.items():
        names = tuple(records[0].measurements)
        run = [r for r in records if tuple(r.measurements) == names]
        scorer = learner.registry.get(key).scorer()
        assert scorer is not None
        values = np.array([list(r.measurements.values()) for r in run], dtype=np.float64)
        rows = scorer.predict_proba_rows(features.columns(names), values, values == values,
                                         [features.derived(r) for r in run])
        for record, row in zip(run, rows, strict=True):
            alone = scorer.predict_proba(extract(record, learner.config.features))
            assert row is not None and alone is not None
            assert list(row) == list(alone)
            assert all(math.isclose(row[c], alone[c], rel_tol=1e-12, abs_tol=1e-15)
                       for c in alone)
            compared += 1
    assert compared > 300


def test_a_row_the_scorer_would_decline_is_declined_and_others_still_answer() -> None:
    learner = _taught(4)
    record = _records(1, 5)[0]
    key = learner.model_key_for(record)
    scorer = learner.registry.get(key).scorer()
    assert scorer is not None
    names = tuple(record.measurements)
    values = np.array([list(record.measurements.values())] * 2, dtype=np.float64)
    features = extractor(learner.config.features)
    rows = scorer.predict_proba_rows(features.columns(names), values, values == values,
                                     [{"@imputed": 1.0}, features.derived(record)])
    assert rows[0] is None and rows[1] is not None


def _labelled(record: ParametricRecord) -> ParametricRecord:
    return record.model_copy(update={"label": "pass"})


def test_runs_gather_a_models_records_across_others_and_end_where_it_changes() -> None:
    records: list[Record] = list(_records(120, 7))
    key_of = Learner(LearnerConfig()).model_key_for
    keys = [key_of(r) for r in records]
    runs = _runs(records, key_of)
    assert runs and all(len({keys[at] for at in run}) == 1 for run in runs)
    assert max(len(run) for run in runs) > 20  # products interleave: runs skip the others
    # A labelled record of a product ends that product's run, and is in none.
    cut = next(at for at in range(40, 120) if keys[at] == keys[runs[0][0]])
    at_cut = records[cut]
    assert isinstance(at_cut, ParametricRecord)
    records[cut] = _labelled(at_cut)
    runs = _runs(records, key_of)
    assert all(cut not in run for run in runs)
    assert not any(min(run) < cut < max(run) and keys[run[0]] == keys[cut] for run in runs)
    # Another test list for that product ends its run too.
    first = records[runs[0][0]]
    assert isinstance(first, ParametricRecord)
    other = first.model_copy(update={"measurements": {"only_one": 1.0}})
    middle = runs[0][len(runs[0]) // 2]
    records[middle] = other
    assert all(middle not in run for run in _runs(records, key_of))


def _messages(records: list[ParametricRecord]) -> list[Message]:
    return [Message(TOPICS.inputs[0], 0, offset, r.record_id.encode(), encode(r))
            for offset, r in enumerate(records)]


def _outputs_alone(pipeline: Pipeline, messages: list[Message]) -> list[tuple[str, bytes]]:
    out = []
    for message in messages:
        out += [(o.topic, o.value) for o in pipeline.handle(message, T0)]
    return out


def _close(a: object, b: object) -> bool:
    """Equal JSON, floats to 1e-12 (a run's sums run in another order)."""
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-15)
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def _same(alone: list[tuple[str, bytes]], together: list[tuple[str, bytes]]) -> None:
    assert [t for t, _ in alone] == [t for t, _ in together]
    for (topic, a), (_, b) in zip(alone, together, strict=True):
        assert _close(json.loads(a), json.loads(b)), (topic, a, b)


@settings(max_examples=4, deadline=None)
@given(st.integers(min_value=0, max_value=10_000), st.sampled_from([37, 200, 500]))
def test_a_batch_decided_as_runs_sends_what_one_by_one_would(seed: int, batch: int) -> None:
    learner = _taught(seed % 5 + 1, labels=30)
    records = _records(300, seed)
    rng = random.Random(seed)
    messages = _messages(records)
    # Hostile and odd messages among them: undecodable, empty of tests, labelled.
    for at in rng.sample(range(len(messages)), 12):
        kind = rng.randrange(3)
        if kind == 0:
            messages[at] = Message(TOPICS.inputs[0], 0, at, None, b'{"kind": "parametric"')
        elif kind == 1:
            empty = records[at].model_copy(update={"measurements": {}})
            messages[at] = Message(TOPICS.inputs[0], 0, at, None, encode(empty))
        else:
            messages[at] = Message(TOPICS.inputs[0], 0, at, None, encode(_labelled(records[at])))
    alone, together = (Pipeline(copy.deepcopy(learner), TOPICS) for _ in range(2))
    expected = _outputs_alone(alone, messages)
    got: list[tuple[str, bytes]] = []
    for start in range(0, len(messages), batch):
        got += [(o.topic, o.value) for o in together.handle_inputs(messages[start:start + batch],
                                                                   T0)]
    _same(expected, got)
    assert sum(t == TOPICS.requests for t, _ in got) > 0  # the gate did ask
    assert together.offsets == alone.offsets
    assert together.learner.budget.spent_ratio("PMIC-A7") == alone.learner.budget.spent_ratio(
        "PMIC-A7")


def test_a_label_between_batches_is_seen_by_the_next_batchs_runs() -> None:
    learner = _taught(2, labels=30)
    records = _records(200, 3)
    alone, together = (Pipeline(copy.deepcopy(learner), TOPICS) for _ in range(2))
    first, second = _messages(records[:100]), _messages(records[100:])
    expected = _outputs_alone(alone, first)
    got = [(o.topic, o.value) for o in together.handle_inputs(first, T0)]
    _same(expected, got)
    # Answer every request of the first batch in both, then decide the second batch.
    asked = [json.loads(v)["query_id"] for t, v in got if t == TOPICS.requests]
    assert asked
    for offset, query_id in enumerate(asked):
        label = encode(OracleLabel(query_id=query_id, label="fail",
                                   labeled_at=T0 + timedelta(seconds=1)))
        for pipeline in (alone, together):
            pipeline.handle(Message(TOPICS.labels, 0, offset, query_id.encode(), label), T0)
            pipeline.drain_labels(True, T0)
    assert alone.learner.registry.get("PMIC-A7").version > 30
    _same(_outputs_alone(alone, second),
          [(o.topic, o.value) for o in together.handle_inputs(second, T0)])


def test_a_learner_that_overrides_decide_is_called_for_every_record_of_a_batch() -> None:
    calls: list[str] = []

    class Counting(Learner):
        def decide(self, record, now, ready=None):  # type: ignore[no-untyped-def]
            calls.append(record.record_id)
            return super().decide(record, now, ready)

    records = _records(50, 9)
    pipeline = Pipeline(Counting(LearnerConfig(features=FeatureConfig())), TOPICS)
    out = pipeline.handle_inputs(_messages(records), T0)
    assert calls == [r.record_id for r in records]
    assert sum(o.topic == TOPICS.predictions for o in out) == len(records)
