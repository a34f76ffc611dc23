"""The scikit-activeml arms: ``stream.VariableUncertainty`` and ``stream.Split``, each
with its own default budget manager (``VariableUncertaintyBudgetManager``,
``SplitBudgetManager``: Žliobaitė's estimated budget over w = 100), on the same River
model as every other arm.

scikit-activeml's stream strategies read a scikit-learn-style classifier: ``query``
calls ``predict_proba`` on the candidates and turns the largest probability into a
utility. ``RiverAsSklearn`` answers that from the River model the arm learns online (it
is never fitted in batch). ``query`` changes nothing; ``update`` then tells the
strategy which candidates were asked for, which is where its budget is spent.

``query`` and ``update`` validate their inputs with scikit-learn's ``check_array`` and
``inspect.signature`` on every call: about 3 ms a record here, an hour for one pass over
Shuttle. After the first record (which goes through ``query`` and so builds the budget
manager) an arm therefore does what ``query`` does without the checks: the utility 1 −
max p from the same probabilities, then the strategy's own budget manager's
``query_by_utility`` and ``update``. ``exact=True`` keeps the public calls throughout; a
unit test holds the two to the same decisions.
"""

from __future__ import annotations

import importlib.util
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from consumers.bench.anchors.arms import plain_model, predicted_class
from consumers.bench.anchors.harness import request_for
from consumers.bench.anchors.streams import Config, Item
from stream_al.models import stable_seed
from stream_al.records import OracleLabel, OracleRequest

#: Arm name → scikit-activeml strategy class name.
STRATEGIES: Final = {"skactiveml-vu": "VariableUncertainty", "skactiveml-split": "Split"}


def available() -> bool:
    """True when the ``anchors`` extra (scikit-activeml) is installed."""
    return importlib.util.find_spec("skactiveml") is not None


def _adapter_class() -> type:
    from skactiveml.base import SkactivemlClassifier  # type: ignore[import-untyped, import-not-found, unused-ignore]

    class RiverAsSklearn(SkactivemlClassifier):  # type: ignore[misc]
        """A River model behind scikit-activeml's classifier interface: one row of
        probabilities per candidate, over the classes the model has learnt (an empty
        model is certain of nothing it could name, so it answers a single 1.0 and the
        strategy sees no uncertainty, as River's own samplers do)."""

        def __init__(self, model: Any = None, names: tuple[str, ...] = ()) -> None:
            super().__init__()
            self.model = model
            self.names = names

        def fit(self, X: Any, y: Any, sample_weight: Any = None) -> Any:
            raise NotImplementedError("the River model learns online, one label at a time")

        def predict_proba(self, X: Any, **kwargs: Any) -> npt.NDArray[np.float64]:
            rows = [self.model.predict_proba_one(dict(zip(self.names, row, strict=True)))
                    for row in np.asarray(X, dtype=float)]
            width = max([1, *(len(p) for p in rows)])
            table = np.zeros((len(rows), width))
            for i, proba in enumerate(rows):
                values = list(proba.values()) or [1.0]
                table[i, :len(values)] = values
            return table

    return RiverAsSklearn


class SkactivemlArm:
    """One scikit-activeml stream strategy, querying through ``query(candidates, clf)``
    one record at a time, as its stream examples do."""

    def __init__(self, config: Config, seed: int, budget: float, name: str,
                 names: tuple[str, ...], exact: bool = False) -> None:
        from skactiveml import stream  # type: ignore[import-untyped, import-not-found, unused-ignore]

        self.name = name
        self.exact = exact
        self.model = plain_model(config, seed)
        self.names = names
        self.clf = _adapter_class()(self.model, names)
        strategy = getattr(stream, STRATEGIES[name])
        self.strategy = strategy(budget=budget, random_state=stable_seed(seed, name) % 2**31)
        self._candidates: npt.NDArray[np.float64] = np.zeros((1, len(names)))
        self._predicted: str | None = None

    def step(self, index: int, item: Item) -> tuple[str | None, bool]:
        self._candidates = np.array([[_value(item.x.get(n)) for n in self.names]])
        proba = self.model.predict_proba_one(dict(item.x))
        self._predicted = predicted_class(proba)
        if self.exact or not hasattr(self.strategy, "budget_manager_"):
            queried = self.strategy.query(self._candidates, clf=self.clf)
        else:
            utility = 1.0 - max(proba.values(), default=1.0)
            queried = self.strategy.budget_manager_.query_by_utility(np.array([utility]))
        return self._predicted, len(queried) > 0

    def commit(self, index: int, item: Item, asked: bool) -> OracleRequest | None:
        queried = [0] if asked else []
        if self.exact:
            self.strategy.update(self._candidates, queried)
        else:
            self.strategy.budget_manager_.update(self._candidates, queried)
        return request_for(item, self.name, self._predicted) if asked else None

    def learn(self, label: OracleLabel, item: Item) -> None:
        self.model.learn_one(dict(item.x), label.label)


def _value(value: float | None) -> float:
    # An array has no None, and scikit-activeml refuses NaN candidates. A missing value
    # (the floor streams have them) stands as 0.0: the candidates reach the model only
    # through the first record's ``query``, when the model is empty and answers alike
    # whatever they hold; after that the arm scores the record itself (None included).
    # ``exact=True`` would feed these zeros to the model: keep it to complete streams.
    return 0.0 if value is None else value
