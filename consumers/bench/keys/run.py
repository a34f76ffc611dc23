"""Memory, checkpoint bytes and time per model key, measured, per template.

``learner.limits.max_model_keys`` bounds how many models a daemon keeps; this measures
what each costs so the bound can be chosen: for each template, ``keys`` products each
score ``records`` simulated devices and learn ``labels`` labels, then the learner's
checkpoint is taken. Memory is measured with tracemalloc (allocations that stay live),
so it counts models, gates, budget windows and novelty detectors, not the interpreter.
"""

from __future__ import annotations

import json
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from stream_al.gates import GateConfig
from stream_al.learner import Learner, LearnerConfig
from stream_al.models import ModelConfig, TemplateName
from stream_al.records import OracleLabel, ParametricRecord
from stream_al.simulate.floor import FloorConfig, FloorSimulator
from stream_al.state import Checkpoint, dumps

_T0 = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class KeyCost:
    template: str
    strategy: str
    keys: int
    records_per_key: int
    labels_per_key: int
    memory_bytes_per_key: float
    checkpoint_bytes_per_key: float
    decide_us: float
    learn_us: float


def measure(template: TemplateName, strategy: str, keys: int, records: int, labels: int
            ) -> KeyCost:
    """Run ``keys`` products through one learner; costs per key.

    Two passes over the same work: one under tracemalloc for memory, one without it for
    time (tracing slows every allocation several times over).
    """
    stream = _devices(records)
    config = LearnerConfig(model=ModelConfig(template=template),
                           gate=GateConfig.model_validate({"strategy": strategy}))
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    traced = _learn_keys(Learner(config), keys, stream, labels)[0]
    live = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    del traced
    learner, decide_s, learn_s = _learn_keys(Learner(config), keys, stream, labels)
    size = len(dumps(Checkpoint(learner, {}, _T0)))
    return KeyCost(template, strategy, keys, records, labels, live / keys, size / keys,
                   1e6 * decide_s / (keys * records), 1e6 * learn_s / max(1, keys * labels))


def _learn_keys(learner: Learner, keys: int, stream: Sequence[ParametricRecord],
                labels: int) -> tuple[Learner, float, float]:
    decide_s = learn_s = 0.0
    for key in range(keys):
        spent = _one_key(learner, f"P{key:05d}", stream, labels)
        decide_s, learn_s = decide_s + spent[0], learn_s + spent[1]
    return learner, decide_s, learn_s


def _devices(count: int) -> list[ParametricRecord]:
    simulated = FloorSimulator(FloorConfig(run_length=max(count, 100)), seed=3).stream(count)
    return [ParametricRecord.model_validate(s.record) for s in simulated]


def _one_key(learner: Learner, product: str, stream: Sequence[ParametricRecord],
             labels: int) -> tuple[float, float]:
    decide_s = learn_s = 0.0
    taught = 0
    for index, record in enumerate(stream):
        record = record.model_copy(update={"product": product,
                                           "record_id": f"{product}-{index}"})
        now = _T0 + timedelta(seconds=index)
        started = time.perf_counter()
        decision = learner.decide(record, now)
        decide_s += time.perf_counter() - started
        if taught < labels:
            query = decision.request
            if query is None:
                continue
            label = OracleLabel(query_id=query.query_id, label="fail" if index % 7 else "pass",
                                labeled_at=now)
            started = time.perf_counter()
            learner.apply(label)
            learn_s += time.perf_counter() - started
            taught += 1
    return decide_s, learn_s


def run_all(templates: Sequence[TemplateName], strategies: Sequence[str], keys: int,
            records: int, labels: int, out: Path,
            on_done: Callable[[KeyCost], None]) -> list[KeyCost]:
    results = []
    for template in templates:
        for strategy in strategies:
            cost = measure(template, strategy, keys, records, labels)
            results.append(cost)
            on_done(cost)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps([asdict(r) for r in results], indent=1) + "\n", encoding="utf-8")
    return results
