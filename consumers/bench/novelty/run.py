"""``stream-al bench novelty``: does the hybrid gate find the floor's rare failure mode?

Two questions, on the floor simulator, whose rare failure mode (fast but abnormally
low-leakage silicon, inside every test limit) begins halfway through the run:

1. **Separation.** Each novelty detector scores every record, one detector per product
   as the learner keeps them; the AUC is over the records from the mode's first possible
   device on (rare-mode devices against the rest).
2. **Finding it.** The learner replays the stream with the hybrid gate (each detector),
   the default strategy and random, at one budget and the same immediate oracle: the
   records from the mode's first device until its first query, how many rare-mode
   devices were queried, and the model's recall of them (predicted fail) after onset.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from consumers.demo.arms import Pace, PacedRandomLearner
from stream_al.evaluation import rank_auc
from stream_al.features import FeatureConfig, extract
from stream_al.gates import GateConfig
from stream_al.learner import Decision, LearnerConfig
from stream_al.novelty import NoveltyName, make_novelty, measured_only
from stream_al.records import ParametricRecord
from stream_al.replay import replay
from stream_al.simulate.base import SimulatedRecord
from stream_al.simulate.floor import FloorConfig, FloorSimulator
from stream_al.simulate.parametric import RARE_MODE

DETECTORS: tuple[NoveltyName, ...] = ("principal", "half_space")


@dataclass(frozen=True)
class Separation:
    detector: str
    seed: int
    auc: float | None
    rare_devices: int
    devices_scored: int
    us_per_record: float


@dataclass(frozen=True)
class Arm:
    """One gate arm of the search: a strategy, and the detector for hybrid."""

    strategy: str
    detector: NoveltyName | None = None
    #: Random, paced to the first arm: configured as it is (warm-up and audits alike),
    #: with its gate swapped for a random one.
    paced: bool = False

    @property
    def name(self) -> str:
        if self.paced:
            return "random (paced)"
        return f"{self.strategy} ({self.detector})" if self.detector else self.strategy


#: The first arm is the one random is paced to: random asks only while it has fewer
#: labels than that arm had at the same device, so both end with the same count.
ARMS = (Arm("hybrid", "principal"), Arm("hybrid", "half_space"), Arm("randomized"),
        Arm("hybrid", "principal", paced=True))


@dataclass(frozen=True)
class Search:
    arm: str
    seed: int
    budget: float
    labels_used: int
    records: int
    rare_mode_first: int | None
    #: Records from the mode's first device until a rare-mode device was first queried.
    records_to_first_rare_query: int | None
    rare_queried: int
    rare_devices: int
    #: Share of rare-mode devices predicted "fail", from the mode's first device on.
    rare_recall: float | None
    balanced_accuracy: float
    escape_rate: float | None
    #: Cumulative rare-mode queries at each record index (for the plot; not in the table).
    rare_queries_at: list[tuple[int, int]]


def floor_stream(records: int, seed: int, sensors: int = 0
                 ) -> tuple[list[SimulatedRecord], int]:
    """The simulated floor (with ``sensors`` uninformative equipment sensor columns) and
    the index of the mode's first possible device."""
    simulator = FloorSimulator(FloorConfig(run_length=records, sensor_columns=sensors), seed)
    return list(simulator.stream(records)), simulator.rare_mode_begins


def separation(detector: NoveltyName, stream: Sequence[SimulatedRecord], begins: int,
               seed: int, on_progress: Callable[[int], None] | None = None) -> Separation:
    features = FeatureConfig()
    detectors: dict[str, Any] = {}
    scores: list[float] = []
    rare: list[bool] = []
    spent = 0.0
    for index, simulated in enumerate(stream):
        record = ParametricRecord.model_validate(simulated.record)
        x = measured_only(extract(record, features))
        scorer = detectors.get(record.product)
        if scorer is None:
            scorer = detectors[record.product] = make_novelty(detector, seed)
        started = time.perf_counter()
        score = scorer.score_then_learn(x)
        spent += time.perf_counter() - started
        if index >= begins:
            scores.append(score)
            rare.append(simulated.mode == RARE_MODE)
        if on_progress:
            on_progress(1)
    return Separation(detector, seed, rank_auc(scores, rare), sum(rare), len(scores),
                      spent / max(1, len(stream)) * 1e6)


def search(arm: Arm, stream: Sequence[SimulatedRecord], seed: int, budget: float,
           on_progress: Callable[[int], None] | None = None,
           pace: Pace | None = None) -> tuple[Search, dict[str, int]]:
    """One replay of ``stream``; also the arm's query count after each record (by
    record id), the pace a random arm can follow. With ``pace`` the arm is random, paced
    to it (``consumers.demo.arms.PacedRandomLearner``)."""
    gate = GateConfig(strategy=arm.strategy, novelty=arm.detector or "principal")
    config = LearnerConfig.model_validate({
        "seed": seed, "gate": gate.model_dump(),
        "budget": {"fraction": budget, "audit_fraction": 0.0}})
    first = next((i for i, s in enumerate(stream) if s.mode == RARE_MODE), None)
    queried_rare, at, caught, rare_seen, asked = 0, [(0, 0)], 0, 0, 0
    first_query: int | None = None
    asked_after: dict[str, int] = {}

    def observe(index: int, decision: Decision) -> None:
        nonlocal queried_rare, first_query, caught, rare_seen, asked
        asked += decision.request is not None
        asked_after[str(stream[index].record["record_id"])] = asked
        if stream[index].mode != RARE_MODE:
            return
        rare_seen += 1
        caught += decision.prediction.predicted == "fail"
        if decision.request is not None:
            queried_rare += 1
            at.append((index, queried_rare))
            if first_query is None and first is not None:
                first_query = index - first

    def labelled() -> Iterator[tuple[ParametricRecord, str]]:
        for simulated in stream:
            yield ParametricRecord.model_validate(simulated.record), simulated.truth

    learner = PacedRandomLearner(config, pace) if pace is not None else None
    result = replay(labelled(), config, len(stream), on_progress=on_progress, observe=observe,
                    learner=learner)
    at.append((len(stream), queried_rare))
    found = Search(arm.name, seed, budget, result.labels_used, result.records, first,
                   first_query, queried_rare, rare_seen,
                   caught / rare_seen if rare_seen else None, result.balanced_accuracy,
                   result.escape_rate, at)
    return found, asked_after


def write(out: Path, separations: Sequence[Separation], searches: Sequence[Search],
          meta: dict[str, Any]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = {"meta": meta, "separation": [asdict(s) for s in separations],
            "search": [asdict(s) for s in searches]}
    out.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")


def markdown(separations: Sequence[Separation], searches: Sequence[Search]) -> str:
    """Means over seeds: one table per question."""
    lines = ["| detector | AUC (mean) | AUC per seed | µs/record |", "|---|---|---|---|"]
    for detector in dict.fromkeys(s.detector for s in separations):
        mine = [s for s in separations if s.detector == detector]
        aucs = [s.auc for s in mine if s.auc is not None]
        lines.append(f"| {detector} | {_mean(aucs):.3f} | "
                     f"{', '.join(f'{a:.3f}' for a in aucs)} | "
                     f"{_mean([s.us_per_record for s in mine]):.0f} |")
    lines += ["", "| arm | labels | records to first rare query | rare queried | "
              "rare recall | balanced acc | escape rate |", "|---|---|---|---|---|---|---|"]
    for arm in dict.fromkeys(s.arm for s in searches):
        runs = [s for s in searches if s.arm == arm]
        delays = [s.records_to_first_rare_query for s in runs]
        shown = ", ".join("never" if d is None else f"{d:,}" for d in delays)
        lines.append(
            f"| {arm} | {_mean([s.labels_used for s in runs]):,.0f} | {shown} | "
            f"{_mean([s.rare_queried for s in runs]):.1f} of "
            f"{_mean([s.rare_devices for s in runs]):.0f} | "
            f"{_mean([s.rare_recall or 0.0 for s in runs]):.3f} | "
            f"{_mean([s.balanced_accuracy for s in runs]):.3f} | "
            f"{_mean([s.escape_rate or 0.0 for s in runs]):.3f} |")
    return "\n".join(lines) + "\n"


def plot(path: Path, stream_length: int, begins: int, searches: Sequence[Search],
         separations: Sequence[Separation]) -> None:
    """Rare-mode devices queried over the run, per arm (first seed), beside the AUCs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.4),
                                         gridspec_kw={"width_ratios": [1, 2]})
    detectors = list(dict.fromkeys(s.detector for s in separations))
    for position, detector in enumerate(detectors):
        aucs = [s.auc for s in separations if s.detector == detector and s.auc is not None]
        left.bar(position, _mean(aucs), color="C0" if position == 0 else "C7")
        left.scatter([position] * len(aucs), aucs, color="k", s=10, zorder=3)
    left.axhline(0.9, color="C3", linestyle="--", linewidth=1, label="target 0.9")
    left.axhline(0.5, color="grey", linestyle=":", linewidth=1, label="chance")
    left.set_xticks(range(len(detectors)), detectors)
    left.set_ylim(0.4, 1.0)
    left.set_ylabel("AUC, rare mode vs the rest")
    left.set_title("novelty separation (per seed: dots)")
    left.legend(fontsize=8)
    first_seed = min(s.seed for s in searches)
    for line in (s for s in searches if s.seed == first_seed):
        xs, ys = zip(*line.rare_queries_at, strict=True)
        right.step(xs, ys, where="post", label=f"{line.arm} ({line.labels_used} labels)",
                   linestyle="--" if line.arm == "random (paced)" else "-")
    right.axvline(begins, color="grey", linestyle=":", label="rare failure mode begins")
    right.set_xlim(0, stream_length)
    right.set_xlabel("device")
    right.set_ylabel("rare-mode devices queried")
    right.set_title(f"finding the rare mode (seed {first_seed})")
    right.legend(fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else float("nan")
