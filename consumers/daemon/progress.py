"""The daemon's progress line: once a minute at INFO, what it has done since the last.

A floor operator reading the log should see the daemon working without scraping
metrics: records read, predictions and queries sent, labels read and the input lag, per
interval.
"""

from __future__ import annotations

from dataclasses import dataclass

from stream_al.loop import StepCounts

#: Often enough to see a daemon working, rarely enough to read a day of log.
EVERY_S = 60.0


@dataclass
class Progress:
    """Counts since the last line, and when the next one is due.

    >>> progress = Progress(started=0.0, every_s=60.0)
    >>> progress.add(StepCounts(records=500, labels=7, predictions=498, queries=12))
    >>> progress.due(30.0), progress.due(61.0)
    (False, True)
    >>> progress.line(lag=12)
    'last 61 s: 500 records (8 /s), 498 predictions, 12 queries, 7 labels read; input lag 12'
    """

    started: float
    every_s: float = EVERY_S
    records: int = 0
    predictions: int = 0
    queries: int = 0
    labels: int = 0
    _now: float = 0.0

    def add(self, counts: StepCounts) -> None:
        self.records += counts.records
        self.predictions += counts.predictions
        self.queries += counts.queries
        self.labels += counts.labels

    def due(self, now: float) -> bool:
        self._now = now
        return now - self.started >= self.every_s

    def line(self, lag: int) -> str:
        """The line for the interval that ends now; starts the next interval."""
        seconds = max(self._now - self.started, 1e-9)
        text = (f"last {seconds:.0f} s: {self.records:,} records "
                f"({self.records / seconds:,.0f} /s), {self.predictions:,} predictions, "
                f"{self.queries:,} queries, {self.labels:,} labels read; input lag {lag:,}")
        self.started = self._now
        self.records = self.predictions = self.queries = self.labels = 0
        return text
