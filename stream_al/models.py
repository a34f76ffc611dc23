"""Model templates: each a River pipeline of imputation, scaling and a classifier.

The registry (``registry.py``) builds one of these per model key on first sight. Every
template accepts labels it has never seen (a new defect type), because a floor invents
new failure classes faster than anyone updates a config file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Hashable, Mapping
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

TemplateName = Literal["logistic", "softmax", "naive_bayes", "hoeffding_tree", "arf"]
Features = Mapping[str, float | None]


class ModelConfig(BaseModel):
    """Which classifier every model key gets, and its few tunable knobs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    template: TemplateName = Field(
        "logistic", description="logistic, softmax, naive_bayes, hoeffding_tree or arf"
    )
    learning_rate: float = Field(0.01, gt=0, le=10, description="SGD step of linear models")
    l2: float = Field(0.0, ge=0, description="L2 penalty of linear models")
    n_models: int = Field(10, ge=1, le=100, description="ensemble size of arf")
    grace_period: int = Field(50, ge=1, description="records a tree leaf sees before splitting")


class MeanImputer(base.Transformer):
    """Fills a missing or ``None`` feature with the running mean of the values seen for it,
    and adds ``@imputed``, the share of known features it had to fill.

    River's ``StatImputer`` needs every feature named up front; a test program adds and
    drops tests, so this one learns the feature set as it goes. ``@imputed`` keeps the
    signal that imputation would otherwise erase: a tester stops a flow at the first
    failing test, so a part with many skipped tests is very likely a failing part. It
    learns only in ``learn_one`` (on labelled records), so prediction never changes the
    model.

    >>> imputer = MeanImputer()
    >>> for value in (1.0, 3.0):
    ...     imputer.learn_one({"vdd": value, "idd": 2.0})
    >>> imputer.transform_one({"vdd": None})
    {'vdd': 2.0, 'idd': 2.0, '@imputed': 1.0}
    """

    def __init__(self) -> None:
        self.means: dict[Hashable, stats.Mean] = {}

    def learn_one(self, x: dict[Hashable, Any]) -> None:
        for name, value in x.items():
            if value is not None:
                self.means.setdefault(name, stats.Mean()).update(value)

    def transform_one(self, x: dict[Hashable, Any]) -> dict[Hashable, Any]:
        # Features never seen with a value stay absent: a scaled absent feature is 0,
        # which is the mean once scaling learns anything.
        filled = {name: value for name, value in x.items() if value is not None}
        imputed = 0
        for name, mean in self.means.items():
            if filled.get(name) is None:
                filled[name] = mean.get()
                imputed += 1
        filled["@imputed"] = imputed / len(self.means) if self.means else 0.0
        return filled


class Intercept(base.Transformer):
    """Adds a constant feature: River's SoftmaxRegression has no bias term, and without
    one it cannot learn class priors (it loses to the majority class on a 90/10 floor)."""

    def transform_one(self, x: dict[Hashable, Any]) -> dict[Hashable, Any]:
        return {**x, "__intercept__": 1.0}


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


def build_model(config: ModelConfig, seed: int) -> compose.Pipeline:
    """A fresh, untrained pipeline for one model key.

    >>> model = build_model(ModelConfig(template="logistic"), seed=7)
    >>> model.learn_one({"vdd": 0.9, "idd": None}, "pass")
    >>> model.predict_proba_one({"vdd": 0.91, "idd": 1.2})
    {'pass': 1.0}
    """
    steps: list[base.Estimator] = [MeanImputer(), preprocessing.StandardScaler()]
    if config.template == "softmax":
        steps.append(Intercept())
    return compose.Pipeline(*steps, _classifier(config, seed))


def committee_members(model: compose.Pipeline) -> list[base.Classifier] | None:
    """The members of an ensemble template, or None for a single model."""
    final = model[-1]
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
