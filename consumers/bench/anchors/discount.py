"""River's ``EntropySampler`` has no budget: a discount factor d makes it ask with
probability (normalised entropy)^d. To compare it at budget B, d is bisected on seed 0
until the run asks for ⌈B·n⌉ labels (the cold start included), and that d is used for
every seed.

The label count falls with d over many orders of magnitude (a logistic regression that
has seen few labels says p ≈ 0.5 everywhere, entropy ≈ 1, so only a very large d stops
it asking), so the search halves log2 d over [-8, 32]. The sampler draws at random, so
the count is noisy: the search stops within 1 % of the target (at least ±1 label) or
after ``_MAX_RUNS`` runs, keeping the closest run. A sampler that asks for more than the
target even at d = 2^32 (entropy exactly 1 on an untrained model) is reported as it is.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from consumers.bench.anchors.arms import EntropyArm
from consumers.bench.anchors.harness import ArmResult, run_arm
from consumers.bench.anchors.streams import Config, Stream

_LOG2_RANGE: Final = (-8.0, 32.0)
_MAX_RUNS: Final = 12


@dataclass(frozen=True)
class Bisected:
    discount_factor: float
    result: ArmResult  # the seed-0 run at that factor, reused as the seed-0 row
    runs: int


def target_labels(budget: float, records: int) -> int:
    """⌈B·n⌉, the labels a budget B allows over n records."""
    return math.ceil(budget * records - 1e-9)


def bisect_discount(stream: Stream, config: Config, budget: float, delay: int,
                    run: Callable[[float], ArmResult] | None = None,
                    hard_budget: bool = True) -> Bisected:
    """The discount factor whose seed-0 run spends closest to ⌈B·n⌉ labels."""
    spend = run or (lambda d: run_arm(stream, EntropyArm(config, 0, d), budget, delay,
                                      hard_budget))
    target = target_labels(budget, stream.size)
    tolerance = max(1, round(0.01 * target))
    tried: dict[float, ArmResult] = {}
    low, high = _LOG2_RANGE
    while len(tried) < _MAX_RUNS:
        middle = (low + high) / 2
        labels = tried.setdefault(2.0 ** middle, spend(2.0 ** middle)).labels_used
        if abs(labels - target) <= tolerance:
            break
        if labels > target:
            low = middle  # too many labels: discount harder
        else:
            high = middle
    best = min(tried, key=lambda d: (abs(tried[d].labels_used - target), d))
    return Bisected(best, tried[best], len(tried))
