"""A test floor in trouble, as its metrics show it: every metric moves, every alert holds.

Each scrape of the exporter is one step of the floor's clock (a collector registered
after the metrics advances the floor when it is collected), so what Prometheus stores
depends on how many scrapes it made, never on how fast this machine runs. One step:
two products are scored and queried, labels come back minutes late, one record in
twenty-five is undecodable, the oracle falls behind, PMIC-A7 spends 130% of its budget
and its audit accuracy falls, the consumer lags and the last checkpoint is an hour old.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Iterable

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from stream_al.evaluation import Window
from stream_al.metrics import Metrics

MODELS = ("PMIC-A7", "PMIC-B2")


class TroubledFloor:
    def __init__(self, metrics: Metrics, seed: int = 7) -> None:
        self.metrics = metrics
        self.rng = random.Random(seed)
        self.step = 0
        self.labels_learnt = dict.fromkeys(MODELS, 0)
        self._lock = threading.Lock()  # scrapes run on the HTTP server's threads

    def tick(self) -> None:
        with self._lock:
            self._records()
            self._labels()
            self._state()
            self.step += 1

    def _records(self) -> None:
        metrics, rng = self.metrics, self.rng
        for model in MODELS:
            for outcome, count in (("predicted", 8), ("queried", 2)):
                for _ in range(count):
                    metrics.observe_record("parametric", outcome)
                    metrics.observe_uncertainty(rng.betavariate(2, 5))
                    metrics.observe_processing(rng.lognormvariate(math.log(5e-5), 0.5))
            metrics.observe_query(model, "uncertainty")
            if self.step % 3 == 0:
                metrics.observe_query(model, "audit")
        for _ in range(3):
            metrics.observe_record("transaction", "predicted")
        metrics.observe_record("unknown", "dead_letter")
        metrics.observe_dead_letter("record_invalid")

    def _labels(self) -> None:
        metrics = self.metrics
        for model in MODELS:
            metrics.observe_label("applied", self.rng.uniform(30.0, 2400.0))
            self.labels_learnt[model] += 1
        if self.step % 2 == 0:
            metrics.observe_label("unknown_query", None)
            metrics.observe_dead_letter("label_unknown_query")

    def _state(self) -> None:
        metrics = self.metrics
        falling = max(0.5, 0.97 - 0.05 * self.step)
        states: dict[str, tuple[float, dict[Window, float | None]]] = {
            "PMIC-A7": (0.13, {"audit": falling, "queried": 0.71, "inline": 0.9}),
            "PMIC-B2": (0.08, {"audit": 0.93, "queried": 0.78, "inline": None})}
        for model, (queried_fraction, accuracies) in states.items():
            metrics.set_model_state(model, threshold=0.6 + self.rng.uniform(-0.05, 0.05),
                                    queried_fraction=queried_fraction, budget_fraction=0.1,
                                    accuracies=accuracies, labels=self.labels_learnt[model])
        metrics.set_pending_queries(20 + 3 * self.step)
        for partition in range(3):
            metrics.set_consumer_lag("ate.parametric", partition, 4000 + 50 * self.step)
        metrics.mark_checkpoint(time.time() - 3600)


class _TickOnScrape(Collector):
    """A collector with no metrics of its own: collecting it advances the floor."""

    def __init__(self, floor: TroubledFloor) -> None:
        self.floor = floor

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterable[Metric]:
        self.floor.tick()
        return []


def troubled_registry() -> CollectorRegistry:
    """A registry whose every scrape shows the next step of a TroubledFloor."""
    registry = CollectorRegistry()
    floor = TroubledFloor(Metrics(registry))
    floor.tick()  # every series exists before the first scrape
    registry.register(_TickOnScrape(floor))
    return registry
