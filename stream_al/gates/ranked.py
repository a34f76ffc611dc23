"""A gate that judges each uncertainty by its rank among the model's recent ones.

An adaptive threshold on the raw uncertainty only works where the scores spread over
[0, 1]. Naive Bayes and Hoeffding trees give most records u ≈ 0 (1e-12 and 0.0 look
alike to θ), logistic models on easy streams crowd into [0, 0.05], and a threshold that
starts at 1.0 needs ~120 affordable records to come down to where the scores are, which
is most of a short stream's budget. On its rank among recent scores (the share of them
below it) every model's u is uniform on [0, 1], so one threshold rule fits every model,
and ties (a run of u = 0) are broken at random rather than never, or always, queried.
"""

from __future__ import annotations

import bisect
import random
from array import array

from stream_al.gates.base import Gate
from stream_al.reasons import Reason


class RecentRanks:
    """The share of the last ``window`` values below a value, ties split at random.

    Parameters
    ----------
    window
        How many recent values a rank is judged against (at least 1).
    seed
        Seed of the tie-breaking draw.

    Examples
    --------
    >>> ranks = RecentRanks(window=4, seed=1)
    >>> [ranks.rank_then_add(u) for u in (0.3, 0.1, 0.2, 0.9, 0.05)]
    [0.5, 0.0, 0.5, 1.0, 0.0]

    The first value has nothing to be judged against and ranks 0.5. A value equal to k of
    the n recent ones ranks uniformly within their share:

    >>> ties = RecentRanks(window=10, seed=2)
    >>> _ = [ties.rank_then_add(0.0) for _ in range(10)]
    >>> 0.0 <= ties.rank_then_add(0.0) <= 1.0
    True
    """

    def __init__(self, window: int, seed: int) -> None:
        if window < 1:
            raise ValueError(f"window must be ≥ 1, got {window}")
        self.window = window
        # The sorted values stay a list: insort on a list is C all the way, 2× faster than
        # on an array, and a decision is made for most records. ``_arrival`` is a ring of
        # plain doubles once full (~20 KB a model key at 500 values, ~9 KB checkpointed).
        self._arrival = array("d")
        self._oldest = 0
        self._sorted: list[float] = []
        self._rng = random.Random(seed)

    def __len__(self) -> int:
        return len(self._sorted)

    def rank_then_add(self, value: float) -> float:
        """The rank of ``value`` in [0, 1] among the recent values; then remember it."""
        n = len(self._sorted)
        if n == 0:
            rank = 0.5
        else:
            below = bisect.bisect_left(self._sorted, value)
            equal = bisect.bisect_right(self._sorted, value) - below
            rank = (below + self._rng.random() * equal) / n if equal else below / n
        if len(self._arrival) < self.window:
            self._arrival.append(value)
        else:
            oldest = self._arrival[self._oldest]
            del self._sorted[bisect.bisect_left(self._sorted, oldest)]
            self._arrival[self._oldest] = value
            self._oldest = (self._oldest + 1) % self.window
        bisect.insort(self._sorted, value)
        return rank


class RankedGate:
    """``inner`` decides on the rank of u among the model's recent uncertainties.

    The ranks are taken over the records the gate sees (those the budget can afford),
    which the budget samples without regard to u, so they estimate the model's own score
    distribution. The threshold reported is the inner gate's, a rank in [0, 1]: 0.9 means
    "the top 10 % of recent uncertainties".

    Examples
    --------
    >>> from stream_al.gates.fixed import FixedGate
    >>> gate = RankedGate(FixedGate(0.5), window=100, seed=0)
    >>> [gate.decide(u) for u in (0.2, 0.1, 0.3, 0.05)]
    ['uncertainty', None, 'uncertainty', None]
    """

    def __init__(self, inner: Gate, window: int, seed: int) -> None:
        self.inner = inner
        self.name = inner.name
        self._ranks = RecentRanks(window, seed)

    @property
    def threshold(self) -> float:
        return self.inner.threshold

    def decide(self, uncertainty: float, novelty: float | None = None) -> Reason | None:
        return self.inner.decide(self._ranks.rank_then_add(uncertainty), novelty)
