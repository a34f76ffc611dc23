"""``bench anchors``: every arm meets the same stream order, oracle, cold start and budget.

Small synthetic streams, no network. The scikit-activeml arms run when the ``anchors``
extra is installed and are skipped, saying so, when it is not.
"""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import pytest

from consumers.bench.anchors import skal
from consumers.bench.anchors.arms import AllLabels, StreamAlArm, plain_model
from consumers.bench.anchors.discount import bisect_discount, target_labels
from consumers.bench.anchors.harness import Arm, ArmResult, run_arm
from consumers.bench.anchors.runs import ANCHORS, STREAM_AL_ARMS, make_arm
from consumers.bench.anchors.streams import Config, Item, Stream
from stream_al.evaluation import budget_bound
from stream_al.features import FeatureConfig, extract
from stream_al.records import OracleLabel, OracleRequest, TransactionRecord

NEEDS_SKACTIVEML = pytest.mark.skipif(
    not skal.available(), reason="scikit-activeml is not installed: install the anchors "
    "extra (pip install -e '.[anchors]') to test its arms")
LR = Config("toy", "LR")
_START = datetime(2026, 1, 1, tzinfo=UTC)


def toy_stream(n: int, seed: int = 0, noise: float = 0.1, first: str | None = None,
               lead: int = 0) -> Stream:
    """Two classes split by a + b > 0, with ``noise`` of the labels flipped; the first
    ``lead`` records all of class ``first`` (a cold start that takes a while)."""
    rng = random.Random(seed)
    items = []
    for i in range(n):
        a, b = rng.gauss(0, 1), rng.gauss(0, 1)
        truth = "fail" if (a + b > 0) != (rng.random() < noise) else "pass"
        if i < lead and first is not None:
            truth = first
        record = TransactionRecord(record_id=f"toy-{i}", ts=_START + timedelta(seconds=i),
                                   numeric={"a": a, "b": b})
        items.append(Item(record, extract(record, FeatureConfig()), truth))
    return Stream("toy", tuple(items))


def every_arm() -> list[str]:
    """The budgeted arms this installation can run."""
    names = [a for a in ANCHORS if skal.available() or a not in skal.STRATEGIES]
    return [*names, *STREAM_AL_ARMS]


class Recorder:
    """An arm in disguise: remembers in which order it saw records and labels."""

    def __init__(self, arm: Arm) -> None:
        self.arm = arm
        self.steps: list[str] = []
        self.learnt: list[tuple[int, str]] = []  # (records seen by then, record id)
        self.asked: list[str] = []

    def step(self, index: int, item: Item) -> tuple[str | None, bool]:
        self.steps.append(item.record.record_id)
        return self.arm.step(index, item)

    def commit(self, index: int, item: Item, asked: bool) -> OracleRequest | None:
        if asked:
            self.asked.append(item.record.record_id)
        return self.arm.commit(index, item, asked)

    def learn(self, label: OracleLabel, item: Item) -> None:
        self.learnt.append((len(self.steps), item.record.record_id))
        self.arm.learn(label, item)


def _arm(name: str, stream: Stream, budget: float) -> Arm:
    return make_arm(name, LR, 0, budget, stream, 8.0 if name == "river-entropy" else None)


@pytest.mark.parametrize("delay", [0, 7])
def test_every_arm_sees_the_same_stream_order_and_learns_only_what_it_predicted(
        delay: int) -> None:
    stream = toy_stream(300, seed=1)
    order = [item.record.record_id for item in stream.items]
    for name in ["all", *every_arm()]:
        arm = Recorder(AllLabels(LR, 0) if name == "all" else _arm(name, stream, 0.2))
        result = run_arm(stream, arm, 0.2, delay)
        assert arm.steps == order, name
        # Test, then train: a label is learnt only once its record was predicted, and
        # `delay` records later (0: before the next record).
        for seen, record_id in arm.learnt:
            assert seen >= order.index(record_id) + max(1, delay), (name, record_id)
        assert result.labels_used == len(arm.asked), name


def test_the_cold_start_asks_until_two_classes_for_every_arm_and_charges_it() -> None:
    stream = toy_stream(200, seed=2, first="pass", lead=6)
    first_other = next(i for i, item in enumerate(stream.items) if item.truth != "pass")
    cold = [item.record.record_id for item in stream.items[:first_other + 1]]
    for name in every_arm():
        arm = Recorder(_arm(name, stream, 0.1))
        # Without the hard budget, which would ration the cold start too.
        run_arm(stream, arm, 0.1, delay=0, hard_budget=False)
        assert arm.asked[:len(cold)] == cold, name
    # Charged against the arm's own budget: stream-al's window counts them as queries.
    learner_arm = StreamAlArm(LR, 0, 0.1, "variable")
    run_arm(toy_stream(first_other + 1, seed=2, first="pass", lead=6), learner_arm, 0.1, 0,
            hard_budget=False)
    assert learner_arm.learner.budget.spent_ratio("transaction") > 0.0


@pytest.mark.parametrize("budget", [0.05, 0.2])
def test_the_hard_budget_holds_every_arm_to_the_same_bound_at_every_record(
        budget: float) -> None:
    stream = toy_stream(400, seed=3, first="pass", lead=6)
    for name in ["all", *every_arm()]:
        inner = AllLabels(LR, 0) if name == "all" else _arm(name, stream, budget)
        arm = Recorder(inner)
        result = run_arm(stream, arm, budget, delay=0)
        order = [item.record.record_id for item in stream.items]
        asked_at = sorted(order.index(r) for r in arm.asked)
        for used, index in enumerate(asked_at, start=1):
            assert used <= math.ceil(budget * (index + 1)) + 1, (name, index)
        assert result.labels_max_over_bound is not None and result.labels_max_over_bound <= 0
    # An arm that wants every label gets exactly the bound, no more and no fewer.
    eager = run_arm(stream, AllLabels(LR, 0), budget, delay=0)
    assert eager.labels_used == math.ceil(budget * stream.size) + 1


def _noisy(n: int) -> Stream:
    """Labels that are coin flips: no model ever gets sure, so every gate wants labels
    all along and only the budget stops it."""
    return toy_stream(n, seed=3, noise=0.5)


def test_every_arm_spends_the_budget_within_its_managers_slack() -> None:
    """At B = 0.1 over n = 1000 records (stream-al's budget window), on a stream that
    never gets easy: stream-al's uncertainty gates, held by an exact window cap, end
    within one label of ⌈B·n⌉; scikit-activeml's estimated budget (w = 100) lets a
    little more through (its estimate starts at 0, so about B·w labels go in a first
    burst); the bisected sampler lands near ⌈B·n⌉ (its labels are a noisy function of
    the factor); random sampling within 3σ."""
    stream, budget = _noisy(1000), 0.1
    target = target_labels(budget, stream.size)
    spent: dict[str, int] = {}
    for name in every_arm():
        arm = _arm(name, stream, budget)
        if name == "river-entropy":
            spent[name] = bisect_discount(stream, LR, budget, 0).result.labels_used
        else:
            spent[name] = run_arm(stream, arm, budget, 0).labels_used
    for name in ("stream-al:fixed", "stream-al:variable", "stream-al:randomized",
                 "stream-al:hybrid"):
        assert abs(spent[name] - target) <= 1, (name, spent[name])
    assert abs(spent["river-entropy"] - target) <= 0.1 * target
    for name in skal.STRATEGIES if skal.available() else ():
        assert target - 1 <= spent[name] <= budget_bound(budget, stream.size) + 15, name
    sigma = (stream.size * budget * (1 - budget)) ** 0.5
    for name in ("random", "stream-al:random"):
        assert abs(spent[name] - target) <= 3 * sigma, (name, spent[name])


def test_bisection_finds_the_discount_that_spends_the_budget() -> None:
    stream = toy_stream(1000)

    def fake(d: float) -> ArmResult:
        # Labels fall with log d, as the sampler's do (noise-free here).
        return ArmResult(labels_used=max(0, round(600 - 40 * math.log2(d))))
    found = bisect_discount(stream, LR, 0.1, 0, run=fake)
    assert abs(found.result.labels_used - 100) <= 1
    assert found.runs <= 12


def test_every_arm_uses_the_same_plain_model_seeded_alike() -> None:
    stream = toy_stream(50)
    arf = Config("toy", "ARF")
    models = [plain_model(arf, 4), AllLabels(arf, 4).model]
    if skal.available():
        models.append(skal.SkactivemlArm(arf, 4, 0.1, "skactiveml-vu",
                                         tuple(stream.items[0].x)).model)
    learner = StreamAlArm(arf, 4, 0.1, "variable").learner
    models.append(learner.registry.get("transaction").model)
    for model in models:
        for item in stream.items[:30]:
            model.learn_one(dict(item.x), item.truth)
    probe = dict(stream.items[40].x)
    assert len({repr(sorted(m.predict_proba_one(probe).items())) for m in models}) == 1


@NEEDS_SKACTIVEML
@pytest.mark.parametrize("name", list(skal.STRATEGIES))
def test_the_skactiveml_shortcut_decides_as_its_public_query(name: str) -> None:
    stream = toy_stream(400, seed=5, noise=0.2)
    names = tuple(stream.items[0].x)
    fast, exact = (Recorder(skal.SkactivemlArm(LR, 1, 0.1, name, names, exact=e))
                   for e in (False, True))
    run_arm(stream, fast, 0.1, 3)
    run_arm(stream, exact, 0.1, 3)
    assert fast.asked == exact.asked and len(fast.asked) > 20
