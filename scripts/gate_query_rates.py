"""Realised query rates of every gate strategy behind the budget, on a synthetic score stream.

Not a test: a measurement for the report. Each record draws an uncertainty u and a
novelty score; halfway through, the model grows confident (u shifts down), which is
where a fixed threshold loses the budget and an adaptive one keeps it. The loop is the
learner's: an audit draw (probability A) first, then the budget, then the gate.

    .venv/bin/python scripts/gate_query_rates.py [--records 40000] [--seed 0]
"""

from __future__ import annotations

import argparse
import random
from collections import Counter
from dataclasses import dataclass

from stream_al.budget import BudgetConfig, BudgetManager
from stream_al.gates import GateConfig, Strategy, make_gate
from stream_al.reasons import Reason

STRATEGIES: tuple[Strategy, ...] = ("random", "fixed", "variable", "randomized", "hybrid")
BUDGETS = (0.05, 0.1, 0.2)


@dataclass(frozen=True)
class Scores:
    u: float
    novelty: float


def synthetic_stream(n: int, seed: int) -> list[Scores]:
    """Uncertain first half (u ~ Beta(2, 5)), confident second half (u ~ Beta(1, 8))."""
    rng = random.Random(seed)
    stream = []
    for i in range(n):
        u = rng.betavariate(2, 5) if i < n // 2 else rng.betavariate(1, 8)
        novelty = rng.betavariate(8, 2) if rng.random() < 0.01 else rng.betavariate(2, 8)
        stream.append(Scores(u, novelty))
    return stream


@dataclass(frozen=True)
class Outcome:
    rate: float
    rate_first_half: float
    rate_second_half: float
    reasons: Counter[Reason]
    lift: float
    threshold: float


def run(strategy: Strategy, fraction: float, stream: list[Scores], seed: int) -> Outcome:
    budget = BudgetManager(BudgetConfig(fraction=fraction))
    gate = make_gate(GateConfig(strategy=strategy), seed, budget_fraction=fraction)
    rng, taken = random.Random(seed + 1), []
    for t, scores in enumerate(stream):
        reason: Reason | None = None
        if rng.random() < budget.config.audit_fraction:
            reason = "audit" if budget.may_query("k", "audit", float(t), 0) else None
        elif budget.may_query("k", "uncertainty", float(t), 0):
            reason = gate.decide(scores.u, scores.novelty)
        budget.record("k", reason, float(t))
        taken.append(reason)
    return _outcome(taken, stream, gate.threshold)


def _outcome(taken: list[Reason | None], stream: list[Scores], threshold: float) -> Outcome:
    half = len(stream) // 2
    queried = [s.u for s, r in zip(stream, taken, strict=True) if r not in (None, "audit")]
    mean_all = sum(s.u for s in stream) / len(stream)
    return Outcome(
        rate=_rate(taken),
        rate_first_half=_rate(taken[:half]),
        rate_second_half=_rate(taken[half:]),
        reasons=Counter(r for r in taken if r is not None),
        lift=sum(queried) / max(1, len(queried)) - mean_all,
        threshold=threshold,
    )


def _rate(taken: list[Reason | None]) -> float:
    return sum(r is not None for r in taken) / len(taken)


def first_queries_lift(start: float, fraction: float, stream: list[Scores], k: int = 100) -> float:
    """How much more uncertain than average the first k queries of a variable gate are."""
    budget = BudgetManager(BudgetConfig(fraction=fraction, audit_fraction=0.0))
    gate = make_gate(GateConfig(strategy="variable", threshold=start), seed=0)
    picked: list[float] = []
    for t, scores in enumerate(stream):
        reason = None
        if budget.may_query("k", "uncertainty", float(t), 0):
            reason = gate.decide(scores.u)
        budget.record("k", reason, float(t))
        if reason is not None and len(picked) < k:
            picked.append(scores.u)
    half = stream[: len(stream) // 2]
    return sum(picked) / len(picked) - sum(s.u for s in half) / len(half)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=40_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    stream = synthetic_stream(args.records, args.seed)
    print(f"{args.records} records, audit share = default min(0.01, B/10)")
    print("| B | strategy | realised | 1st half | 2nd half | audit | novelty | u lift | θ end |")
    print("|---|---|---|---|---|---|---|---|---|")
    for fraction in BUDGETS:
        for strategy in STRATEGIES:
            o = run(strategy, fraction, stream, args.seed)
            n = args.records
            print(
                f"| {fraction} | {strategy} | {o.rate:.4f} | {o.rate_first_half:.4f} | "
                f"{o.rate_second_half:.4f} | {o.reasons['audit'] / n:.4f} | "
                f"{o.reasons['novelty'] / n:.4f} | {o.lift:+.3f} | {o.threshold:.3f} |"
            )
    print("\nVariable gate, lift of its first 100 queries by starting θ:")
    print("| B | θ₀ = 1.0 | θ₀ = 0.5 | θ₀ = 0.001 |")
    print("|---|---|---|---|")
    for fraction in BUDGETS:
        lifts = [first_queries_lift(start, fraction, stream) for start in (1.0, 0.5, 0.001)]
        print(f"| {fraction} | " + " | ".join(f"{lift:+.3f}" for lift in lifts) + " |")


if __name__ == "__main__":
    main()
