"""Fixed uncertainty: query whenever u ≥ θ, with θ constant."""

from __future__ import annotations

from stream_al.gates.base import check_unit
from stream_al.reasons import Reason


class FixedGate:
    """Query when the uncertainty reaches a constant threshold.

    The query rate follows the model's confidence, so it drifts with the model; only the
    budget in front holds it. θ = 0 queries every record the budget allows.

    >>> gate = FixedGate(threshold=0.6)
    >>> gate.decide(0.7), gate.decide(0.2), gate.threshold
    ('uncertainty', None, 0.6)
    """

    name: str = "fixed"

    def __init__(self, threshold: float) -> None:
        self._threshold = check_unit("threshold", threshold)

    @property
    def threshold(self) -> float:
        return self._threshold

    def decide(self, uncertainty: float, novelty: float | None = None) -> Reason | None:
        return "uncertainty" if uncertainty >= self._threshold else None
