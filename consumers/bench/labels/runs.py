"""``stream-al bench labels``: strategies × budgets × seeds on labelled streams.

Each run replays one dataset through a fresh learner with a simulated oracle. Rows
follow DESIGN §10; the all-labels reference has strategy ``all`` and budget 1.0. Beyond
those fields (unchanged), a row has ``minority_recall``, ``escape_rate`` and ``overkill``
(binary streams; None otherwise), ``labels_to_95`` / ``labels_to_98`` (see
``savings``) and ``prior_correction`` (the γ of ``--prior-correction``).
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from consumers.bench.labels.datasets import Dataset
from stream_al.budget import BudgetConfig
from stream_al.gates import GateConfig
from stream_al.learner import LearnerConfig
from stream_al.models import ModelConfig
from stream_al.replay import ReplayResult, replay

Row = dict[str, Any]


@dataclass(frozen=True)
class Run:
    dataset: Dataset
    strategy: str
    budget: float
    seed: int


def plan(datasets: Sequence[Dataset], strategies: Sequence[str], budgets: Sequence[float],
         seeds: int) -> list[Run]:
    """Every strategy at every budget, plus ``random`` at each budget and one ``all``."""
    wanted = list(dict.fromkeys([*strategies, "random"]))
    runs = []
    for dataset in datasets:
        for seed in range(seeds):
            runs.append(Run(dataset, "all", 1.0, seed))
            runs += [Run(dataset, s, b, seed) for b in budgets for s in wanted]
    return runs


def learner_config(run: Run, model: str, base: LearnerConfig) -> LearnerConfig:
    if run.strategy == "all":
        # Every record queried: a fixed gate at 0 with the whole budget.
        budget = BudgetConfig(fraction=1.0, audit_fraction=0.0)
        gate = GateConfig(strategy="fixed", threshold=0.0)
    else:
        # No audit share here: the benchmark compares what each strategy does with B.
        budget = base.budget.model_copy(update={"fraction": run.budget, "audit_fraction": 0.0})
        gate = base.gate.model_copy(update={"strategy": run.strategy})
    return base.model_copy(update={"budget": budget, "gate": gate, "seed": run.seed,
                                   "model": ModelConfig.model_validate({"template": model})})


def execute(run: Run, model: str, delay: int, base: LearnerConfig,
            on_progress: Callable[[int], None] | None = None) -> tuple[Row, ReplayResult]:
    result = replay(run.dataset.open(), learner_config(run, model, base), run.dataset.size,
                    delay=delay, on_progress=on_progress)
    row = {
        "dataset": run.dataset.name, "model": model, "strategy": run.strategy,
        "budget": run.budget, "seed": run.seed, "accuracy": result.accuracy,
        "accuracy_last20": result.accuracy_last20,
        "balanced_accuracy": result.balanced_accuracy, "labels_used": result.labels_used,
        "records": result.records, "records_per_s": result.records_per_s,
        "minority_recall": result.minority_recall, "escape_rate": result.escape_rate,
        "overkill": result.overkill,
    }
    return row, result


_MEANS = ("accuracy", "accuracy_last20", "balanced_accuracy", "labels_used", "records_per_s")
#: Scores only binary streams have (None elsewhere): averaged over the seeds that have them.
BINARY_SCORES = ("minority_recall", "escape_rate", "overkill")


def summarise(rows: Iterable[Row]) -> list[Row]:
    """Mean over seeds per (dataset, strategy, budget), with the share of the
    all-labels accuracy each reaches."""
    groups: dict[tuple[str, str, float], list[Row]] = defaultdict(list)
    for row in rows:
        groups[(row["dataset"], row["strategy"], row["budget"])].append(row)
    reference = {d: statistics.fmean(r["accuracy"] for r in g)
                 for (d, s, _), g in groups.items() if s == "all"}
    summary = []
    for (dataset, strategy, budget), group in sorted(groups.items(),
                                                     key=lambda kv: (kv[0][0], -kv[0][2])):
        mean: dict[str, float | None] = {k: statistics.fmean(r[k] for r in group)
                                         for k in _MEANS}
        mean |= {k: mean_of(r.get(k) for r in group) for k in BINARY_SCORES}
        accuracy = statistics.fmean(r["accuracy"] for r in group)
        share = accuracy / reference[dataset] if reference.get(dataset) else None
        summary.append({"dataset": dataset, "strategy": strategy, "budget": budget,
                        "seeds": len(group), **mean, "of_all_labels": share})
    return summary


def mean_of(values: Iterable[float | None]) -> float | None:
    """The mean of the values that are not None, or None if there are none."""
    present = [v for v in values if v is not None]
    return statistics.fmean(present) if present else None


def baselines(dataset: Dataset) -> dict[str, float]:
    """Accuracy of label-free rules a learner must beat: the majority class, and
    no-change (predict the previous record's label; strong on autocorrelated streams
    such as Elec2)."""
    truths = [truth for _, truth in dataset.open()]
    if not truths:
        return {"majority": 0.0, "no_change": 0.0}
    majority = max(truths.count(label) for label in set(truths)) / len(truths)
    same = sum(a == b for a, b in zip(truths, truths[1:], strict=False))
    return {"majority": majority, "no_change": same / max(1, len(truths) - 1)}


def write_rows(path: Path, rows: Sequence[Row]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(list(rows), indent=1) + "\n", encoding="utf-8")
