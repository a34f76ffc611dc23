"""Prequential accuracy, kept apart for queried, audit and inline-labelled records.

Queried records are the hard ones the gate picked, so their accuracy is biased low;
audit records are a uniform random sample and give the unbiased estimate of live
accuracy; inline labels arrive with the record (e.g. final-test bin known).
"""

from __future__ import annotations

from collections import deque
from typing import Literal

Window = Literal["queried", "audit", "inline"]
WINDOWS: tuple[Window, ...] = ("queried", "audit", "inline")


class RollingAccuracy:
    """Accuracy over the last ``size`` outcomes and over all of them.

    >>> acc = RollingAccuracy(size=2)
    >>> for hit in (False, True, True):
    ...     acc.update(hit)
    >>> acc.rolling, acc.cumulative
    (1.0, 0.6666666666666666)
    """

    def __init__(self, size: int = 500) -> None:
        self._recent: deque[bool] = deque(maxlen=size)
        self._recent_hits = 0
        self.hits = 0
        self.count = 0

    def update(self, correct: bool) -> None:
        if len(self._recent) == self._recent.maxlen and self._recent[0]:
            self._recent_hits -= 1
        self._recent.append(correct)
        self._recent_hits += correct
        self.hits += correct
        self.count += 1

    @property
    def rolling(self) -> float | None:
        return self._recent_hits / len(self._recent) if self._recent else None

    @property
    def cumulative(self) -> float | None:
        return self.hits / self.count if self.count else None


class ModelScores:
    """The three accuracy windows of one model key."""

    def __init__(self, size: int = 500) -> None:
        self.windows = {window: RollingAccuracy(size) for window in WINDOWS}

    def update(self, window: Window, predicted: str | None, truth: str) -> bool:
        correct = predicted == truth
        self.windows[window].update(correct)
        return correct

    def rolling(self) -> dict[Window, float | None]:
        return {window: acc.rolling for window, acc in self.windows.items()}


class LearningCurve:
    """Samples a run at regular intervals: devices seen, labels used, accuracy over the
    recent ``window`` records, and cumulative (prequential) accuracy. One tracker for
    every run that is plotted together, so their curves are smoothed alike.

    >>> curve = LearningCurve(every=2, window=2)
    >>> for labels, hit in enumerate((False, True, True, True)):
    ...     curve.update(hit, labels)
    >>> curve.points
    [(2, 1, 0.5, 0.5), (4, 3, 1.0, 0.75)]
    """

    def __init__(self, every: int, window: int) -> None:
        self.every = max(1, every)
        self.recent = RollingAccuracy(max(1, window))
        self.points: list[tuple[int, int, float, float]] = []

    @classmethod
    def for_run(cls, total: int, points: int = 150) -> LearningCurve:
        return cls(every=total // points, window=max(200, total // 20))

    def update(self, correct: bool, labels_used: int) -> None:
        self.recent.update(correct)
        if self.recent.count % self.every == 0:
            self.points.append((self.recent.count, labels_used, self.recent.rolling or 0.0,
                                self.recent.cumulative or 0.0))

    def by_labels(self) -> list[tuple[int, float]]:
        """(labels used, recent accuracy): what the bench plots."""
        return [(labels, rolling) for _, labels, rolling, _ in self.points]
