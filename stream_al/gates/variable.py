"""Variable uncertainty (Žliobaitė, Bifet, Pfahringer, Holmes, IEEE TNNLS 2014), in u-form."""

from __future__ import annotations

from stream_al.gates.base import AdaptiveThreshold
from stream_al.reasons import Reason


class VariableUncertaintyGate:
    """Query when u ≥ θ; then θ ← θ(1+s), else θ ← θ(1−s).

    The paper writes the rule for the max posterior (query when max p < θ); on an
    uncertainty u the directions mirror. Because θ adapts, the gate keeps querying the
    most uncertain of the affordable records whatever the model's overall confidence.

    Parameters
    ----------
    threshold
        Initial θ in [0, 1] (clamped to the adaptive range).
    step
        Relative adjusting step s in (0, 1); the paper uses 0.01.

    Examples
    --------
    >>> gate = VariableUncertaintyGate(threshold=0.5, step=0.01)
    >>> gate.decide(0.8), round(gate.threshold, 4)
    ('uncertainty', 0.505)
    >>> gate.decide(0.1), round(gate.threshold, 4)
    (None, 0.5)
    """

    name: str = "variable"

    def __init__(self, threshold: float = 1.0, step: float = 0.01) -> None:
        self._theta = AdaptiveThreshold(threshold, step)

    @property
    def threshold(self) -> float:
        return self._theta.value

    def decide(self, uncertainty: float, novelty: float | None = None) -> Reason | None:
        triggered = self._theta.reached_by(uncertainty)
        self._theta.adapt(triggered)
        return "uncertainty" if triggered else None
