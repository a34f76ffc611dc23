"""The body of ``stream-al bench labels``: progress, table, JSON and plot."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from consumers.bench.console import wide_console
from consumers.bench.labels.datasets import Dataset, builtin_dataset, csv_dataset
from consumers.bench.labels.runs import Row, baselines, execute, plan, summarise, write_rows
from consumers.bench.plots import Curve, learning_curves
from stream_al.learner import LearnerConfig


def run_bench(names: list[str], files: list[tuple[Path, str | None, str | None]],
              shuffle_seed: int | None, strategies: list[str], budgets: list[float],
              model: str, seeds: int, records: int | None, delay: int, out: Path,
              plot: Path | None) -> list[Row]:
    console = wide_console()
    datasets: list[Dataset] = [builtin_dataset(n, records) for n in names]
    datasets += [csv_dataset(path, target or "", time, shuffle_seed, records)
                 for path, target, time in files]
    runs = plan(datasets, strategies, budgets, seeds)
    rows: list[Row] = []
    curves: dict[str, list[Curve]] = defaultdict(list)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeRemainingColumn())
    with Progress(*columns, console=console) as progress:
        overall = progress.add_task("records", total=sum(r.dataset.size for r in runs))
        for run in runs:
            progress.update(overall, description=f"{run.dataset.name} {run.strategy} "
                                                 f"B={run.budget:g} seed={run.seed}")
            row, result = execute(run, model, delay, LearnerConfig(),
                                  lambda n: progress.advance(overall, n))
            rows.append(row)
            if run.seed == 0:
                label = "all labels" if run.strategy == "all" else \
                    f"{run.strategy} B={run.budget:g}"
                curves[run.dataset.name].append((label, result.curve.by_labels()))
            progress.update(overall, completed=sum(r["records"] for r in rows))
    write_rows(out, rows)
    console.print(_table(summarise(rows), model, delay))
    for dataset in datasets:
        base = baselines(dataset)
        console.print(f"{dataset.name}: label-free baselines — majority class "
                      f"{base['majority']:.4f}, no-change {base['no_change']:.4f}")
    console.print(f"rows written to {out}")
    if plot:
        learning_curves(plot, curves, f"stream-al bench labels ({model}, oracle delay {delay})")
        console.print(f"learning curves written to {plot}")
    return rows


def _table(summary: list[Row], model: str, delay: int) -> Table:
    table = Table(title=f"prequential accuracy — model {model}, oracle delay {delay} records")
    for header in ("dataset", "strategy", "budget", "accuracy", "last 20 %", "balanced",
                   "labels", "% of all-labels", "records/s"):
        table.add_column(header, justify="left" if header in ("dataset", "strategy")
                         else "right")
    for row in summary:
        share = row["of_all_labels"]
        table.add_row(row["dataset"], row["strategy"], f"{row['budget']:g}",
                      f"{row['accuracy']:.4f}", f"{row['accuracy_last20']:.4f}",
                      f"{row['balanced_accuracy']:.4f}", f"{row['labels_used']:.0f}",
                      f"{100 * share:.1f}" if share else "–", f"{row['records_per_s']:,.0f}")
    return table
