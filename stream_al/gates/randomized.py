"""Randomized variable uncertainty (Žliobaitė et al. 2014): θ jittered by η ~ N(1, δ)."""

from __future__ import annotations

import random

from stream_al.gates.base import AdaptiveThreshold
from stream_al.reasons import Reason


class RandomizedUncertaintyGate:
    """Variable uncertainty with the threshold multiplied by η ~ N(1, δ) on every call.

    The jitter sometimes queries a confident record, so a change far from the decision
    boundary (where pure uncertainty never looks) is still noticed. With the paper's
    δ = 1 a certain record (u = 0) is queried on about 16% of the affordable calls.

    Parameters
    ----------
    seed
        Seed of the gate's own random generator.
    threshold
        Initial θ in [0, 1] (clamped to the adaptive range).
    step
        Relative adjusting step s in (0, 1); the paper uses 0.01.
    delta
        Standard deviation δ ≥ 0 of the multiplier; the paper uses 1.0. δ = 0 is the
        variable strategy.

    Examples
    --------
    >>> a, b = RandomizedUncertaintyGate(seed=7), RandomizedUncertaintyGate(seed=7)
    >>> [a.decide(0.4) for _ in range(5)] == [b.decide(0.4) for _ in range(5)]
    True
    """

    name: str = "randomized"

    def __init__(
        self, seed: int, threshold: float = 1.0, step: float = 0.01, delta: float = 1.0
    ) -> None:
        if delta < 0.0:
            raise ValueError(f"delta must be ≥ 0, got {delta}")
        self._theta = AdaptiveThreshold(threshold, step)
        self._delta = delta
        self._rng = random.Random(seed)

    @property
    def threshold(self) -> float:
        """The threshold before the per-call jitter."""
        return self._theta.value

    def decide(self, uncertainty: float, novelty: float | None = None) -> Reason | None:
        eta = self._rng.gauss(1.0, self._delta)
        triggered = self._theta.reached_by(uncertainty, eta)
        self._theta.adapt(triggered)
        return "uncertainty" if triggered else None
