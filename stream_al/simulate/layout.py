"""Where and on what each simulated device is tested: tester, site, lot, wafer, die.

Testers work in parallel, each stepping through its own wafer a touchdown of
``sites`` adjacent dies at a time; the floor's stream interleaves the touchdowns of all
testers. A tester runs one product (testers are set up per product) and works through
whole lots. Wafers are numbered floor-wide in the order they start (``wafer_uid``), which
times the process drift.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stream_al.simulate.base import FloatArray, IntArray


@dataclass(frozen=True, slots=True, eq=False)
class WaferMap:
    """The dies of a round wafer in stepping (serpentine) order.

    Examples
    --------
    >>> m = WaferMap.round(10)
    >>> len(m), int(m.x.min()), int(m.x.max()), bool(m.radius.max() <= 1.0)
    (80, 0, 9, True)
    """

    x: IntArray
    y: IntArray
    radius: FloatArray  # distance from the centre, 1 = the wafer edge

    @classmethod
    def round(cls, diameter: int) -> WaferMap:
        """Every die of a ``diameter``-wide grid whose centre lies on the wafer."""
        half = diameter / 2.0
        xs, ys, rs = [], [], []
        for row in range(diameter):
            columns = range(diameter) if row % 2 == 0 else range(diameter - 1, -1, -1)
            for column in columns:
                r = np.hypot(column + 0.5 - half, row + 0.5 - half) / half
                if r <= 1.0:
                    xs.append(column)
                    ys.append(row)
                    rs.append(r)
        return cls(np.array(xs, dtype=np.int64), np.array(ys, dtype=np.int64), np.array(rs))

    def __len__(self) -> int:
        return len(self.x)


@dataclass(frozen=True, slots=True, eq=False)
class Placement:
    """Per device (vectorised): tester and site index, wafer uid, lot, wafer in lot, die.

    ``lot`` numbers are floor-wide and distinct per tester.
    """

    tester: IntArray
    site: IntArray
    wafer_uid: IntArray
    lot: IntArray
    wafer_in_lot: IntArray
    die: IntArray


@dataclass(frozen=True, slots=True)
class FloorLayout:
    """Maps device sequence numbers to their place on the floor.

    Examples
    --------
    >>> layout = FloorLayout(testers=2, sites=2, dies_per_wafer=10, wafers_per_lot=3)
    >>> p = layout.place(np.arange(6))
    >>> p.tester.tolist(), p.site.tolist(), p.die.tolist()
    ([0, 0, 1, 1, 0, 0], [0, 1, 0, 1, 0, 1], [0, 1, 0, 1, 2, 3])
    """

    testers: int
    sites: int
    dies_per_wafer: int
    wafers_per_lot: int

    def place(self, device: IntArray) -> Placement:
        """Placement of the devices with sequence numbers ``device``."""
        touchdown, site = np.divmod(device, self.sites)
        tester_touchdown, tester = np.divmod(touchdown, self.testers)
        slot, die = np.divmod(tester_touchdown * self.sites + site, self.dies_per_wafer)
        wafer_uid = slot * self.testers + tester
        tester_lot, wafer_in_lot = np.divmod(slot, self.wafers_per_lot)
        lot = tester_lot * self.testers + tester
        return Placement(tester, site, wafer_uid, lot, wafer_in_lot, die)
