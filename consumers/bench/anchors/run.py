"""The body of ``stream-al bench anchors``: progress, JSON rows, markdown and plots."""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from consumers.bench.anchors import skal
from consumers.bench.anchors.report import report, seed_means
from consumers.bench.anchors.runs import (
    References,
    Row,
    Unit,
    arm_names,
    execute,
    plan,
    references_of,
)
from consumers.bench.anchors.streams import (
    CONFIGS,
    SKLEARN_STREAMS,
    Config,
    have_sklearn,
    load,
)
from consumers.bench.plots import accuracy_by_budget


@dataclass(frozen=True)
class AnchorsOptions:
    configs: Sequence[Config]
    budgets: Sequence[float]
    seeds: Sequence[int]
    delays: Sequence[int]
    jobs: int = 1
    records: int | None = None  # each stream's first records only
    out: Path = Path("bench-results/anchors.json")
    markdown: Path = Path("bench-results/anchors.md")
    plot: Path = Path("bench-results/anchors.png")
    command: str = "stream-al bench anchors"
    own_budgets: bool = False  # each arm spends what its own budget manager allows
    arms: tuple[str, ...] = ()  # the budgeted arms to run; empty: every one
    #: The score plotted: balanced accuracy for the imbalanced floor streams, where a
    #: model that says "pass" to everything scores 0.9 in plain accuracy.
    plot_score: str = "accuracy"
    notes: list[str] = field(default_factory=list)


def run_anchors(options: AnchorsOptions, console: Console) -> list[Row]:
    configs = _available(options, console)
    arms = options.arms or arm_names(with_skactiveml=skal.available())
    if not skal.available():
        _note(options, console, "scikit-activeml is not installed: its arms are skipped "
                                "(pip install 'stream-al[anchors]')")
    sizes = {c.dataset: load(c.dataset, options.records, c.source).size for c in configs}
    reference_units, budgeted = plan(configs, options.budgets, options.seeds, options.delays,
                                     arms, options.records, not options.own_budgets)
    started = time.perf_counter()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeRemainingColumn())
    with Progress(*columns, console=console) as progress:
        rows = _execute(reference_units, {}, options.jobs, progress, sizes, "all labels")
        rows += _execute(budgeted, references_of(rows), options.jobs, progress, sizes,
                         "budgeted arms")
    seconds = time.perf_counter() - started
    _write(options, rows, seconds, configs)
    console.print(f"{len(rows)} runs in {seconds / 60:.1f} min; rows in {options.out}, "
                  f"tables in {options.markdown}, plots beside {options.plot}")
    return rows


def rerender(rows_path: Path, options: AnchorsOptions, console: Console) -> list[Row]:
    """The tables and plots again from rows written before (no run): a change to the
    report need not cost another run."""
    rows: list[Row] = json.loads(rows_path.read_text(encoding="utf-8"))
    budgets = sorted({r["budget"] for r in rows if r["strategy"] != "all"})
    delays = sorted({r["delay"] for r in rows})
    configs = list(dict.fromkeys(Config(r["dataset"], r["model"]) for r in rows))
    seeds = sorted({r["seed"] for r in rows})
    again = AnchorsOptions(configs=configs, budgets=budgets, seeds=seeds, delays=delays,
                           out=rows_path, markdown=options.markdown, plot=options.plot,
                           command=options.command,
                           own_budgets=not all(r.get("hard_budget", False) for r in rows),
                           plot_score=options.plot_score,
                           notes=[f"tables re-rendered from {rows_path} (wall time: see the "
                                  "run that wrote it)"])
    _write(again, rows, None, configs, rows_too=False)
    console.print(f"tables in {options.markdown}, plots beside {options.plot}")
    return rows


def _available(options: AnchorsOptions, console: Console) -> list[Config]:
    if have_sklearn():
        return list(options.configs)
    skipped = [c.name for c in options.configs if c.dataset in SKLEARN_STREAMS]
    if skipped:
        _note(options, console, f"scikit-learn is not installed: {', '.join(skipped)} skipped "
                                "(pip install 'stream-al[anchors]')")
    return [c for c in options.configs if c.dataset not in SKLEARN_STREAMS]


def _note(options: AnchorsOptions, console: Console, text: str) -> None:
    options.notes.append(text)
    console.print(f"[yellow]note:[/yellow] {text}")


def _execute(units: Sequence[Unit], references: References, jobs: int, progress: Progress,
             sizes: dict[str, int], title: str) -> list[Row]:
    task = progress.add_task(title, total=sum(u.records(sizes) for u in units))
    rows: list[Row] = []
    started = time.perf_counter()

    def finished(unit: Unit) -> None:
        progress.advance(task, unit.records(sizes))
        if not progress.console.is_terminal:
            # A log (nohup, CI) gets no live bar: one line per unit shows the pace.
            progress.console.print(f"{time.perf_counter() - started:7.0f} s  {title}: "
                                   f"{_label(unit)} done")
    if jobs <= 1:
        for unit in units:
            progress.update(task, description=f"{title}: {_label(unit)}")
            rows += execute(unit, references)
            finished(unit)
        return rows
    # Spawned workers: no forked copy of this process's threads (rich's refresher).
    context = multiprocessing.get_context("spawn")
    ordered = sorted(units, key=lambda u: -u.records(sizes))  # the longest first
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        futures = {pool.submit(execute, unit, dict(references)): unit for unit in ordered}
        for future in as_completed(futures):
            rows += future.result()
            unit = futures[future]
            progress.update(task, description=f"{title}: {_label(unit)} done")
            finished(unit)
    return rows


def _label(unit: Unit) -> str:
    budget = "all" if unit.budget is None else f"B={unit.budget:g}"
    return f"{unit.config.name} {budget} delay={unit.delay}"


def _write(options: AnchorsOptions, rows: list[Row], seconds: float | None,
           configs: Sequence[Config], rows_too: bool = True) -> None:
    if rows_too:
        options.out.parent.mkdir(parents=True, exist_ok=True)
        options.out.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    header = _header(options, seconds, configs)
    options.markdown.parent.mkdir(parents=True, exist_ok=True)
    options.markdown.write_text(report(rows, options.delays, options.budgets, header),
                                encoding="utf-8")
    for delay in options.delays:
        _plot(rows, delay, plot_path(options.plot, delay, options.delays[0]),
              options.plot_score)


def plot_path(plot: Path, delay: int, first: int) -> Path:
    """The PNG of one oracle delay: the first delay's at ``plot``, others beside it."""
    return plot if delay == first else plot.with_name(f"{plot.stem}-delay{delay}{plot.suffix}")


def _plot(rows: list[Row], delay: int, path: Path, score: str = "accuracy") -> None:
    means = seed_means(r for r in rows if r["delay"] == delay)
    panels: dict[str, dict[str, list[tuple[float, float]]]] = defaultdict(
        lambda: defaultdict(list))
    references: dict[str, float] = {}
    for (dataset, model, arm, budget), scores in means.items():
        if arm == "all":
            references[f"{dataset} {model}"] = scores[score]
        else:
            panels[f"{dataset} {model}"][arm].append((budget, scores[score]))
    order = [c.name for c in CONFIGS]
    ordered = {name: panels[name] for name in sorted(
        panels, key=lambda n: order.index(n) if n in order else len(order))}
    when = "immediately" if delay == 0 else f"after {delay} records"
    accuracy_by_budget(path, ordered, references,
                       f"stream-al bench anchors: the oracle answers {when}",
                       f"prequential {score.replace('_', ' ')}")


def _header(options: AnchorsOptions, seconds: float | None,
            configs: Sequence[Config]) -> str:
    versions = ", ".join(f"{p} {_version(p)}" for p in ("river", "scikit-activeml",
                                                         "scikit-learn"))
    notes = "".join(f"\n- {n}" for n in options.notes)
    return (f"# stream-al bench anchors\n\n`{options.command}`\n\n"
            f"- {len(configs)} configurations × budgets "
            f"{', '.join(f'{100 * b:g} %' for b in options.budgets)} × seeds "
            f"{', '.join(map(str, options.seeds))}; oracle delays "
            f"{', '.join(map(str, options.delays))} records"
            f"{f'; the first {options.records} records of each stream' if options.records else ''}"
            "\n"
            f"- {_budget_rule(options.own_budgets)}\n"
            f"- {_wall(seconds, options.jobs)}{versions}{notes}\n")


def _budget_rule(own_budgets: bool) -> str:
    if own_budgets:
        return ("each arm spends what its own budget manager allows (scikit-activeml's "
                "estimate over w = 100, River's none, stream-al's ⌈B·t⌉ + 1): the arms do "
                "not get the same labels")
    return ("one hard budget for every arm, MOA's: a query that would take the labels past "
            "⌈B·t⌉ + 1 after t records is refused, cold start included, so no arm gets "
            "more labels than another")


def _wall(seconds: float | None, jobs: int) -> str:
    if seconds is None:
        return ""
    return f"{seconds / 60:.1f} min wall time with {jobs} process(es) on {os.cpu_count()} cores; "


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"
