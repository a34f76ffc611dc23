"""The markdown report of ``bench anchors``: means per arm and budget over the
configurations, every configuration at 10 %, floor scores on the binary streams, wins
and losses of each stream-al strategy against each anchor, annotation savings, and the
EntropySampler's bisected discount factors. One set of tables per oracle delay.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any, Final

from consumers.bench.anchors.discount import target_labels
from consumers.bench.anchors.runs import ANCHORS, STREAM_AL_ARMS, Row
from consumers.bench.anchors.streams import CONFIGS
from consumers.bench.labels.runs import mean_of
from consumers.bench.labels.savings import TARGETS, reach_key, savings
from stream_al.gates import GateConfig

#: Accuracy differences within half a point are ties: three seeds cannot split them.
TIE: Final = 0.005
#: The budget of the per-configuration tables.
FOCUS: Final = 0.1
#: Savings counted apart: at most half of random sampling's labels for the same accuracy.
HALVED: Final = 0.5

Cell = tuple[str, str, str, float]  # dataset, model, arm, budget


def seed_means(rows: Iterable[Row]) -> dict[Cell, dict[str, Any]]:
    """Per (dataset, model, arm, budget): the mean of every score over the seeds."""
    groups: dict[Cell, list[Row]] = defaultdict(list)
    for row in rows:
        groups[(row["dataset"], row["model"], row["strategy"], row["budget"])].append(row)
    means: dict[Cell, dict[str, Any]] = {}
    for cell, group in groups.items():
        means[cell] = {key: mean_of(r.get(key) for r in group) for key in (
            "accuracy", "balanced_accuracy", "labels_used", "minority_recall", "escape_rate",
            "overkill")}
        means[cell]["records"] = group[0]["records"]
    return means


def report(rows: Sequence[Row], delays: Sequence[int], budgets: Sequence[float],
           header: str) -> str:
    parts = [header]
    for delay in delays:
        chosen = [r for r in rows if r["delay"] == delay]
        if not chosen:
            continue
        means = seed_means(chosen)
        arms = [a for a in ("all", *ANCHORS, *STREAM_AL_ARMS)
                if any(cell[2] == a for cell in means)]
        when = "immediately" if delay == 0 else f"{delay} records later"
        parts += [f"## Oracle answers {when}\n",
                  means_table(means, arms, budgets), budget_table(chosen, arms, budgets),
                  per_config_table(means, arms), binary_table(means, arms),
                  wins_table(means, arms, budgets), savings_table(chosen, arms),
                  discount_table(chosen)]
    return "\n".join(parts)


def means_table(means: dict[Cell, dict[str, Any]], arms: Sequence[str],
                budgets: Sequence[float]) -> str:
    configs = {cell[:2] for cell in means}
    headers = ["arm", *(f"accuracy {_pct(b)}" for b in budgets),
               *(f"balanced {_pct(b)}" for b in budgets)]
    lines = []
    for arm in arms:
        values = [_over_configs(means, arm, b, "accuracy") for b in budgets]
        values += [_over_configs(means, arm, b, "balanced_accuracy") for b in budgets]
        lines.append([_name(arm), *(_num(v) for v in values)])
    return (f"### Means over the {len(configs)} configurations (mean of seeds first)\n\n"
            + markdown(headers, lines))


def budget_table(rows: Sequence[Row], arms: Sequence[str], budgets: Sequence[float]) -> str:
    """Labels spent against ⌈B·n⌉, and how far above ⌈B·t⌉ + 1 the runs went."""
    headers = ["arm", *(f"labels / ⌈B·n⌉ {_pct(b)}" for b in budgets),
               "runs within the bound", "excess: median", "excess: largest"]
    lines = []
    for arm in (a for a in arms if a != "all"):
        runs = [r for r in rows if r["strategy"] == arm]
        ratios = [mean_of(r["labels_used"] / target_labels(b, r["records"])
                          for r in runs if r["budget"] == b) for b in budgets]
        excess = [r["labels_max_over_bound"] or 0 for r in runs]
        held = sum(e <= 0 for e in excess)
        lines.append([_name(arm), *(_num(r, 2) for r in ratios), f"{held}/{len(runs)}",
                      f"{statistics.median(excess):g}", f"{max(excess)}"])
    return ("### Labels spent\n\nLabels used over ⌈B·n⌉ (1.00 is the budget, mean of runs); "
            "the excess of a run is `labels_max_over_bound`, its largest labels used − "
            "(⌈B·t⌉ + 1) after the first ⌈1/B⌉ records: ≤ 0 means the budget held all "
            "along (the cold start counts).\n\n" + markdown(headers, lines))


def per_config_table(means: dict[Cell, dict[str, Any]], arms: Sequence[str]) -> str:
    configs = sorted({cell[:2] for cell in means}, key=_config_order)
    lines = []
    for dataset, model in configs:
        values = {a: (means.get((dataset, model, a, FOCUS if a != "all" else 1.0)) or {})
                  .get("accuracy") for a in arms}
        best = max((v for a, v in values.items() if a != "all" and v is not None), default=None)
        lines.append([f"{dataset} {model}", *(_num(values[a], bold=a != "all" and
                                                    values[a] == best) for a in arms)])
    return (f"### Accuracy per configuration at {_pct(FOCUS)} (best budgeted arm in bold)\n\n"
            + markdown(["configuration", *(_name(a) for a in arms)], lines))


def binary_table(means: dict[Cell, dict[str, Any]], arms: Sequence[str]) -> str:
    headers = ["arm", "minority recall", "escape %", "overkill %"]
    lines = []
    for arm in arms:
        budget = 1.0 if arm == "all" else FOCUS
        cells = [v for c, v in means.items() if c[2] == arm and c[3] == budget
                 and v["escape_rate"] is not None]
        if not cells:
            continue
        lines.append([_name(arm), _num(statistics.fmean(v["minority_recall"] for v in cells)),
                      _num(100 * statistics.fmean(v["escape_rate"] for v in cells), 2),
                      _num(100 * statistics.fmean(v["overkill"] for v in cells), 2)])
    return (f"### Binary streams at {_pct(FOCUS)}: the minority class is the fail class\n\n"
            "Escape: a minority record not predicted minority, per minority record; "
            "overkill: a majority record predicted minority, per majority record.\n\n"
            + markdown(headers, lines))


def wins_table(means: dict[Cell, dict[str, Any]], arms: Sequence[str],
               budgets: Sequence[float]) -> str:
    anchors = [a for a in ANCHORS if a in arms]
    configs = {cell[:2] for cell in means}
    lines = []
    for mine in (a for a in STREAM_AL_ARMS if a in arms):
        counts = []
        for anchor in anchors:
            wins = ties = losses = 0
            for config in configs:
                for b in budgets:
                    ours, theirs = means.get((*config, mine, b)), means.get((*config, anchor, b))
                    if ours is None or theirs is None:
                        continue
                    delta = ours["accuracy"] - theirs["accuracy"]
                    wins, ties, losses = (wins + (delta > TIE), ties + (abs(delta) <= TIE),
                                          losses + (delta < -TIE))
            counts.append(f"{wins} / {ties} / {losses}")
        lines.append([_name(mine), *counts])
    return ("### Wins / ties / losses of stream-al against each anchor\n\n"
            f"Over every configuration and budget, on the mean accuracy of the seeds; a "
            f"difference within {TIE:g} is a tie.\n\n"
            + markdown(["stream-al", *(_name(a) for a in anchors)], lines))


def savings_table(rows: Sequence[Row], arms: Sequence[str]) -> str:
    table = savings(rows, keys=("dataset", "model"))
    configs = {(r["dataset"], r["model"]) for r in rows}
    headers = ["arm"]
    for target in TARGETS:
        headers += [f"reached {_pct(target)}", f"savings to {_pct(target)}"]
    lines = []
    for arm in (a for a in arms if a != "all"):
        cells = []
        for target in TARGETS:
            reached = {(r["dataset"], r["model"]) for r in rows if r["strategy"] == arm
                       and r[reach_key(target)] is not None}
            values = [r["savings"] for r in table if r["strategy"] == arm
                      and r["target"] == target and r["savings"] is not None]
            cells += [f"{len(reached)}/{len(configs)}", "–" if arm == "random" else
                      _median_savings(values)]
        lines.append([_name(arm), *cells])
    return ("### Annotation savings against random sampling\n\n"
            "Reached: the configurations where some budget and seed reached (for good) 95 % "
            "or 98 % of the all-labels accuracy on its learning curve (cumulative "
            "prequential accuracy against labels used). Savings: 1 − labels/random's "
            "labels to get there, each arm taking the fewest labels any of its budgets "
            "needed, averaged over the seeds where both got there; the median over the "
            "configurations where both got there, and on how many of them the arm needed "
            "fewer labels than random and on how many it needed at most half as many. A "
            "median, because one stream where a handful of "
            "labels already reach the target (an all-labels accuracy near chance) makes a "
            "ratio of 50.\n\n" + markdown(headers, lines) + "\n"
            + savings_per_config(table, arms))


def savings_per_config(table: Sequence[Row], arms: Sequence[str]) -> str:
    target = TARGETS[0]
    shown = [a for a in arms if a not in ("all", "random")]
    values = {(r["dataset"], r["model"], r["strategy"]): r["savings"] for r in table
              if r["target"] == target}
    configs = sorted({(d, m) for d, m, _ in values}, key=_config_order)
    lines = [[f"{d} {m}", *(_num(None if values.get((d, m, a)) is None else
                                 100 * values[(d, m, a)], 0) for a in shown)]
             for d, m in configs]
    return (f"Savings to {_pct(target)} per configuration, % (– where the arm or random "
            "never got there):\n\n"
            + markdown(["configuration", *(_name(a) for a in shown)], lines))


def _median_savings(values: Sequence[float]) -> str:
    if not values:
        return "–"
    better = sum(v > 0 for v in values)
    halved = sum(v >= HALVED for v in values)  # the bar: half of random's labels
    return (f"{100 * statistics.median(values):.0f} % ({better} of {len(values)} better, "
            f"{halved} ≥ {100 * HALVED:.0f} %)")


def discount_table(rows: Sequence[Row]) -> str:
    found = sorted({(r["dataset"], r["model"], r["budget"], r["discount_factor"]) for r in rows
                    if r["strategy"] == "river-entropy" and r.get("discount_factor")},
                   key=lambda f: (_config_order(f[:2]), f[2]))
    lines = [[f"{d} {m}", _pct(b), f"{factor:.4g}"] for d, m, b, factor in found]
    return ("### EntropySampler discount factors (bisected on seed 0)\n\n"
            + markdown(["configuration", "budget", "discount factor"], lines))


def markdown(headers: Sequence[str], lines: Sequence[Sequence[str]]) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(line) + " |" for line in lines]
    return "\n".join(out) + "\n"


def _over_configs(means: dict[Cell, dict[str, Any]], arm: str, budget: float,
                  key: str) -> float | None:
    budget = 1.0 if arm == "all" else budget
    return mean_of(v[key] for c, v in means.items() if c[2] == arm and c[3] == budget)


def _config_order(config: tuple[str, str]) -> tuple[int, str]:
    names = [(c.dataset, c.model) for c in CONFIGS]
    return (names.index(config), "") if config in names else (len(names), " ".join(config))


def _name(arm: str) -> str:
    if arm == "all":
        return "all labels"
    return f"{arm} (default)" if arm == _DEFAULT_ARM else arm


#: The arm a user gets without configuring a gate, named so in every table.
_DEFAULT_ARM = f"stream-al:{GateConfig().strategy}"


def _pct(fraction: float) -> str:
    return f"{100 * fraction:g} %"


def _num(value: float | None, digits: int = 4, bold: bool = False) -> str:
    if value is None:
        return "–"
    text = f"{value:.{digits}f}"
    return f"**{text}**" if bold else text
