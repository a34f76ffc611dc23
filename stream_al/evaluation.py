"""Prequential accuracy, kept apart for queried, audit and inline-labelled records, and
the scores the label benchmarks read from a replayed stream.

Queried records are the hard ones the gate picked, so their accuracy is biased low;
audit records are a uniform random sample and give the unbiased estimate of live
accuracy; inline labels arrive with the record (e.g. final-test bin known).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
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

    def prequential(self) -> list[tuple[int, float]]:
        """(labels used, cumulative prequential accuracy): what annotation savings read."""
        return [(labels, cumulative) for _, labels, _, cumulative in self.points]


class Confusion:
    """Prequential counts of (true class, predicted class) over a whole stream, and the
    scores an ATE floor reads from them.

    On a binary stream the minority class is the "fail" one: an *escape* is a minority
    record not predicted minority (a failing part shipped; no prediction at all counts
    too, as nothing stopped the part), *overkill* a majority record predicted minority
    (a good part scrapped).

    >>> scores = Confusion()
    >>> for truth, predicted in [("pass", "pass")] * 6 + [("pass", "fail"), ("fail", "fail"),
    ...                          ("fail", "pass"), ("fail", None)]:
    ...     scores.update(truth, predicted)
    >>> scores.accuracy, round(scores.balanced_accuracy, 4), scores.minority
    (0.7, 0.5952, 'fail')
    >>> round(scores.escape_rate or 0, 4), round(scores.overkill or 0, 4)
    (0.6667, 0.1429)
    """

    def __init__(self) -> None:
        self.counts: dict[str, dict[str | None, int]] = {}
        self.records = 0
        self.hits = 0

    def update(self, truth: str, predicted: str | None) -> None:
        row = self.counts.setdefault(truth, {})
        row[predicted] = row.get(predicted, 0) + 1
        self.records += 1
        self.hits += predicted == truth

    @property
    def accuracy(self) -> float:
        return self.hits / self.records if self.records else 0.0

    @property
    def balanced_accuracy(self) -> float:
        """Mean recall over the true classes seen."""
        recalls = [self._recall(label) for label in self.counts]
        return sum(recalls) / len(recalls) if recalls else 0.0

    @property
    def minority(self) -> str | None:
        """The rarer class of a binary stream (ties: the first name), else None."""
        if len(self.counts) != 2:
            return None
        return min(self.counts, key=lambda label: (sum(self.counts[label].values()), label))

    @property
    def minority_recall(self) -> float | None:
        minority = self.minority
        return None if minority is None else self._recall(minority)

    @property
    def escape_rate(self) -> float | None:
        recall = self.minority_recall
        return None if recall is None else 1.0 - recall

    @property
    def overkill(self) -> float | None:
        minority = self.minority
        if minority is None:
            return None
        [majority] = (label for label in self.counts if label != minority)
        row = self.counts[majority]
        return row.get(minority, 0) / sum(row.values())

    def _recall(self, label: str) -> float:
        row = self.counts[label]
        return row.get(label, 0) / sum(row.values())


def labels_to_reach(curve: Sequence[tuple[int, float]], target: float) -> int | None:
    """The labels used when a curve of (labels used, accuracy) reached ``target`` for
    good (it never fell below afterwards), or None if it ends below. "For good", because
    the first few records make a cumulative accuracy jump to 1.0 by luck.

    >>> labels_to_reach([(1, 1.0), (2, 0.5), (4, 0.8), (6, 0.9), (9, 0.85)], 0.8)
    4
    >>> labels_to_reach([(1, 1.0), (2, 0.5)], 0.8) is None
    True
    """
    reached: int | None = None
    for labels, accuracy in curve:
        if accuracy < target:
            reached = None
        elif reached is None:
            reached = labels
    return reached


def annotation_savings(labels: int | None, random_labels: int | None) -> float | None:
    """1 − labels/random_labels: the share of random sampling's labels a strategy saves
    to reach the same accuracy; None unless both reach it.

    >>> annotation_savings(30, 120), annotation_savings(None, 120), annotation_savings(5, 0)
    (0.75, None, None)
    """
    if labels is None or not random_labels:
        return None
    return 1.0 - labels / random_labels


def budget_bound(fraction: float, records: int) -> int:
    """⌈B·n⌉ + 1: the most labels a budget B may have spent after n records (one more for
    the record in hand). The epsilon absorbs float error (0.1·30 is 3.0000000000000004).

    >>> budget_bound(0.1, 30), budget_bound(0.05, 1250)
    (4, 64)
    """
    return math.ceil(fraction * records - 1e-9) + 1


class BoundTracker:
    """The largest labels used − ``budget_bound`` seen after the first ⌈1/B⌉ records
    (before that, one label is already over B): ≤ 0 means the budget held throughout.

    >>> bound = BoundTracker(0.5)
    >>> for labels in (1, 2, 2, 3):
    ...     bound.update(labels)
    >>> bound.max_over
    0
    >>> bound.update(5)  # 5 labels after 5 records: ⌈2.5⌉ + 1 = 4 allowed
    >>> bound.max_over
    1
    """

    def __init__(self, fraction: float) -> None:
        self.fraction = fraction
        self.start = math.ceil(1 / fraction - 1e-9)
        self.records = 0
        self.max_over: int | None = None

    def update(self, labels_used: int) -> None:
        """Account for one more record, after which ``labels_used`` labels are spent."""
        self.records += 1
        if self.records >= self.start:
            over = labels_used - budget_bound(self.fraction, self.records)
            self.max_over = over if self.max_over is None else max(self.max_over, over)


def rank_auc(scores: Sequence[float], positives: Sequence[bool]) -> float | None:
    """Area under the ROC curve: the chance that a random positive scores above a random
    negative (ties count half), by the Mann–Whitney rank sum. None without both classes.

    >>> rank_auc([0.1, 0.4, 0.35, 0.8], [False, False, True, True])
    0.75
    >>> rank_auc([0.5, 0.5], [True, False])
    0.5
    >>> rank_auc([0.2, 0.3], [False, False]) is None
    True
    """
    if len(scores) != len(positives):
        raise ValueError(f"{len(scores)} scores for {len(positives)} flags")
    order = sorted(range(len(scores)), key=scores.__getitem__)
    ranks = [0.0] * len(scores)
    start = 0
    while start < len(order):  # tied scores share the mean of their ranks
        end = start
        while end + 1 < len(order) and scores[order[end + 1]] == scores[order[start]]:
            end += 1
        for position in range(start, end + 1):
            ranks[order[position]] = (start + end) / 2 + 1
        start = end + 1
    n_pos = sum(bool(flag) for flag in positives)
    n_neg = len(positives) - n_pos
    if not n_pos or not n_neg:
        return None
    rank_sum = sum(rank for rank, flag in zip(ranks, positives, strict=True) if flag)
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
