"""Novelty: how unlike the recent stream a record is, for the hybrid gate (DESIGN §4).

River's Half-Space Trees, fed min-max scaled features (HST assumes features in [0, 1]),
learnt on every record, labelled or not.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from river import anomaly, preprocessing

Features = Mapping[str, float | None]

#: Value given to a feature missing from the very first record, in scaled units.
_MIDDLE = 0.5


def _finite(x: Features) -> dict[str, float]:
    # Missing, NaN and infinite values are dropped: HST sends a missing feature down the
    # branch most records took, a data-driven imputation.
    return {k: float(v) for k, v in x.items() if v is not None and math.isfinite(v)}


class NoveltyScorer:
    """Anomaly score in [0, 1] of each record against the recent stream, then learn it.

    Parameters
    ----------
    seed
        Seed of the trees' random splits.
    n_trees, height, window_size
        Half-Space Trees settings (River's defaults). Scores are 0.0 during the first
        ``window_size`` records, while there is no reference window yet.

    Examples
    --------
    >>> import random
    >>> rng, scorer = random.Random(0), NoveltyScorer(seed=1, window_size=100)
    >>> for _ in range(300):
    ...     _ = scorer.score_then_learn({"vdd": rng.gauss(0.9, 0.01), "leak": None})
    >>> usual = scorer.score_then_learn({"vdd": 0.9})
    >>> odd = scorer.score_then_learn({"vdd": 0.95, "leak": 3.2})
    >>> 0.0 <= usual < odd <= 1.0
    True

    Scores are relative, not calibrated probabilities (typical records score around 0.8
    here): the hybrid gate's adaptive novelty threshold finds the level.
    """

    def __init__(
        self, seed: int, n_trees: int = 10, height: int = 8, window_size: int = 250
    ) -> None:
        self._scaler = preprocessing.MinMaxScaler()
        self._trees = anomaly.HalfSpaceTrees(
            n_trees=n_trees, height=height, window_size=window_size, seed=seed
        )
        self._planted = False  # River builds the trees on the first learn_one

    def score_then_learn(self, x: Features) -> float:
        """The anomaly score of ``x`` before learning it (None/NaN values allowed)."""
        present = _finite(x)
        score = float(self._trees.score_one(self._scaled(present)))
        self._learn(present, x.keys())
        return min(1.0, max(0.0, score))

    def _scaled(self, present: dict[str, float]) -> dict[str, float]:
        # A feature the scaler has never seen scales to NaN; drop it like a missing one.
        return _finite(self._scaler.transform_one(present))

    def _learn(self, present: dict[str, float], names: Iterable[str]) -> None:
        self._scaler.learn_one(present)
        scaled = self._scaled(present)
        if not self._planted:
            # The trees split only on the features of the first record they learn: give
            # them every feature it names, even those missing a value this once.
            scaled = dict.fromkeys(names, _MIDDLE) | scaled
            if not scaled:
                return
            self._planted = True
        self._trees.learn_one(scaled)
