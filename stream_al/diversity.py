"""How near a record is to the model's recent queries: the gate's diversity term.

Uncertainty alone asks about whatever sits near the boundary, and on a floor the
records near it come in runs (adjacent dies, one drifting tool), so a budget can go on
near-duplicates whose second label teaches little. ``RecentQueries`` keeps the last
queried records' values and scores a record's nearness to them as exp(−d / 2w²): d the
smallest mean squared distance to one of them, each feature scaled by its running
standard deviation over every record the model has seen, and w = ``WIDTH`` of them.
The gate then sees u × (1 − δ · nearness), δ = ``learner.gate.diversity``: a record
like one just asked counts as less uncertain.

Pure arithmetic on numpy arrays; a feature first seen late gets its own column.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

#: Queried records remembered per model: enough to cover a run of similar parts.
MEMORY = 32
#: Columns kept at most: a wide sensor vector is judged on its first features.
MAX_FEATURES = 256
#: How close counts as alike, in standard deviations (RMS over the features): a fixed
#: width, because a scale learnt from the stream itself would take a run of
#: near-duplicates for the usual spacing and call them apart.
WIDTH = 0.25


class RecentQueries:
    """The standardised vectors of one model's last ``memory`` queries.

    >>> recent = RecentQueries()
    >>> for i in range(50):
    ...     recent.observe({"vdd": 1.0 + 0.01 * (i % 7), "idd": 2.0 + 0.1 * (i % 5)})
    >>> recent.remember({"vdd": 1.03, "idd": 2.2})
    >>> near = recent.nearness({"vdd": 1.03, "idd": 2.2})
    >>> far = recent.nearness({"vdd": 1.0, "idd": 2.4})
    >>> near > 0.9 and far < near
    True
    """

    def __init__(self, memory: int = MEMORY, max_features: int = MAX_FEATURES) -> None:
        self.memory, self.max_features = memory, max_features
        self.columns: dict[str, int] = {}
        self._count = np.zeros(0)
        self._mean = np.zeros(0)
        self._m2 = np.zeros(0)
        self._queries: npt.NDArray[np.float64] = np.zeros((0, 0))
        self._next = 0

    def observe(self, x: Mapping[str, float | None]) -> None:
        """Learn the scale of every feature from a record the model has seen."""
        index, values = self._indexed(x, grow=True)
        if not index.size:
            return
        self._count[index] += 1
        delta = values - self._mean[index]
        self._mean[index] += delta / self._count[index]
        self._m2[index] += delta * (values - self._mean[index])

    def nearness(self, x: Mapping[str, float | None]) -> float:
        """exp(−d / 2w²) in (0, 1]; 0 while no query is remembered."""
        if not self._queries.shape[0]:
            return 0.0
        # Both sides scaled by today's spread: a query kept in the units of its own time
        # would drift away from its twins as the running mean moves.
        sd = np.sqrt(self._m2 / np.maximum(self._count - 1, 1))
        with np.errstate(invalid="ignore", divide="ignore"):
            z = (self._queries - self._raw(x)) / sd
        z = np.clip(np.nan_to_num(z, nan=0.0, posinf=0.0, neginf=0.0), -6.0, 6.0)
        d = float(np.min(np.mean(z ** 2, axis=1)))
        return math.exp(-d / (2 * WIDTH ** 2))

    def remember(self, x: Mapping[str, float | None]) -> None:
        """Keep a queried record (the oldest of ``memory`` makes room)."""
        raw = self._raw(x)
        if self._queries.shape[0] < self.memory:
            self._queries = np.vstack([self._queries, raw[None, :]])
        else:
            self._queries[self._next] = raw
        self._next = (self._next + 1) % self.memory

    def _indexed(self, x: Mapping[str, float | None], grow: bool
                 ) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float64]]:
        index, values = [], []
        for name, value in x.items():
            if value is None or not math.isfinite(value):
                continue  # a missing value is at the mean: no distance, no scale
            column = self.columns.get(name)
            if column is None:
                if not grow or len(self.columns) >= self.max_features:
                    continue
                column = self._add(name)
            index.append(column)
            values.append(value)
        return np.array(index, dtype=np.intp), np.array(values, dtype=float)

    def _add(self, name: str) -> int:
        column = self.columns[name] = len(self.columns)
        self._count = np.append(self._count, 0.0)
        self._mean = np.append(self._mean, 0.0)
        self._m2 = np.append(self._m2, 0.0)
        # Remembered queries had no value there: no distance in that column.
        grown = np.full((self._queries.shape[0], len(self.columns)), np.nan)
        grown[:, :self._queries.shape[1]] = self._queries
        self._queries = grown
        return column

    def _raw(self, x: Mapping[str, float | None]) -> npt.NDArray[np.float64]:
        """The record's values by column; NaN where it has none (no distance there)."""
        raw = np.full(len(self.columns), np.nan)
        index, values = self._indexed(x, grow=False)
        raw[index] = values
        return raw
