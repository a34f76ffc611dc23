"""Random sampling: the baseline every strategy is compared with."""

from __future__ import annotations

import random

from stream_al.gates.base import check_unit
from stream_al.reasons import Reason


class RandomGate:
    """Query with probability ``rate`` (normally the budget fraction B), ignoring u.

    >>> gate = RandomGate(rate=0.25, seed=1)
    >>> queried = sum(gate.decide(0.0) is not None for _ in range(4000)) / 4000
    >>> 0.23 < queried < 0.27
    True
    """

    name: str = "random"

    def __init__(self, rate: float, seed: int) -> None:
        self._rate = check_unit("rate", rate)
        self._rng = random.Random(seed)

    @property
    def threshold(self) -> float:
        """0.0: every record is eligible, whatever its uncertainty."""
        return 0.0

    def decide(self, uncertainty: float, novelty: float | None = None) -> Reason | None:
        return "uncertainty" if self._rng.random() < self._rate else None
