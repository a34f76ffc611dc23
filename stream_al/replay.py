"""Replay a labelled stream through the learner with a simulated oracle.

The simulated oracle answers each query from the true label after ``delay`` further
records, as an engineer would answer later. Every record is predicted before any label about
it is known (prequential, test-then-train), so accuracy is measured on the whole
stream, queried or not. This is the engine of ``stream-al bench labels``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from stream_al.evaluation import Confusion, LearningCurve
from stream_al.learner import Decision, Learner, LearnerConfig
from stream_al.oracle import SimulatedOracle
from stream_al.records import Record

#: A record and the class the oracle would answer for it.
Labelled = tuple[Record, str]

_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class ReplayResult:
    records: int = 0
    labels_used: int = 0
    hits: int = 0
    hits_last20: int = 0
    records_last20: int = 0
    seconds: float = 0.0
    confusion: Confusion = field(default_factory=Confusion)
    curve: LearningCurve = field(default_factory=lambda: LearningCurve(1, 1))

    @property
    def accuracy(self) -> float:
        return self.hits / self.records if self.records else 0.0

    @property
    def accuracy_last20(self) -> float:
        return self.hits_last20 / self.records_last20 if self.records_last20 else 0.0

    @property
    def balanced_accuracy(self) -> float:
        return self.confusion.balanced_accuracy

    @property
    def minority_recall(self) -> float | None:
        """Binary streams only (else None), as are ``escape_rate`` and ``overkill``."""
        return self.confusion.minority_recall

    @property
    def escape_rate(self) -> float | None:
        return self.confusion.escape_rate

    @property
    def overkill(self) -> float | None:
        return self.confusion.overkill

    @property
    def records_per_s(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0


def replay(stream: Iterable[Labelled], config: LearnerConfig, total: int, delay: int = 0,
           curve_points: int = 150, on_progress: Callable[[int], None] | None = None,
           observe: Callable[[int, Decision], None] | None = None,
           learner: Learner | None = None) -> ReplayResult:
    """Run the stream through a fresh learner; ``total`` sizes the last-20 % window.
    ``observe`` sees each record's index and the learner's decision about it;
    ``learner`` (fresh, made from ``config``) replaces the default ``Learner(config)``.

    >>> from stream_al.records import TransactionRecord
    >>> rows = [(TransactionRecord(record_id=str(i), ts=_EPOCH, numeric={"v": float(i % 2)},
    ...          categorical={}), "odd" if i % 2 else "even") for i in range(200)]
    >>> result = replay(rows, LearnerConfig(), total=200)
    >>> 0 < result.labels_used < 200 and result.records == 200
    True
    """
    learner = learner or Learner(config)
    truths: dict[str, str] = {}  # query id → the truth remembered at query time
    oracle = SimulatedOracle(lambda request: truths.pop(request.query_id),
                             delay_records=delay, labeler="replay")
    result = ReplayResult(curve=LearningCurve.for_run(total, curve_points))
    every = max(1, total // curve_points)
    started = time.perf_counter()
    for index, (record, truth) in enumerate(stream):
        now = record.ts if record.ts.tzinfo else _EPOCH + timedelta(seconds=index)
        for label in oracle.due(now, record_index=index):
            result.labels_used += learner.apply(label).outcome == "applied"
        decision = learner.decide(record, now)
        predicted = decision.prediction.predicted
        hit = predicted == truth
        _score(result, truth, predicted, last20=index >= total * 0.8)
        result.curve.update(hit, result.labels_used)
        if observe is not None:
            observe(index, decision)
        if decision.request is not None:
            truths[decision.request.query_id] = truth
            oracle.offer(decision.request, now, record_index=index)
        if on_progress and index % every == every - 1:
            on_progress(every)
    result.seconds = time.perf_counter() - started
    return result


def _score(result: ReplayResult, truth: str, predicted: str | None, last20: bool) -> None:
    hit = predicted == truth
    result.records += 1
    result.hits += hit
    result.confusion.update(truth, predicted)
    if last20:
        result.records_last20 += 1
        result.hits_last20 += hit

