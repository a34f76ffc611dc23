"""Model templates: River pipelines of imputation, scaling and a classifier, and plain
River classifiers as River builds them.

The registry (``registry.py``) builds one of these per model key on first sight. Every
imputing template accepts labels it has never seen (a new defect type), because a floor
invents new failure classes faster than anyone updates a config file.

The ``river_*`` templates are River's own models with River's defaults and nothing added
(no imputer, no extra scaler): ``river_lr`` is ``StandardScaler() | LogisticRegression()``,
``river_ht`` ``HoeffdingTreeClassifier()``, ``river_gnb`` ``GaussianNB()`` and ``river_arf``
``ARFClassifier(n_models=10, seed=…)``. They let a benchmark compare stream-al's gates with
other libraries' strategies on exactly the model those libraries are shown with.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from river import (
    base,
    compose,
    forest,
    linear_model,
    multiclass,
    naive_bayes,
    optim,
    preprocessing,
    stats,
    tree,
)
from river.tree.nodes.branch import DTBranch, NumericBinaryBranch

TemplateName = Literal["logistic", "softmax", "naive_bayes", "hoeffding_tree", "arf",
                       "river_lr", "river_ht", "river_gnb", "river_arf"]
#: Plain River classifiers, built as River's documentation shows them.
PLAIN_TEMPLATES: tuple[TemplateName, ...] = ("river_lr", "river_ht", "river_gnb", "river_arf")
Features = Mapping[str, float | None]
#: The feature ``MeanImputer`` adds: the share of the expected values it had to fill.
IMPUTED = "@imputed"


class ModelConfig(BaseModel):
    """Which classifier every model key gets, and its few tunable knobs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    template: TemplateName = Field(
        "logistic", description="logistic, softmax, naive_bayes, hoeffding_tree or arf; or a "
        "plain River model with River's defaults: river_lr (binary), river_ht, river_gnb, "
        "river_arf"
    )
    learning_rate: float = Field(0.01, gt=0, le=10, description="SGD step of linear models "
                                 "(not river_lr)")
    l2: float = Field(0.0, ge=0, description="L2 penalty of linear models (not river_lr)")
    min_presence: float = Field(
        0.5, ge=0.0, le=1.0, description="imputing templates leave out a feature that has a "
        "value in fewer than this share of the labelled records since its first value")
    n_models: int = Field(10, ge=1, le=100, description="ensemble size of arf and river_arf")
    grace_period: int = Field(50, ge=1, description="records a tree leaf sees before splitting "
                              "(not river_ht, river_arf)")


class MeanImputer(base.Transformer):
    """Fills a missing or ``None`` feature with the running mean of the values seen for it,
    leaves out features that are mostly missing, and adds ``@imputed``, the share of the
    expected values it had to fill.

    River's ``StatImputer`` needs every feature named up front; a test program adds and
    drops tests, so this one learns the feature set as it goes. ``@imputed`` keeps the
    signal that imputation would otherwise erase: a tester stops a flow at the first
    failing test, so a part with many skipped tests is very likely a failing part. It is
    the shortfall against the usual (``stream_al.presence.completeness``): a test every
    part runs counts fully, an equipment sensor written for one part in ten barely, so
    hundreds of such sensors, each missing as usual, do not drown the skipped tests.

    A feature with a value in fewer than ``min_presence`` of the labelled records since it
    first had one (judged after ``_EVIDENCE`` of them) is left out: filled with its mean
    most of the time, its rare real values stand out as noise after scaling. On the
    simulated floor with 300 equipment sensors, these rules and the learner's
    presence-weighted completeness took balanced accuracy from 0.63 to 0.75 (0.76
    without the sensors; ``docs/benchmarks.md``). It learns only in ``learn_one`` (on
    labelled records), so prediction never changes the model.

    >>> imputer = MeanImputer()
    >>> imputer.learn_one({"vdd": 1.0, "idd": 2.0, "flow_sensor": 7.0})
    >>> for value in (1.0, 3.0, 2.0):
    ...     imputer.learn_one({"vdd": value, "idd": 2.0, "flow_sensor": None})
    >>> imputer.transform_one({"vdd": None})
    {'vdd': 1.75, 'idd': 2.0, 'flow_sensor': 7.0, '@imputed': 1.0}
    >>> round(imputer.transform_one({"vdd": 2.0, "idd": 2.0})["@imputed"], 2)  # as usual
    0.03
    >>> round(imputer.transform_one({"vdd": 2.0})["@imputed"], 2)  # a test skipped
    0.52
    """

    def __init__(self, min_presence: float = 0.0) -> None:
        self.min_presence = min_presence
        self.means: dict[Hashable, stats.Mean] = {}
        self.learnt = 0  # labelled records
        self.first: dict[Hashable, int] = {}  # labelled records before a feature's first value
        self._plan: FillPlan | None = None

    def __getstate__(self) -> dict[str, Any]:
        # The plan is derived state: checkpoints stay as they were without it.
        return {name: value for name, value in self.__dict__.items() if name != "_plan"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Imputers pickled before presence was counted: every feature counts fully.
        self.__dict__.update({"min_presence": 0.0, "learnt": 0, "first": {}} | state)
        self._plan = None

    def learn_one(self, x: dict[Hashable, Any]) -> None:
        self._plan = None
        for name, value in x.items():
            if value is not None:
                if name not in self.means:
                    self.means[name] = stats.Mean()
                    self.first[name] = self.learnt
                self.means[name].update(value)
        self.learnt += 1

    def presence(self, name: Hashable) -> float:
        """Share of the labelled records since ``name`` first had a value that had one."""
        mean = self.means[name]
        if name not in self.first:
            return 1.0
        return min(1.0, mean.n / max(1, self.learnt - self.first[name]))

    def transform_one(self, x: dict[Hashable, Any]) -> dict[Hashable, Any]:
        # Features never seen with a value stay absent: a scaled absent feature is 0,
        # which is the mean once scaling learns anything.
        filled = {name: value for name, value in x.items() if value is not None}
        plan = self.fill_plan()
        for name in plan.dropped:
            filled.pop(name, None)
        held = 0.0
        for name, rate, mean in plan.kept:
            if name in filled:
                held += rate
            else:
                filled[name] = mean
        # completeness() of the kept features' rates, its sums taken in the same order.
        complete = min(1.0, held / plan.expected) if plan.expected else None
        filled[IMPUTED] = 0.0 if complete is None else 1.0 - complete
        return filled

    def fill_plan(self) -> FillPlan:
        """What ``transform_one`` does with each known feature. It depends only on what
        was learnt, so it is worked out once per label rather than once per record (it
        was most of a prediction's cost)."""
        plan = self._plan
        if plan is None or plan.min_presence != self.min_presence:
            plan = self._plan = self._new_fill_plan()
        return plan

    def _new_fill_plan(self) -> FillPlan:
        dropped: list[Hashable] = []
        kept: list[tuple[Hashable, float, float]] = []
        expected = 0.0
        for name, mean in self.means.items():
            rate = self.presence(name)
            if rate < self.min_presence and \
                    self.learnt - self.first.get(name, 0) >= _EVIDENCE:
                dropped.append(name)
                continue
            kept.append((name, rate, mean.get()))
            expected += rate * rate
        return FillPlan(self.min_presence, tuple(dropped), tuple(kept), expected)


@dataclass(frozen=True)
class FillPlan:
    """``MeanImputer``'s decisions until its next ``learn_one``: the features it leaves
    out, and the kept ones in order with their presence rate and fill value."""

    min_presence: float
    dropped: tuple[Hashable, ...]
    kept: tuple[tuple[Hashable, float, float], ...]
    #: Σ rate² over ``kept``: what a usual record holds (``completeness``).
    expected: float


#: Labelled records after a feature's first value before it may be left out as mostly
#: missing.
_EVIDENCE = 20


class Intercept(base.Transformer):
    """Adds a constant feature: River's SoftmaxRegression has no bias term, and without
    one it cannot learn class priors (it loses to the majority class on a 90/10 floor)."""

    def transform_one(self, x: dict[Hashable, Any]) -> dict[Hashable, Any]:
        return {**x, "__intercept__": 1.0}


class PlainClassifier(base.Classifier):
    """A River classifier taken as it is, fed the learner's records: a skipped test
    (``None``) becomes an absent feature, River's own convention for a missing value (a
    plain River model has no imputer and would fail on ``None``; a complete record passes
    unchanged), and class names stay strings.

    River's ``LogisticRegression`` is binary and learns ``bool`` labels: with
    ``binary=True`` the first class learnt is ``False`` and the second ``True``, and the
    distribution is named back. A third class is refused with a ``ValueError`` (the
    daemon dead-letters that label; use the ``logistic`` template for many classes).

    >>> model = PlainClassifier(linear_model.LogisticRegression(), binary=True)
    >>> model.predict_proba_one({"vdd": 1.0})
    {}
    >>> model.learn_one({"vdd": 1.0, "idd": None}, "pass")
    >>> model.predict_proba_one({"vdd": 1.0})
    {'pass': 1.0}
    >>> model.learn_one({"vdd": -1.0}, "fail")
    >>> sorted(model.predict_proba_one({"vdd": 1.0}))
    ['fail', 'pass']
    """

    def __init__(self, classifier: base.Classifier | compose.Pipeline,
                 binary: bool = False) -> None:
        self.classifier = classifier
        self.binary = binary
        #: The binary model's classes in the order learnt: ``False``, then ``True``.
        self.classes: list[Any] = []

    def learn_one(self, x: dict[Hashable, Any], y: Any) -> None:
        if not self.binary:
            self.classifier.learn_one(present(x), y)
            return
        if y not in self.classes:
            if len(self.classes) == 2:
                raise ValueError(f"river_lr is binary and knows {self.classes}; {y!r} would "
                                 "be a third class (use the logistic template)")
            self.classes.append(y)
        self.classifier.learn_one(present(x), self.classes.index(y) == 1)

    def predict_proba_one(self, x: dict[Hashable, Any], **kwargs: Any) -> dict[Any, float]:
        proba = self.classifier.predict_proba_one(present(x), **kwargs)
        if not self.binary:
            return dict(proba)
        if len(self.classes) < 2:
            # One class learnt: it is the only name the model can give.
            return {self.classes[0]: 1.0} if self.classes else {}
        return {self.classes[0]: proba.get(False, 0.0), self.classes[1]: proba.get(True, 0.0)}


def present(x: dict[Hashable, Any]) -> dict[Hashable, Any]:
    """``x`` without its ``None`` values (River reads an absent key as missing)."""
    if all(value is not None for value in x.values()):
        return x
    return {name: value for name, value in x.items() if value is not None}


def _plain(config: ModelConfig, seed: int) -> base.Classifier:
    match config.template:
        case "river_lr":
            return PlainClassifier(
                preprocessing.StandardScaler() | linear_model.LogisticRegression(), binary=True)
        case "river_ht":
            return PlainClassifier(tree.HoeffdingTreeClassifier())
        case "river_gnb":
            return PlainClassifier(naive_bayes.GaussianNB())
        case "river_arf":
            return PlainClassifier(forest.ARFClassifier(n_models=config.n_models, seed=seed))
        case _:
            raise ValueError(f"{config.template!r} is not a plain River template")


def _linear_optimizer(config: ModelConfig) -> optim.SGD:
    return optim.SGD(config.learning_rate)


def _classifier(config: ModelConfig, seed: int) -> base.Classifier:
    match config.template:
        case "logistic":
            # One binary logistic model per class, so a new class adds a model.
            return multiclass.OneVsRestClassifier(
                linear_model.LogisticRegression(optimizer=_linear_optimizer(config), l2=config.l2)
            )
        case "softmax":
            return linear_model.SoftmaxRegression(
                optimizer=_linear_optimizer(config), l2=config.l2
            )
        case "naive_bayes":
            return naive_bayes.GaussianNB()
        case "hoeffding_tree":
            return tree.HoeffdingAdaptiveTreeClassifier(
                grace_period=config.grace_period, seed=seed
            )
        case "arf":
            return forest.ARFClassifier(
                n_models=config.n_models, grace_period=config.grace_period, seed=seed
            )
        case _:
            raise ValueError(f"{config.template!r} is not an imputing template")


def build_model(config: ModelConfig, seed: int) -> compose.Pipeline:
    """A fresh, untrained pipeline for one model key.

    >>> model = build_model(ModelConfig(template="logistic"), seed=7)
    >>> model.learn_one({"vdd": 0.9, "idd": None}, "pass")
    >>> model.predict_proba_one({"vdd": 0.91, "idd": 1.2})
    {'pass': 1.0}
    """
    if config.template in PLAIN_TEMPLATES:
        # A one-step pipeline behaves as its step; the registry holds pipelines only.
        return compose.Pipeline(_plain(config, seed))
    steps: list[base.Estimator] = [MeanImputer(config.min_presence),
                                   preprocessing.StandardScaler()]
    if config.template == "softmax":
        steps.append(Intercept())
    return compose.Pipeline(*steps, _classifier(config, seed))


def committee_members(model: compose.Pipeline) -> list[base.Classifier] | None:
    """The members of an ensemble template, or None for a single model."""
    final = model[-1]
    if isinstance(final, PlainClassifier):
        final = final.classifier
    if isinstance(final, forest.ARFClassifier):
        return list(final)
    return None


def member_probas(model: compose.Pipeline, x: Features) -> list[dict[Any, float]]:
    """Each ensemble member's class distribution for ``x`` (for committee uncertainty)."""
    members = committee_members(model)
    if not members:
        return []
    transformed: Any = x
    for step in list(model.steps.values())[:-1]:
        transformed = step.transform_one(transformed)
    if isinstance(model[-1], PlainClassifier):
        transformed = present(transformed)
    return [member.predict_proba_one(transformed) for member in members]


def stable_seed(base_seed: int, *parts: str) -> int:
    """A seed derived from strings, the same in every process (unlike ``hash``).

    >>> stable_seed(42, "PMIC-A7") == stable_seed(42, "PMIC-A7")
    True
    """
    digest = hashlib.sha256(repr((base_seed, *parts)).encode()).digest()
    return int.from_bytes(digest[:4], "big")


def most_probable(proba: Mapping[str, float]) -> str | None:
    """The class with the highest probability; ties go to the smallest name, so the
    prediction does not depend on the order the classes were first seen in."""
    if not proba:
        return None
    return min(proba, key=lambda label: (-proba[label], label))


def influences(model: compose.Pipeline, x: Features, predicted: Any,
               top: int = 8) -> list[tuple[str, float]]:
    """The features that pushed this prediction most, largest first, where the model
    can say: a logistic (one-vs-rest or binary) or softmax model's weight for the
    predicted class × the feature's scaled value (positive: for it). Empty for trees
    (see :func:`decision_path`), forests and naive Bayes, whose reasons are not one
    number per feature, and before anything is learnt.

    An engineer at the desk reads these first: "leak_ua +2.1" says where to look.

    >>> model = build_model(ModelConfig(template="logistic"), seed=1)
    >>> for v in (-2.0, -1.0, 1.0, 2.0):
    ...     model.learn_one({"vdd": v, "idd": 0.0}, "pass" if v > 0 else "fail")
    >>> [name for name, _ in influences(model, {"vdd": 1.5, "idd": 0.0}, "pass")]
    ['vdd']
    """
    final = model[-1]
    weights = _linear_weights(final, predicted)
    if not weights:
        return []
    scaled: Any = x
    steps = list(model.steps.values())[:-1]
    if isinstance(final, PlainClassifier):
        scaled = present({name: value for name, value in x.items()})
        inner = final.classifier
        steps = list(inner.steps.values())[:-1] if isinstance(inner, compose.Pipeline) else []
    for step in steps:
        scaled = step.transform_one(scaled)
    # Not ``@imputed`` nor softmax's ``__intercept__``: no measurement of the record.
    pushes = [(str(name), float(weight) * float(scaled[name])) for name, weight in weights.items()
              if isinstance(scaled.get(name), int | float)
              and not str(name).startswith(("@", "__"))]
    pushes = [(name, push) for name, push in pushes if math.isfinite(push) and push != 0.0]
    return sorted(pushes, key=lambda item: -abs(item[1]))[:top]


def _linear_weights(final: Any, predicted: Any) -> Mapping[Hashable, float] | None:
    if isinstance(final, linear_model.SoftmaxRegression):
        # Its weights are a defaultdict: ``get`` asks without adding a class.
        weights = final.weights.get(predicted)
        return dict(weights) if weights else None
    if isinstance(final, multiclass.OneVsRestClassifier):
        member = final.classifiers.get(predicted)
        return member.weights if isinstance(member, linear_model.LogisticRegression) else None
    if (isinstance(final, PlainClassifier) and final.binary and len(final.classes) == 2
            and predicted in final.classes):
        classifier = final.classifier
        last = classifier[-1] if isinstance(classifier, compose.Pipeline) else classifier
        if not isinstance(last, linear_model.LogisticRegression):
            return None
        # River's binary model speaks for ``True``, the second class learnt.
        sign = 1.0 if final.classes.index(predicted) == 1 else -1.0
        return {name: sign * weight for name, weight in last.weights.items()}
    return None


#: A decision path step: the feature tested, the record's value of it as the model saw it
#: (in the record's units; None where the record had none), the branch it took.
PathStep = tuple[str, float | None, str]


def decision_path(model: compose.Pipeline, x: Features, top: int = 8) -> list[PathStep]:
    """The tests a Hoeffding tree made on ``x``, from the root towards its leaf (the
    first ``top``), in the record's units: an imputing template's scaler is undone, so
    ``vdd ≤ 0.93`` reads as volts. Empty for other models and for a tree that has not
    split yet. The main tree's path: a Hoeffding adaptive tree's alternate subtrees,
    which may add to its vote, are not walked.

    >>> model = build_model(ModelConfig(template="hoeffding_tree", grace_period=20), seed=1)
    >>> for i in range(400):
    ...     v = (i % 40) / 10 - 2.0
    ...     model.learn_one({"vdd": v, "idd": 0.0}, "pass" if v > 0 else "fail")
    >>> decision_path(model, {"vdd": 1.5, "idd": 0.0})
    [('vdd', 1.5, '≤ 1.706'), ('vdd', 1.5, '> 0.3561')]
    """
    final = model[-1]
    seen: Any = x
    steps = list(model.steps.values())[:-1]
    if isinstance(final, PlainClassifier):
        given: dict[Hashable, Any] = {name: value for name, value in x.items()}
        final, seen, steps = final.classifier, present(given), []
    if not isinstance(final, tree.HoeffdingTreeClassifier):
        return []
    scaler: preprocessing.StandardScaler | None = None
    raw: Any = seen
    for step in steps:
        if isinstance(step, preprocessing.StandardScaler):
            scaler, raw = step, seen
        seen = step.transform_one(seen)
    # River offers no public way to the root; walked with its node API (branch_no,
    # children, most_common_path), as its own predict_proba_one does.
    node = final._root  # noqa: SLF001
    path: list[PathStep] = []
    while isinstance(node, DTBranch) and len(path) < top:
        name = getattr(node, "feature")  # every branch of River's trees tests one  # noqa: B009
        value = raw.get(name)
        try:
            index = node.branch_no(seen)
        except KeyError:  # the record has no value: River goes the most travelled way
            index, value = node.most_common_path()[0], None
        number = float(value) if isinstance(value, int | float) and math.isfinite(value) else None
        path.append((str(name), number, _branch_test(node, index, scaler)))
        node = node.children[index]
    return path


def _branch_test(node: DTBranch, index: int, scaler: preprocessing.StandardScaler | None
                 ) -> str:
    if isinstance(node, NumericBinaryBranch):
        threshold = float(node.threshold)
        if scaler is not None and node.feature in scaler.means:
            # The scaler keeps learning: this is the test as it applies now.
            threshold = scaler.means[node.feature] + threshold * scaler.vars[node.feature] ** 0.5
        return f"{'≤' if index == 0 else '>'} {threshold:.4g}"
    return str(node.repr_branch(index, shorten=True))[:64]
