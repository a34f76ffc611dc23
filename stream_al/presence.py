"""How complete a parametric record is, judged against what its model usually sees.

A part whose flow stopped before its parametric tests carries almost nothing, and
uncertainty is no reason to ask about it (``learner.min_measured_share``). Counting its
measured values against every name in the record would misjudge a floor whose records
also carry equipment sensors written for one part in ten: with 300 of them beside 40
tests, an ordinary part had 21 % of its values and a stopped one far less, so nearly every
part was "too empty to ask", the gate asked only complete (passing) parts, and the model
never learnt a failing one (balanced accuracy 0.52 on the simulated floor). Each name here
counts by how often it has a value in the model's records (``completeness``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import numpy.typing as npt


class Presence:
    """Per-name counts of records with a value, over one model's records.

    >>> presence = Presence()
    >>> _ = presence.share_then_learn({"vdd": 0.9, "idd": 1.1, "chamber_torr": 3e-3})
    >>> for _ in range(9):
    ...     _ = presence.share_then_learn({"vdd": 0.9, "idd": 1.1, "chamber_torr": None})
    >>> presence.share_then_learn({"vdd": 0.9, "idd": 1.1, "chamber_torr": None})  # usual
    0.995
    >>> presence.share_then_learn({"vdd": 0.9, "idd": None, "chamber_torr": None})  # stopped
    0.4979
    """

    def __init__(self, max_names: int = 5000) -> None:
        self.max_names = max_names
        self.records = 0
        self._present: dict[str, int] = {}
        self._first: dict[str, int] = {}  # records before a name's first value

    def share_then_learn(self, measurements: Mapping[str, float | None]) -> float:
        """The presence-weighted share of values ``measurements`` has (rounded to 4
        places), then count it. The first record, and one whose names have never had a
        value, is judged by its plain share."""
        # One pass, as it runs on every record: each name's rate is read before its own
        # count moves, and no other name's rate depends on that count. The sums are
        # ``completeness``'s, in the same order (a name never seen adds exactly 0.0).
        present, first, records = self._present, self._first, self.records
        measured = 0
        expected = held = 0.0
        for name, value in measurements.items():
            has = value is not None and value == value  # NaN is unequal to itself
            count = present.get(name)
            if count is not None:
                since = records - first[name]
                rate = count / (since if since > 1 else 1)
                expected += rate * rate
                if has:
                    held += rate
                    present[name] = count + 1
            elif has and len(present) < self.max_names:  # a hostile record's names
                present[name] = 1
                first[name] = records
            measured += has
        plain = measured / len(measurements) if measurements else 0.0
        # Names never seen with a value give no weight: judge by the plain share.
        share = min(1.0, held / expected) if records and expected else plain
        self.records += 1
        return round(share, 4)

    def shares_then_learn(self, names: Sequence[str], has: npt.NDArray[np.bool_]
                          ) -> list[float] | None:
        """``share_then_learn`` for a run of records that all name ``names`` in this
        order, ``has[i, j]`` saying whether record i has a value for name j; the same
        shares to the last bit, or None (nothing learnt) when a name has never had a
        value here, whose first value would move the others' rates mid-run.

        Within a run each name's count before record i is its count before the run
        plus the values in rows above i, and ``cumsum`` adds in the per-record loop's
        order, so every sum is the same float."""
        present, first, records = self._present, self._first, self.records
        if not records or any(name not in present for name in names):
            return None
        runs, width = has.shape
        if width != len(names) or not runs:
            return None
        counts = np.array([present[name] for name in names], dtype=np.float64)
        starts = np.array([first[name] for name in names], dtype=np.float64)
        held_so_far = np.cumsum(has, axis=0, dtype=np.float64) - has
        since = records + np.arange(runs, dtype=np.float64)[:, None] - starts
        rates = (counts + held_so_far) / np.where(since > 1, since, 1.0)
        expected = np.cumsum(rates * rates, axis=1)[:, -1]
        held = np.cumsum(np.where(has, rates, 0.0), axis=1)[:, -1]
        shares = [round(min(1.0, h / e), 4) if e else round(m / width, 4) for h, e, m
                  in zip(held.tolist(), expected.tolist(), has.sum(axis=1).tolist(),
                         strict=True)]
        for name, total in zip(names, has.sum(axis=0).tolist(), strict=True):
            present[name] += total
        self.records += runs
        return shares

    def _rate(self, name: str) -> float:
        """Share of the records since ``name`` first had a value that had one (a test
        added to the program later is not judged by the records before it existed)."""
        present = self._present.get(name)
        if present is None:
            return 0.0
        return present / max(1, self.records - self._first[name])


def completeness(rates: Iterable[tuple[float, bool]]) -> float | None:
    """How complete a record is against the usual: ``rates`` pairs each name's presence
    rate r with whether the record has it. Each name weighs r, so a usual record is
    expected to hold Σ r² and holds Σ r over the names it has; the share is their ratio,
    capped at 1. A test every part runs (r = 1) counts fully, a sensor written for one
    part in ten one hundredth as much. None when no name has ever had a value.

    >>> completeness([(1.0, True), (1.0, False)])
    0.5
    >>> completeness([(1.0, True), (1.0, True)] + [(0.1, False)] * 9 + [(0.1, True)])
    1.0
    >>> completeness([(0.0, True)]) is None
    True
    """
    expected = held = 0.0
    for rate, has in rates:
        expected += rate * rate
        held += rate if has else 0.0
    return min(1.0, held / expected) if expected else None
