"""Annotation savings: how many fewer labels than random sampling a strategy needs to
reach 95 % and 98 % of the all-labels accuracy on the same stream.

Each run's learning curve (cumulative prequential accuracy against labels used) says
when it reached a target for good (``stream_al.evaluation.labels_to_reach``); the target
is a share of the accuracy of the all-labels run with the same seed. A strategy "needs"
the fewest labels any of its budgets reached it with, and saves 1 − needed/random's.
``bench labels`` and ``bench anchors`` both read their rows this way.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from stream_al.evaluation import annotation_savings, labels_to_reach

Row = dict[str, Any]
#: Shares of the all-labels accuracy a strategy is asked to reach.
TARGETS = (0.95, 0.98)
Curve = Sequence[tuple[int, float]]


def reach_key(target: float) -> str:
    """The row field holding the labels a run needed for ``target``: ``labels_to_95``."""
    return f"labels_to_{round(100 * target)}"


def attach_reach(rows: Sequence[Row], curves: Sequence[Curve], keys: Sequence[str]) -> None:
    """Add ``labels_to_95`` and ``labels_to_98`` to every row, against the all-labels
    row of the same ``keys`` (e.g. dataset) and seed; None where it never got there."""
    reference = {(_group(row, keys), row["seed"]): row["accuracy"] for row in rows
                 if row["strategy"] == "all"}
    for row, curve in zip(rows, curves, strict=True):
        accuracy = reference.get((_group(row, keys), row["seed"]))
        for target in TARGETS:
            row[reach_key(target)] = (labels_to_reach(curve, target * accuracy)
                                      if accuracy else None)


def savings(rows: Sequence[Row], keys: Sequence[str], baseline: str = "random") -> list[Row]:
    """Per group of ``keys``, strategy and target: the mean savings over the seeds where
    both the strategy and ``baseline`` reached the target, and on how many seeds."""
    reached: dict[tuple[Any, ...], dict[int, list[int]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        if row["strategy"] == "all":
            continue
        for target in TARGETS:
            labels = row.get(reach_key(target))
            runs = reached[(_group(row, keys), row["strategy"], target)][row["seed"]]
            runs.extend([] if labels is None else [labels])
    # The fewest labels any budget reached the target with, per seed (None: none did).
    needed = {key: {seed: min(values, default=None) for seed, values in seeds.items()}
              for key, seeds in reached.items()}
    table = []
    for (group, strategy, target), by_seed in sorted(needed.items(), key=_order):
        if strategy == baseline:
            continue
        random = needed.get((group, baseline, target), {})
        values = [v for seed, labels in by_seed.items()
                  if (v := annotation_savings(labels, random.get(seed))) is not None]
        table.append({**dict(zip(keys, group, strict=True)), "strategy": strategy,
                      "target": target, "seeds": len(by_seed), "reached": len(values),
                      "savings": statistics.fmean(values) if values else None})
    return table


def _group(row: Row, keys: Sequence[str]) -> tuple[Any, ...]:
    return tuple(row[k] for k in keys)


def _order(item: tuple[tuple[Any, ...], Any]) -> tuple[str, ...]:
    return tuple(str(part) for part in item[0])
