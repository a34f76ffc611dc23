"""The body of ``stream-al bench labels``: progress, tables, JSON and plot."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from consumers.bench.console import wide_console
from consumers.bench.labels.datasets import Dataset, builtin_dataset, csv_dataset
from consumers.bench.labels.runs import Row, baselines, execute, plan, summarise, write_rows
from consumers.bench.labels.savings import Curve as Prequential
from consumers.bench.labels.savings import attach_reach, savings
from consumers.bench.plots import Curve, learning_curves
from stream_al.learner import LearnerConfig


@dataclass(frozen=True)
class CsvFile:
    """One ``--data`` file and how to read it."""

    path: Path
    target: str
    time: str | None = None


@dataclass(frozen=True)
class LabelsOptions:
    """What ``stream-al bench labels`` was asked to run."""

    names: Sequence[str]
    files: Sequence[CsvFile]
    strategies: Sequence[str]
    budgets: Sequence[float]
    model: str = "logistic"
    seeds: int = 1
    records: int | None = None
    delay: int = 50
    shuffle_seed: int | None = None
    drop: Sequence[str] = ()
    prior_correction: float | None = None  # None: the learner's default
    out: Path = Path("bench-results/labels.json")
    plot: Path | None = None


def run_bench(options: LabelsOptions) -> list[Row]:
    console = wide_console()
    datasets: list[Dataset] = [builtin_dataset(n, options.records) for n in options.names]
    datasets += [csv_dataset(f.path, f.target, f.time, options.shuffle_seed, options.records,
                             drop=options.drop) for f in options.files]
    runs = plan(datasets, options.strategies, options.budgets, options.seeds)
    rows: list[Row] = []
    prequential: list[Prequential] = []
    curves: dict[str, list[Curve]] = defaultdict(list)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeRemainingColumn())
    with Progress(*columns, console=console) as progress:
        overall = progress.add_task("records", total=sum(r.dataset.size for r in runs))
        for run in runs:
            progress.update(overall, description=f"{run.dataset.name} {run.strategy} "
                                                 f"B={run.budget:g} seed={run.seed}")
            base = LearnerConfig() if options.prior_correction is None else \
                LearnerConfig(prior_correction=options.prior_correction)
            row, result = execute(run, options.model, options.delay, base,
                                  lambda n: progress.advance(overall, n))
            row["prior_correction"] = base.prior_correction
            rows.append(row)
            prequential.append(result.curve.prequential())
            if run.seed == 0:
                label = "all labels" if run.strategy == "all" else \
                    f"{run.strategy} B={run.budget:g}"
                curves[run.dataset.name].append((label, result.curve.by_labels()))
            progress.update(overall, completed=sum(r["records"] for r in rows))
    attach_reach(rows, prequential, keys=("dataset",))
    write_rows(options.out, rows)
    _report(console, rows, datasets, options)
    if options.plot:
        learning_curves(options.plot, curves, f"stream-al bench labels ({options.model}, "
                                              f"oracle delay {options.delay})")
        console.print(f"learning curves written to {options.plot}")
    return rows


def _report(console: Console, rows: list[Row], datasets: Sequence[Dataset],
            options: LabelsOptions) -> None:
    console.print(_table(summarise(rows), options.model, options.delay))
    console.print(_savings_table(savings(rows, keys=("dataset",))))
    for dataset in datasets:
        base = baselines(dataset)
        console.print(f"{dataset.name}: label-free baselines — majority class "
                      f"{base['majority']:.4f}, no-change {base['no_change']:.4f}")
    console.print(f"rows written to {options.out}")


def _share(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def _table(summary: list[Row], model: str, delay: int) -> Table:
    table = Table(title=f"prequential accuracy — model {model}, oracle delay {delay} records")
    for header in ("dataset", "strategy", "budget", "accuracy", "last 20 %", "balanced",
                   "escape %", "overkill %", "labels", "% of all-labels", "records/s"):
        table.add_column(header, justify="left" if header in ("dataset", "strategy")
                         else "right")
    for row in summary:
        table.add_row(row["dataset"], row["strategy"], f"{row['budget']:g}",
                      f"{row['accuracy']:.4f}", f"{row['accuracy_last20']:.4f}",
                      f"{row['balanced_accuracy']:.4f}", _share(row["escape_rate"]),
                      _share(row["overkill"]), f"{row['labels_used']:.0f}",
                      _share(row["of_all_labels"]), f"{row['records_per_s']:,.0f}")
    return table


def _savings_table(table_rows: list[Row]) -> Table:
    table = Table(title="annotation savings against random: 1 − labels/random's labels to "
                        "reach a share of the all-labels accuracy (seeds where both reach it)")
    for header in ("dataset", "strategy", "target", "savings %", "reached on seeds"):
        table.add_column(header, justify="left" if header in ("dataset", "strategy")
                         else "right")
    for row in table_rows:
        table.add_row(row["dataset"], row["strategy"], f"{100 * row['target']:.0f} %",
                      _share(row["savings"]), f"{row['reached']}/{row['seeds']}")
    return table
