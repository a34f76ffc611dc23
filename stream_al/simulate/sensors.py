"""Equipment sensor columns: the wide, uninformative part of a fab's records.

Fab equipment writes hundreds of values per wafer or part (chamber pressures, gas flows,
recipe set-points), most unrelated to whether the part fails: many never change, many
are missing most of the time, and the rest move by noise alone. The floor simulator adds
them (``FloorConfig.sensor_columns``) to measure that such features do not dominate the
model or the uncertainty.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stream_al.simulate.base import FloatArray, IntArray

#: Shares of the columns that are constant and mostly missing; the rest are noise.
CONSTANT_SHARE, SPARSE_SHARE = 0.3, 0.3
#: Kind codes.
CONSTANT, SPARSE, NOISE = 0, 1, 2


@dataclass(frozen=True, slots=True, eq=False)
class EquipmentSensors:
    """One product's sensor columns: a kind, a level and a spread each.

    >>> sensors = EquipmentSensors.draw(10, np.random.default_rng(0))
    >>> out = [{} for _ in range(4)]
    >>> sensors.read(np.arange(4), out, np.random.default_rng(1))
    >>> sorted(out[0])[:2], len(sensors.names)
    (['eq_000', 'eq_001'], 10)
    """

    names: tuple[str, ...]
    kind: IntArray
    level: FloatArray
    spread: FloatArray
    present: FloatArray  # the chance a value is written (1 for all but sparse columns)

    @classmethod
    def draw(cls, columns: int, rng: np.random.Generator) -> EquipmentSensors:
        kind = rng.choice([CONSTANT, SPARSE, NOISE], size=columns,
                          p=[CONSTANT_SHARE, SPARSE_SHARE, 1 - CONSTANT_SHARE - SPARSE_SHARE])
        # Units from mTorr to sccm: levels over six decades, spreads a few % of the level.
        level = 10.0 ** rng.uniform(-3, 3, size=columns)
        spread = np.where(kind == CONSTANT, 0.0, level * rng.uniform(0.01, 0.2, size=columns))
        present = np.where(kind == SPARSE, rng.uniform(0.02, 0.2, size=columns), 1.0)
        names = tuple(f"eq_{i:03d}" for i in range(columns))
        return cls(names, kind.astype(np.int64), level, spread, present)

    def read(self, rows: IntArray, out: list[dict[str, float | None]],
             rng: np.random.Generator) -> None:
        """Add every column's reading to the measurements of ``rows`` (None: not written)."""
        if not self.names:
            return
        n = len(rows)
        values = self.level + self.spread * rng.normal(size=(n, len(self.names)))
        written = rng.random(size=(n, len(self.names))) < self.present
        cells = np.round(values, 6).astype(object)
        cells[~written] = None
        for row, readings in zip(rows.tolist(), cells.tolist(), strict=True):
            out[row].update(zip(self.names, readings, strict=True))
