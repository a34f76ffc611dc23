"""Plan and execute ``bench anchors``: configurations × budgets × seeds × oracle delays.

The work is cut into units a process can run alone: one all-labels unit per
configuration and delay (its seeds' accuracies are the references for annotation
savings), then one unit per configuration, delay and budget holding every budgeted arm
on every seed (the EntropySampler's bisection needs its own seed-0 runs first).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from consumers.bench.anchors import skal
from consumers.bench.anchors.arms import STREAM_AL, AllLabels, EntropyArm, RandomArm, StreamAlArm
from consumers.bench.anchors.discount import bisect_discount
from consumers.bench.anchors.harness import Arm, ArmResult, run_arm
from consumers.bench.anchors.streams import Config, Stream, load
from consumers.bench.labels.savings import TARGETS, reach_key
from stream_al.evaluation import labels_to_reach

Row = dict[str, Any]
#: The arms other libraries provide (and random sampling), in table order.
ANCHORS: Final = ("random", "river-entropy", *skal.STRATEGIES)
STREAM_AL_ARMS: Final = tuple(f"stream-al:{s}" for s in STREAM_AL)
#: (dataset, model, delay, seed) → the all-labels accuracy on that stream.
References = Mapping[tuple[str, str, int, int], float]


@dataclass(frozen=True)
class Unit:
    config: Config
    delay: int
    budget: float | None  # None: the all-labels reference
    seeds: tuple[int, ...]
    arms: tuple[str, ...]
    cap: int | None = None  # the first records of each stream only
    hard_budget: bool = True  # every arm held to ⌈B·t⌉ + 1 (else each to its own manager)

    def records(self, sizes: Mapping[str, int]) -> int:
        """Records this unit replays, about (a bisection takes a few runs more)."""
        runs = len(self.seeds) * max(1, len(self.arms))
        return sizes[self.config.dataset] * runs


def arm_names(with_skactiveml: bool) -> tuple[str, ...]:
    anchors = [a for a in ANCHORS if with_skactiveml or a not in skal.STRATEGIES]
    return (*anchors, *STREAM_AL_ARMS)


def plan(configs: Sequence[Config], budgets: Sequence[float], seeds: Sequence[int],
         delays: Sequence[int], arms: Sequence[str], cap: int | None = None,
         hard_budget: bool = True) -> tuple[list[Unit], list[Unit]]:
    """The all-labels units, then the budgeted ones."""
    references = [Unit(c, d, None, tuple(seeds), (), cap) for c in configs for d in delays]
    budgeted = [Unit(c, d, b, tuple(seeds), tuple(arms), cap, hard_budget)
                for c in configs for d in delays for b in budgets]
    return references, budgeted


def execute(unit: Unit, references: References) -> list[Row]:
    """Every run of one unit, as rows; ``references`` is empty for an all-labels unit."""
    stream = load(unit.config.dataset, unit.cap, unit.config.source)
    if unit.budget is None:
        return [_row(unit, "all", 1.0, seed, run_arm(stream, AllLabels(unit.config, seed),
                                                      1.0, unit.delay), None)
                for seed in unit.seeds]
    budget = unit.budget
    rows: list[Row] = []
    discount: float | None = None
    first: ArmResult | None = None
    if "river-entropy" in unit.arms:
        found = bisect_discount(stream, unit.config, budget, unit.delay,
                                hard_budget=unit.hard_budget)
        discount, first = found.discount_factor, found.result
    for seed in unit.seeds:
        reference = references.get((unit.config.dataset, unit.config.model, unit.delay, seed))
        for name in unit.arms:
            if name == "river-entropy" and seed == 0 and first is not None:
                result = first  # the bisection's own run at the chosen factor
            else:
                arm = make_arm(name, unit.config, seed, budget, stream, discount)
                result = run_arm(stream, arm, budget, unit.delay, unit.hard_budget)
            row = _row(unit, name, budget, seed, result, reference)
            if name == "river-entropy":
                row["discount_factor"] = discount
            rows.append(row)
    return rows


def make_arm(name: str, config: Config, seed: int, budget: float, stream: Stream,
             discount: float | None = None) -> Arm:
    if name == "random":
        return RandomArm(config, seed, budget)
    if name == "river-entropy":
        assert discount is not None, "the EntropySampler needs its bisected discount factor"
        return EntropyArm(config, seed, discount)
    if name in skal.STRATEGIES:
        return skal.SkactivemlArm(config, seed, budget, name, tuple(stream.items[0].x))
    if name in STREAM_AL_ARMS:
        return StreamAlArm(config, seed, budget, name.removeprefix("stream-al:"))
    raise ValueError(f"unknown arm {name!r}")


def references_of(rows: Sequence[Row]) -> dict[tuple[str, str, int, int], float]:
    return {(r["dataset"], r["model"], r["delay"], r["seed"]): r["accuracy"] for r in rows
            if r["strategy"] == "all"}


def _row(unit: Unit, strategy: str, budget: float, seed: int, result: ArmResult,
         reference: float | None) -> Row:
    scores = result.confusion
    reference = scores.accuracy if strategy == "all" else reference
    curve = result.curve.prequential()
    row: Row = {
        "dataset": unit.config.dataset, "model": unit.config.model, "strategy": strategy,
        "budget": budget, "seed": seed, "accuracy": scores.accuracy,
        "accuracy_last20": result.accuracy_last20,
        "balanced_accuracy": scores.balanced_accuracy, "labels_used": result.labels_used,
        "records": result.records,
        "records_per_s": result.records / result.seconds if result.seconds else 0.0,
        "minority_recall": scores.minority_recall, "escape_rate": scores.escape_rate,
        "overkill": scores.overkill, "labels_max_over_bound": result.labels_max_over_bound,
        "delay": unit.delay, "hard_budget": unit.hard_budget,
    }
    for target in TARGETS:
        row[reach_key(target)] = (labels_to_reach(curve, target * reference)
                                  if reference else None)
    return row
