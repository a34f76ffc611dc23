"""The gate contract and the adaptive threshold the variable strategies share."""

from __future__ import annotations

from typing import Final, Protocol, runtime_checkable

from stream_al.reasons import Reason

#: Bounds of an adaptive threshold: multiplicative steps would stick at 0, and u ≤ 1.
THRESHOLD_MIN: Final = 0.001
THRESHOLD_MAX: Final = 1.0


@runtime_checkable
class Gate(Protocol):
    """Decides, for one record the budget can afford, whether to query it.

    ``decide`` is called only when the budget allows a query (as in Žliobaitė et al. 2014,
    where the threshold adapts only while the spending estimate is under B). It returns the
    reason to query, or None, and adapts the gate's own state. Gates are deterministic for
    their seed and picklable, so a checkpoint restores them exactly.
    """

    name: str

    @property
    def threshold(self) -> float:
        """The current uncertainty threshold θ, for the ``stream_al_query_threshold`` metric."""
        ...

    def decide(self, uncertainty: float, novelty: float | None = None) -> Reason | None:
        """Query this record (and why), or not; adapt the threshold either way."""
        ...


def check_unit(name: str, value: float) -> float:
    """``value`` if it lies in [0, 1]; else a ValueError naming the parameter."""
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value}")
    return value


class AdaptiveThreshold:
    """A threshold that rises by a factor ``1 + step`` when it triggers, else falls by ``1 − step``.

    Rising after a query narrows the region of records that qualify; falling after a pass
    widens it. Under a budget the threshold settles where about half of the affordable
    records trigger, so the budget, not the score distribution, sets the query rate. The
    value is clamped to [THRESHOLD_MIN, THRESHOLD_MAX] so it can always move again.

    >>> theta = AdaptiveThreshold(0.5, step=0.1)
    >>> theta.adapt(triggered=True)
    >>> round(theta.value, 3)
    0.55
    >>> theta.adapt(triggered=False)
    >>> round(theta.value, 3)
    0.495

    With ``target`` other than one half the steps are unequal — up by ``step``, down by
    ``step·target/(1 − target)`` — and the threshold settles where a share ``target`` of
    the records it sees trigger (a running quantile of the scores).

    >>> rare = AdaptiveThreshold(0.5, step=0.1, target=0.2)
    >>> rare.adapt(triggered=False)
    >>> round(rare.value, 4)
    0.4875
    """

    def __init__(self, initial: float, step: float, target: float = 0.5) -> None:
        if not 0.0 < step < 1.0:
            raise ValueError(f"step must be in (0, 1), got {step}")
        if not 0.0 < target < 1.0:
            raise ValueError(f"target must be in (0, 1), got {target}")
        self.step = step
        self.down = step * target / (1.0 - target)
        self.value = _clamp(check_unit("threshold", initial))

    def reached_by(self, uncertainty: float, jitter: float = 1.0) -> bool:
        """Whether ``uncertainty`` reaches θ·``jitter``, an uncertainty below the floor
        counting as the floor.

        Trees and naive Bayes give many records u = 0 exactly (a pure leaf). Were they
        never to reach θ, a model confident everywhere would stop asking, and its budget
        would go unspent while it is wrong (Digits with a Hoeffding tree: 35 labels of
        180). At the floor the gate cannot rank these records any more, so it asks for
        them as the budget allows, as the paper's θ on the max posterior does once it
        passes 1.

        >>> floor = AdaptiveThreshold(THRESHOLD_MIN, step=0.01)
        >>> floor.reached_by(0.0), AdaptiveThreshold(0.5, step=0.01).reached_by(0.0)
        (True, False)
        """
        return max(uncertainty, THRESHOLD_MIN) >= self.value * jitter

    def adapt(self, triggered: bool) -> None:
        factor = 1.0 + self.step if triggered else 1.0 - self.down
        self.value = _clamp(self.value * factor)


def _clamp(value: float) -> float:
    return min(THRESHOLD_MAX, max(THRESHOLD_MIN, value))
