"""Hybrid: an uncertainty gate plus a novelty trigger for confident-but-wrong records."""

from __future__ import annotations

from stream_al.gates.base import AdaptiveThreshold
from stream_al.gates.randomized import RandomizedUncertaintyGate
from stream_al.gates.variable import VariableUncertaintyGate
from stream_al.reasons import Reason


class HybridGate:
    """Query when the inner uncertainty gate does, or when the novelty score is high.

    Novelty (e.g. a Half-Space Trees anomaly score in [0, 1]) has its own threshold that
    tracks the score quantile where a share ``novelty_rate`` of the affordable records
    trigger: novelty is for the rare outlier, and a symmetric threshold would spend about
    a third of the budget on ordinary records that merely score a little high. The
    reason is "novelty" only when novelty triggered and uncertainty did not, so the
    ``reason`` label counts what novelty adds. Without a novelty score the novelty
    threshold stays put.

    Parameters
    ----------
    inner
        The uncertainty gate (variable or randomized), which owns ``threshold``.
    novelty_threshold
        Initial novelty threshold in [0, 1].
    step
        Relative adjusting step of the novelty threshold.
    novelty_rate
        Share of the records the gate sees on which novelty should trigger.

    Examples
    --------
    >>> gate = HybridGate(VariableUncertaintyGate(0.5), novelty_threshold=0.7)
    >>> gate.decide(0.9, novelty=0.95), gate.decide(0.1, novelty=0.95), gate.decide(0.1, 0.2)
    ('uncertainty', 'novelty', None)
    """

    name: str = "hybrid"

    def __init__(
        self,
        inner: VariableUncertaintyGate | RandomizedUncertaintyGate,
        novelty_threshold: float = 1.0,
        step: float = 0.01,
        novelty_rate: float = 0.5,
    ) -> None:
        self._inner = inner
        self._novelty = AdaptiveThreshold(novelty_threshold, step, novelty_rate)

    @property
    def threshold(self) -> float:
        return self._inner.threshold

    @property
    def novelty_threshold(self) -> float:
        return self._novelty.value

    def decide(self, uncertainty: float, novelty: float | None = None) -> Reason | None:
        reason = self._inner.decide(uncertainty)
        if novelty is None:
            return reason
        novel = novelty >= self._novelty.value
        self._novelty.adapt(novel)
        return reason or ("novelty" if novel else None)
