"""A simulated oracle: answers queries from known truth after a delay, at a limited
capacity, with optional label noise. Pure (the caller passes the time and, for a delay
counted in records, the position in the stream), so the demo, the replays of
``stream-al bench labels`` and ``stream-al oracle simulate`` share one oracle.
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
    after_record: int
    sequence: int
    request: OracleRequest = field(compare=False)
    truth: str = field(compare=False)


class SimulatedOracle:
    """Answers each offered query ``delay`` after it was offered, or ``delay_records``
    records later in the stream (as an engineer answers while the floor goes on), never
    more than ``per_minute`` answers a minute (a team of engineers has a capacity).

    >>> from datetime import UTC
    >>> oracle = SimulatedOracle(lambda r: "pass", delay=timedelta(seconds=5))
    >>> t0 = datetime(2026, 1, 1, tzinfo=UTC)
    >>> oracle.due(t0)
    []
    >>> by_records = SimulatedOracle(lambda r: "pass", delay_records=50)
    >>> by_records.due(t0, record_index=49), len(by_records)
    ([], 0)
    """

    def __init__(self, truth: TruthLookup, delay: timedelta = timedelta(0),
                 noise: float = 0.0, per_minute: float | None = None, seed: int = 0,
                 labeler: str = "simulator", delay_records: int = 0) -> None:
        if not 0.0 <= noise <= 1.0:
            raise ValueError(f"noise must be in [0, 1], got {noise}")
        if delay_records < 0:
            raise ValueError(f"delay_records must be ≥ 0, got {delay_records}")
        self.truth, self.delay, self.noise = truth, delay, noise
        self.delay_records = delay_records
        self.per_minute, self.labeler = per_minute, labeler
        self.rng = random.Random(seed)
        self._queue: list[_Due] = []
        self._sequence = 0
        self._classes: set[str] = set()
        self._answered_at: list[datetime] = []
        self.unanswerable = 0

    def offer(self, request: OracleRequest, now: datetime, record_index: int = 0) -> bool:
        """Take a query (asked at ``now``, at record ``record_index`` of the stream);
        False when the truth is unknown (it will never be answered)."""
        truth = self.truth(request)
        if truth is None:
            self.unanswerable += 1
            return False
        self._classes.add(truth)
        self._sequence += 1
        heapq.heappush(self._queue, _Due(now + self.delay, record_index + self.delay_records,
                                         self._sequence, request, truth))
        return True

    def due(self, now: datetime, record_index: int = 0) -> list[OracleLabel]:
        """The labels whose time (and record) has come, within capacity."""
        answers = []
        while self._queue and self._is_due(self._queue[0], now, record_index) \
                and self._has_capacity(now):
            item = heapq.heappop(self._queue)
            self._answered_at.append(now)
            answers.append(OracleLabel(query_id=item.request.query_id,
                                       label=self._noisy(item.truth), labeler=self.labeler,
                                       labeled_at=now))
        return answers

    def _is_due(self, item: _Due, now: datetime, record_index: int) -> bool:
        return item.at <= now and item.after_record <= record_index

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
