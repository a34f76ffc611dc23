"""The soak's verdicts, pure functions of what it sampled: stalls, recoveries, the RSS
trend and what was lost. Times are seconds since the traffic started."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise

from consumers.bench.soak.options import Row


@dataclass(frozen=True)
class Sample:
    """One look at the run. ``predicted`` counts distinct records with a prediction,
    so a record scored again after a kill -9 does not look like progress."""

    t: float
    produced: int  # records the broker acknowledged
    predicted: int
    labels_sent: int = 0
    sent: int = 0  # records handed to the producer (acknowledged or not yet)
    #: Records the daemon process ``pid`` has handled (its own counter; None: no scrape).
    handled: float | None = None
    rss_mb: float | None = None
    pid: int | None = None
    daemon: Mapping[str, float] = field(default_factory=dict)

    @property
    def waiting(self) -> bool:
        return self.produced > self.predicted


@dataclass(frozen=True)
class Disruption:
    """A kill -9 (``start == end``) or a broker stop, from the stop until it answered."""

    kind: str
    start: float
    end: float


@dataclass(frozen=True)
class Stall:
    start: float
    end: float

    @property
    def seconds(self) -> float:
        return self.end - self.start


class Cumulative:
    """The daemon's counters summed over its processes: each restart begins at 0.

    What a killed process counted after its last scrape is missing, and what its
    successor scores or learns again after restoring the checkpoint is counted twice,
    so these sums describe the run; the losses are judged on Kafka and the final state.

    >>> sums = Cumulative()
    >>> sums.update(1, {"applied": 5.0})["applied"], sums.update(1, {"applied": 7.0})["applied"]
    (5.0, 7.0)
    >>> sums.update(2, {"applied": 1.0})["applied"]
    8.0
    """

    def __init__(self) -> None:
        self._base: dict[str, float] = {}
        self._last: dict[str, float] = {}
        self._pid: int | None = None

    def update(self, pid: int, values: Mapping[str, float]) -> dict[str, float]:
        if pid != self._pid:
            for name, value in self._last.items():
                self._base[name] = self._base.get(name, 0.0) + value
            self._pid, self._last = pid, {}
        self._last = dict(values)
        return self.totals

    @property
    def totals(self) -> dict[str, float]:
        names = set(self._base) | set(self._last)
        return {n: self._base.get(n, 0.0) + self._last.get(n, 0.0) for n in sorted(names)}


def recoveries(samples: Sequence[Sample], disruptions: Iterable[Disruption],
               allowance_s: float) -> list[Row]:
    """For each disruption, how long after its end new predictions came from a working
    daemon (None: not within ``allowance_s``), and the window in which silence is
    excused. Working: the process handles records again (right after a kill -9 the
    watcher still reads what the dead one sent); new predictions: seen from then on
    (after an outage the daemon's producer may deliver them seconds later)."""
    rows = []
    for event in disruptions:
        base = next((s for s in reversed(samples) if s.t <= event.end), None)
        after = [s for s in samples if s.t > event.end]
        first = _first_new_prediction(after, base)
        took = None if first is None or first - event.end > allowance_s else first - event.end
        excused_until = event.end + (took if took is not None else allowance_s)
        rows.append({"kind": event.kind, "start": event.start, "end": event.end,
                     "recovered_after_s": took, "excused_until": excused_until})
    return rows


def _first_new_prediction(after: Sequence[Sample], base: Sample | None) -> float | None:
    working = next((i for i, s in enumerate(after) if base is None or _progressed(s, base)),
                   None)
    if working is None:
        return None
    if working:
        before = after[working - 1].predicted
    else:
        before = base.predicted if base is not None else 0
    return next((s.t for s in after[working:] if s.predicted > before), None)


def _progressed(sample: Sample, base: Sample) -> bool:
    """Has the daemon handled records since ``base``? By its own counter when scraped."""
    if sample.handled is None and base.handled is None:
        return sample.predicted > base.predicted  # no counters at all: the watcher's view
    if sample.handled is None:
        return False  # the daemon did not answer /metrics
    if sample.pid != base.pid:
        return sample.handled > 0
    return base.handled is None or sample.handled > base.handled


def find_stalls(samples: Sequence[Sample], excused: Sequence[tuple[float, float]],
                stall_s: float) -> list[Stall]:
    """Spans longer than ``stall_s`` in which input waited and no record got its first
    prediction, outside the ``excused`` (start, end) windows. A span runs from the last
    sample that saw progress to the first that saw it again (or the last sample), so it
    may be one sampling interval longer than the truth, never shorter.

    >>> flat = [Sample(t, 10, 5) for t in range(0, 30, 2)]
    >>> [(s.start, s.end) for s in find_stalls(flat, [], 10)]
    [(0, 28)]
    >>> find_stalls(flat, [(0, 20)], 10)
    []
    """
    stalls: list[Stall] = []
    since: float | None = None
    for previous, current in pairwise(samples):
        idle = (current.predicted == previous.predicted and previous.waiting
                and not _inside(current.t, excused))
        if idle and since is None:
            since = previous.t
        elif not idle and since is not None:
            _close(stalls, since, current.t, stall_s)
            since = None
    if since is not None:
        _close(stalls, since, samples[-1].t, stall_s)
    return stalls


def _inside(t: float, windows: Sequence[tuple[float, float]]) -> bool:
    return any(start <= t <= end for start, end in windows)


def _close(stalls: list[Stall], start: float, end: float, stall_s: float) -> None:
    if end - start > stall_s:
        stalls.append(Stall(start, end))


def rss_trend(values: Sequence[float], tolerance: float = 0.10) -> Row | None:
    """Median RSS of the first and the last quarter of the samples, and whether the
    last is within ``tolerance`` of the first; and whether it has levelled off: the
    last quarter within half that of the third (a leak keeps growing in the second half;
    an allocator's high-water mark does not). None with fewer than 8 samples.

    >>> rss_trend([100.0] * 4 + [104.0] * 4)["within_tolerance"]
    True
    >>> round(rss_trend([100.0] * 4 + [150.0] * 4)["change"], 2)
    0.5
    >>> rising_then_flat = rss_trend([100.0] * 4 + [120.0] * 4)
    >>> rising_then_flat["within_tolerance"], rising_then_flat["levelled_off"]
    (False, True)
    """
    if len(values) < 8:
        return None
    quarter = len(values) // 4
    first = statistics.median(values[:quarter])
    third = statistics.median(values[-2 * quarter:-quarter])
    last = statistics.median(values[-quarter:])
    change, late_change = last / first - 1.0, last / third - 1.0
    return {"first_quarter_median_mb": first, "third_quarter_median_mb": third,
            "last_quarter_median_mb": last, "change": change, "late_change": late_change,
            "tolerance": tolerance, "within_tolerance": abs(change) <= tolerance,
            "levelled_off": abs(late_change) <= tolerance / 2}


def rss_by_process(samples: Sequence[Sample]) -> list[Row]:
    """Each daemon process's life and its own RSS trend (a kill -9 resets the RSS, so
    a leak shows within one process before it shows across the run)."""
    lives: dict[int, list[Sample]] = {}
    for sample in samples:
        if sample.pid is not None and sample.rss_mb is not None:
            lives.setdefault(sample.pid, []).append(sample)
    return [{"pid": pid, "from": life[0].t, "to": life[-1].t,
             "max_mb": max(s.rss_mb or 0.0 for s in life),
             "trend": rss_trend([s.rss_mb for s in life if s.rss_mb is not None])}
            for pid, life in lives.items()]


def prediction_accounting(produced: Iterable[str], predicted: Iterable[str]) -> Row:
    """Every record the broker acknowledged must have at least one prediction.

    >>> prediction_accounting(["a", "b", "c"], ["a", "c", "c"])["missing"]
    1
    """
    sent, seen = set(produced), set(predicted)
    missing = sorted(sent - seen)
    return {"produced": len(sent), "with_prediction": len(sent & seen),
            "missing": len(missing), "missing_examples": missing[:10],
            "predictions_for_unknown_records": len(seen - sent), "ok": not missing}


def label_accounting(sent: int, distinct: int, learned: int | None,
                     reported: Mapping[str, float]) -> Row:
    """The final state must have learnt one label per query answered: labels sent minus
    the duplicates (a second answer to a query, as after a replayed request).

    >>> label_accounting(10, 8, 8, {})["ok"], label_accounting(10, 8, 7, {})["lost"]
    (True, 1)
    """
    lost = None if learned is None else distinct - learned
    return {"labels_sent": sent, "queries_answered": distinct,
            "duplicates_sent": sent - distinct, "learned_in_final_state": learned,
            "lost": lost, "reported_by_daemon_summed": dict(reported), "ok": lost == 0}


def verdict(predictions: Row, labels: Row, stalls: Sequence[Stall],
            recovered: Sequence[Row]) -> Row:
    """Nothing lost, no stall, every disruption recovered from: the exit status."""
    unrecovered = [r for r in recovered if r["recovered_after_s"] is None]
    reasons = []
    if not predictions["ok"]:
        reasons.append(f"{predictions['missing']} records without a prediction")
    if not labels["ok"]:
        reasons.append(f"labels lost: {labels['lost']}")
    if stalls:
        reasons.append(f"{len(stalls)} stalls, longest {max(s.seconds for s in stalls):.0f} s")
    if unrecovered:
        reasons.append(f"{len(unrecovered)} disruptions without a prediction after them")
    return {"ok": not reasons, "reasons": reasons}
