"""A simulated oracle: answers queries from known truth after a delay, at a limited
capacity, with optional label noise. Pure (the caller passes the time), so the demo,
the benchmarks and ``stream-al oracle simulate`` share it.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from stream_al.records import OracleLabel, OracleRequest

#: record_id → the true class, or None when the oracle cannot know it.
TruthLookup = Callable[[OracleRequest], str | None]


def truth_from_record(request: OracleRequest) -> str | None:
    """The label carried inside the request's record (evaluation runs, simulators)."""
    return request.record.label


@dataclass(order=True)
class _Due:
    at: datetime
    sequence: int
    request: OracleRequest = field(compare=False)
    truth: str = field(compare=False)


class SimulatedOracle:
    """Answers each offered query ``delay`` after it was offered, never more than
    ``per_minute`` answers a minute (a team of engineers has a capacity).

    >>> from datetime import UTC
    >>> oracle = SimulatedOracle(lambda r: "pass", delay=timedelta(seconds=5))
    >>> t0 = datetime(2026, 1, 1, tzinfo=UTC)
    >>> oracle.due(t0)
    []
    """

    def __init__(self, truth: TruthLookup, delay: timedelta = timedelta(0),
                 noise: float = 0.0, per_minute: float | None = None, seed: int = 0,
                 labeler: str = "simulator") -> None:
        if not 0.0 <= noise <= 1.0:
            raise ValueError(f"noise must be in [0, 1], got {noise}")
        self.truth, self.delay, self.noise = truth, delay, noise
        self.per_minute, self.labeler = per_minute, labeler
        self.rng = random.Random(seed)
        self._queue: list[_Due] = []
        self._sequence = 0
        self._classes: set[str] = set()
        self._answered_at: list[datetime] = []
        self.unanswerable = 0

    def offer(self, request: OracleRequest, now: datetime) -> bool:
        """Take a query; False when the truth is unknown (it will never be answered)."""
        truth = self.truth(request)
        if truth is None:
            self.unanswerable += 1
            return False
        self._classes.add(truth)
        self._sequence += 1
        heapq.heappush(self._queue, _Due(now + self.delay, self._sequence, request, truth))
        return True

    def due(self, now: datetime) -> list[OracleLabel]:
        """The labels whose time has come, within capacity."""
        answers = []
        while self._queue and self._queue[0].at <= now and self._has_capacity(now):
            item = heapq.heappop(self._queue)
            self._answered_at.append(now)
            answers.append(OracleLabel(query_id=item.request.query_id,
                                       label=self._noisy(item.truth), labeler=self.labeler,
                                       labeled_at=now))
        return answers

    def __len__(self) -> int:
        return len(self._queue)

    def _has_capacity(self, now: datetime) -> bool:
        if self.per_minute is None:
            return True
        minute_ago = now - timedelta(minutes=1)
        self._answered_at = [t for t in self._answered_at if t > minute_ago]
        return len(self._answered_at) < self.per_minute

    def _noisy(self, truth: str) -> str:
        others = sorted(self._classes - {truth})
        if others and self.rng.random() < self.noise:
            return self.rng.choice(others)
        return truth
