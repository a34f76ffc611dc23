"""The predicted class under class imbalance: a prior-corrected decision rule.

On a floor fails are a few percent of the parts. A model learnt from few labels rarely
gives a fail more than half the probability, so the most probable class is nearly always
"pass": accuracy looks fine while most fails escape. Dividing each class's probability by
its prior, π(c), gives the rule that maximises balanced accuracy (each class's recall
counts alike); raising π to γ in [0, 1] moves between that rule (γ = 1) and the most
probable class (γ = 0), trading escapes against overkill.

π is the mean of the model's own predicted distributions over its recent records, not
the class shares among labels: the gate picks labels near the boundary, so labelled
classes are far more even than the stream's.
"""

from __future__ import annotations

from collections.abc import Mapping

from stream_al.models import most_probable

#: A class the model gives (almost) no mass on average is not inflated without bound.
_PRIOR_FLOOR = 1e-3


class ClassPrior:
    """Exponentially weighted mean of predicted distributions, and the rule it corrects.

    >>> prior = ClassPrior(window=100)
    >>> for _ in range(100):
    ...     _ = prior.corrected({"pass": 0.95, "fail": 0.05}, gamma=1.0)
    >>> prior.corrected({"pass": 0.8, "fail": 0.2}, gamma=0.0)
    'pass'
    >>> prior.corrected({"pass": 0.8, "fail": 0.2}, gamma=1.0)  # 0.2/0.05 > 0.8/0.95
    'fail'
    >>> round(prior.share("fail"), 3)
    0.053
    """

    def __init__(self, window: int = 500) -> None:
        self.window = window
        self._mean: dict[str, float] = {}
        self._seen = 0

    def share(self, label: str) -> float:
        return self._mean.get(label, 0.0)

    def corrected(self, proba: Mapping[str, float], gamma: float) -> str | None:
        """Learn ``proba`` into π, then the class maximising p(c)/π(c)^γ (ties as
        :func:`most_probable`: to the alphabetically first). A distribution over one
        class is not learnt."""
        if len(proba) < 2:
            # A model that knows one class says nothing of the others' shares: learning
            # its p = 1 would hold a rare class's π near 0 for a window, and inflate it
            # (on the simulated floor at γ = 0.5: overkill 0.094 instead of 0.059).
            return most_probable(proba)
        self._seen += 1
        rate = 1.0 / min(self._seen, self.window)
        for label in self._mean.keys() | proba.keys():
            mean = self._mean.get(label, 0.0)
            self._mean[label] = mean + rate * (proba.get(label, 0.0) - mean)
        if not gamma:
            return most_probable(proba)
        return most_probable({label: p / max(self._mean[label], _PRIOR_FLOOR) ** gamma
                              for label, p in proba.items()})
