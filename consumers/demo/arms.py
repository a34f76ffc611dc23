"""The demo's arms: the active strategy, a random baseline paced to its label count, and
a learner given every label, run side by side on the same devices.

Each arm is a whole daemon pipeline on its own in-memory bus with its own simulated
oracle (same truth, same delay, same seed), fed the same devices in the same steps, so
the three see the same records in the same order and their labels come back alike.

The random arm is *paced*: it picks its devices uniformly at random, ignoring the
model, but only while it has asked fewer queries than the active arm had after the same
device, and the further behind it is the likelier it asks (chance B × deficit per
device its budget affords). So its own choices never take it ahead of the active arm,
it catches up within about 1/B devices of a burst, and both end with the same label
count. Its warm-up and audit draws (random too, and the same for both arms) are the only
way it can lead, and only by a few labels early on (``Pace.most_ahead`` says how many).
A plain random gate at rate B instead spends its own ~B·n, which at the same budget is
not the same count (a replayed one came ~4 % short of the active arm).
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime

from stream_al.bus import InMemoryConsumer
from stream_al.codec import decode_prediction
from stream_al.evaluation import Confusion, LearningCurve
from stream_al.inmemory import InMemoryLoop
from stream_al.learner import Decision, Learner, LearnerConfig, Prepared
from stream_al.metrics import Metrics
from stream_al.models import stable_seed
from stream_al.oracle import SimulatedOracle
from stream_al.pipeline import Pipeline
from stream_al.reasons import Reason
from stream_al.records import Record
from stream_al.topics import TopicNames


@dataclass
class Pace:
    """The active arm's query count after each device, and the paced arm's own."""

    #: record_id → the active arm's queries up to and including that device.
    active_after: dict[str, int] = field(default_factory=dict)
    target: int = 0
    asked: int = 0
    #: The most queries the paced arm ever had above its target (warm-up, audits).
    most_ahead: int = 0


class PacedRandomGate:
    """Asks about a device by chance alone, only while behind the active arm."""

    name: str = "random"

    def __init__(self, pace: Pace, rate: float, seed: int) -> None:
        self.pace, self.rate = pace, rate
        self._rng = random.Random(seed)

    @property
    def threshold(self) -> float:
        return 0.0

    def decide(self, uncertainty: float, novelty: float | None = None) -> Reason | None:
        behind = self.pace.target - self.pace.asked
        if behind <= 0:
            return None
        # The chance grows with the deficit so a burst of active queries is matched soon,
        # yet not by the very next device (a neighbour on the wafer of the one it chose).
        return "uncertainty" if self._rng.random() < min(1.0, self.rate * behind) else None


class PacedRandomLearner(Learner):
    """A learner whose gate is :class:`PacedRandomGate`; everything else as configured."""

    def __init__(self, config: LearnerConfig, pace: Pace) -> None:
        super().__init__(config)
        self.pace = pace

    def decide(self, record: Record, now: datetime, ready: Prepared | None = None
               ) -> Decision:
        self.pace.target = self.pace.active_after.pop(record.record_id, self.pace.target)
        decision = super().decide(record, now, ready)
        policy = self.policies[decision.model_key]
        if not isinstance(policy.gate, PacedRandomGate):
            # A model's first device is always in warm-up, so its configured gate is
            # replaced before it is ever asked.
            policy.gate = PacedRandomGate(self.pace, self.config.budget.fraction,
                                          stable_seed(self.config.seed, "paced",
                                                      decision.model_key))
        if decision.request is not None:
            self.pace.asked += 1
            self.pace.most_ahead = max(self.pace.most_ahead, self.pace.asked - self.pace.target)
        return decision


class RecentScores:
    """Per-class recall over the last ``window`` devices: balanced accuracy and the
    escape rate as the floor sees them now, not averaged since the start."""

    def __init__(self, window: int) -> None:
        self._recent: deque[tuple[str, bool]] = deque(maxlen=max(1, window))
        self._counts: dict[str, list[int]] = {}  # truth → [devices, hits]

    def update(self, truth: str, hit: bool) -> None:
        if len(self._recent) == self._recent.maxlen:
            old_truth, old_hit = self._recent[0]
            counts = self._counts[old_truth]
            counts[0] -= 1
            counts[1] -= old_hit
        self._recent.append((truth, hit))
        counts = self._counts.setdefault(truth, [0, 0])
        counts[0] += 1
        counts[1] += hit

    def recalls(self) -> dict[str, float]:
        return {label: hits / seen for label, (seen, hits) in self._counts.items() if seen}

    @property
    def balanced_accuracy(self) -> float:
        recalls = self.recalls()
        return sum(recalls.values()) / len(recalls) if recalls else 0.0


@dataclass(frozen=True)
class FloorPoint:
    """One sample of an arm along the run."""

    devices: int
    labels: int
    recent_balanced: float
    recent_recalls: dict[str, float]
    balanced: float  # prequential, since the first device


@dataclass
class ArmScores:
    """Everything the table and the plot read about one arm."""

    curve: LearningCurve
    recent: RecentScores
    every: int
    confusion: Confusion = field(default_factory=Confusion)
    points: list[FloorPoint] = field(default_factory=list)
    labels: int = 0
    queries: int = 0

    @classmethod
    def for_run(cls, total: int) -> ArmScores:
        # As LearningCurve.for_run: 150 samples, recent = the last 5 % (at least 200).
        every, window = max(1, total // 150), max(200, total // 20)
        return cls(LearningCurve(every, window), RecentScores(window), every)

    def update(self, truth: str, predicted: str | None, queried: bool) -> None:
        hit = predicted == truth
        self.queries += queried
        self.confusion.update(truth, predicted)
        self.recent.update(truth, hit)
        self.curve.update(hit, self.labels)
        if self.confusion.records % self.every == 0:
            self.points.append(FloorPoint(self.confusion.records, self.labels,
                                          self.recent.balanced_accuracy, self.recent.recalls(),
                                          self.confusion.balanced_accuracy))

    def balanced_by_labels(self) -> list[tuple[int, float]]:
        """(labels used, prequential balanced accuracy), as ``curve.prequential()``."""
        return [(p.labels, p.balanced) for p in self.points]


@dataclass
class Arm:
    """One pipeline of the demo, its bus, its oracle and its scores."""

    name: str
    loop: InMemoryLoop
    predictions: InMemoryConsumer
    scores: ArmScores

    @classmethod
    def start(cls, name: str, learner: Learner, oracle: SimulatedOracle, total: int,
              metrics: Metrics | None = None) -> Arm:
        pipeline = Pipeline(learner, TopicNames(), metrics)
        loop = InMemoryLoop(pipeline, oracle)
        predictions = InMemoryConsumer(loop.bus, [pipeline.topics.predictions])
        return cls(name, loop, predictions, ArmScores.for_run(total))

    @property
    def pipeline(self) -> Pipeline:
        return self.loop.pipeline

    @property
    def learner(self) -> Learner:
        return self.loop.pipeline.learner

    def step(self, records: list[tuple[str, bytes]], now: datetime, chunk: int) -> None:
        """Publish a step's devices and run the loop until they are all decided."""
        topic = self.pipeline.topics.inputs[0]
        for record_id, value in records:
            self.loop.publish(topic, record_id.encode(), value)
        while self.loop.step(now, max_records=chunk):
            pass

    def score(self, truth: dict[str, str], pace: Pace | None = None) -> None:
        """Score the predictions made since the last call; with ``pace``, note the
        query count after each device for the paced arm."""
        registry = self.learner.registry
        self.scores.labels = sum(registry.get(key).version for key in registry.keys())
        for message in self.predictions.poll(1_000_000):
            prediction = decode_prediction(message.value or b"")
            self.scores.update(truth[prediction.record_id], prediction.predicted,
                               prediction.queried)
            if pace is not None:
                pace.active_after[prediction.record_id] = self.scores.queries

    def queries_by_reason(self) -> dict[str, int]:
        asked: dict[str, int] = {}
        for policy in self.learner.policies.values():
            for reason, count in policy.queries.items():
                asked[reason] = asked.get(reason, 0) + count
        return asked

