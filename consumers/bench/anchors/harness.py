"""One arm over one stream, prequentially, with the one oracle and cold-start rule.

For every record, in stream order: the labels the oracle has answered by now are learnt,
then the arm predicts the record (before any label about it: test, then train) and says
whether it wants the label. Every arm, whatever its library, meets the same
``stream_al.oracle.SimulatedOracle`` (the true label, ``delay`` records later; 0 means
before the next record) and the same cold-start rule: while the records asked for do
not yet hold two classes, the record is asked for whatever the arm says, and the arm is
charged for it as for its own query (counted against its budget).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol

from consumers.bench.anchors.streams import Item, Stream
from stream_al.evaluation import BoundTracker, Confusion, LearningCurve
from stream_al.oracle import SimulatedOracle
from stream_al.records import OracleLabel, OracleRequest

#: Points on each run's learning curve (fewer on a shorter stream: one per record).
CURVE_POINTS = 1000


class Arm(Protocol):
    """A query strategy and its model, seen from the harness."""

    def step(self, index: int, item: Item) -> tuple[str | None, bool]:
        """Predict the record and say whether this arm would ask for its label."""
        ...

    def commit(self, index: int, item: Item, asked: bool) -> OracleRequest | None:
        """The harness's decision for the record the arm has just seen: the arm updates
        its budget with it (``asked`` may be a cold-start query the arm did not choose)
        and, when asked, names the request the oracle will answer (else None)."""
        ...

    def learn(self, label: OracleLabel, item: Item) -> None:
        """Learn the oracle's answer about an earlier record."""
        ...


@dataclass
class ArmResult:
    records: int = 0
    labels_used: int = 0
    hits_last20: int = 0
    records_last20: int = 0
    seconds: float = 0.0
    labels_max_over_bound: int | None = None
    confusion: Confusion = field(default_factory=Confusion)
    curve: LearningCurve = field(default_factory=lambda: LearningCurve(1, 1))

    @property
    def accuracy_last20(self) -> float:
        return self.hits_last20 / self.records_last20 if self.records_last20 else 0.0


def request_for(item: Item, arm: str, predicted: str | None) -> OracleRequest:
    """A minimal oracle request for an arm that is not stream-al's learner. Built without
    validation (``model_construct``): the fields are known good, and validating a
    request per record would cost the all-labels arm more than its model does."""
    record, now = item.record, item.record.ts
    return OracleRequest.model_construct(
        query_id=f"{arm}/{record.record_id}", record_id=record.record_id, kind=record.kind,
        model_key=arm, reason="uncertainty", uncertainty=1.0, threshold=0.0, proba={},
        predicted=predicted, model_version=0, created_at=now,
        expires_at=now + timedelta(days=365), record=record)


def run_arm(stream: Stream, arm: Arm, budget: float, delay: int,
            hard_budget: bool = True) -> ArmResult:
    """Replay ``stream`` through ``arm``.

    With ``hard_budget`` every arm is held to one budget, MOA's: a query that would take
    the labels past ⌈B·t⌉ + 1 after t records is refused, whatever the arm's own budget
    manager allows, so every arm is compared on (at most) the same labels. Without it,
    ``budget`` only sizes the bound reported, and each arm spends what its own manager
    lets it.
    """
    truths: dict[str, int] = {}  # query id → index of the record asked about
    oracle = SimulatedOracle(lambda request: stream.items[truths[request.query_id]].truth,
                             delay_records=delay, labeler="anchors")
    result = ArmResult(curve=LearningCurve(every=max(1, stream.size // CURVE_POINTS),
                                           window=max(200, stream.size // 20)))
    bound, cold = BoundTracker(budget), ColdStart()
    last20 = math.floor(stream.size * 0.8)
    started = time.perf_counter()
    for index, item in enumerate(stream.items):
        now = item.record.ts
        for label in oracle.due(now, record_index=index):
            arm.learn(label, stream.items[truths.pop(label.query_id)])
        predicted, wanted = arm.step(index, item)
        asked = (wanted or cold.active) and (
            not hard_budget or result.labels_used < math.ceil(budget * (index + 1)) + 1)
        request = arm.commit(index, item, asked)
        assert (request is not None) == asked, "an arm names a request exactly when asked"
        if request is not None:
            truths[request.query_id] = index
            oracle.offer(request, now, record_index=index)
            cold.asked(item.truth)
            result.labels_used += 1
        _score(result, item.truth, predicted, index >= last20)
        bound.update(result.labels_used)
    result.seconds = time.perf_counter() - started
    result.labels_max_over_bound = bound.max_over
    return result


class ColdStart:
    """Active until the records asked for hold two classes (every arm, one rule)."""

    def __init__(self) -> None:
        self._classes: set[str] = set()

    @property
    def active(self) -> bool:
        return len(self._classes) < 2

    def asked(self, truth: str) -> None:
        if self.active:
            self._classes.add(truth)


def _score(result: ArmResult, truth: str, predicted: str | None, last20: bool) -> None:
    hit = predicted == truth
    result.records += 1
    result.confusion.update(truth, predicted)
    result.curve.update(hit, result.labels_used)
    if last20:
        result.records_last20 += 1
        result.hits_last20 += hit
