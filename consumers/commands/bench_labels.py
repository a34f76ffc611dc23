"""``stream-al bench labels``: compare query strategies at label budgets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from consumers.cli import Cli

STRATEGIES = ("random", "fixed", "variable", "randomized", "hybrid")
MODELS = ("logistic", "softmax", "naive_bayes", "hoeffding_tree", "arf", "river_lr",
          "river_ht", "river_gnb", "river_arf")


def register(cli: Cli) -> None:
    @cli.bench.command("labels")
    def bench_labels(
        dataset: Annotated[list[str] | None, typer.Option(
            help="built-in stream: shuttle, phishing, imagesegments, bananas, sea, "
                 "hyperplane, agrawal, ate-floor, ate-wide (ate-floor plus 300 uninformative "
                 "sensor columns) (repeatable)")] = None,
        data: Annotated[list[Path] | None, typer.Option(
            help="a CSV file to replay (repeatable; needs --target)", exists=True,
            dir_okay=False)] = None,
        target: Annotated[list[str] | None, typer.Option(
            help="the CSV's label column; once for all files or once per --data, in order")]
        = None,
        time: Annotated[list[str] | None, typer.Option(
            help="the CSV's time column to order by; once for all or once per --data")]
        = None,
        shuffle_seed: Annotated[int | None, typer.Option(
            help="shuffle CSV rows with this seed (data with no time order)")] = None,
        drop: Annotated[list[str] | None, typer.Option(
            help="a CSV column that is no feature, e.g. a record id (repeatable; applies to "
                 "every --data file)")] = None,
        strategy: Annotated[list[str] | None, typer.Option(
            help=f"strategy to compare (repeatable): {', '.join(STRATEGIES)}")] = None,
        budget: Annotated[list[float] | None, typer.Option(
            help="label budget as a fraction of records (repeatable)")] = None,
        model: Annotated[str, typer.Option(help=f"model template: {', '.join(MODELS)}")]
        = "logistic",
        seeds: Annotated[int, typer.Option(min=1, help="seeds per configuration")] = 1,
        records: Annotated[int | None, typer.Option(min=1, help="cap on records per dataset")]
        = None,
        delay: Annotated[int, typer.Option(min=0, help="oracle answers after this many "
                                           "further records")] = 50,
        prior_correction: Annotated[float | None, typer.Option(
            min=0.0, max=1.0, help="learner.prior_correction γ of every run, the "
                                   "all-labels one too (0: the most probable class; "
                                   "default: the learner's own, 0.5)")] = None,
        out: Annotated[Path, typer.Option(help="JSON rows (DESIGN §10)")]
        = Path("bench-results/labels.json"),
        plot: Annotated[Path | None, typer.Option(help="learning curves PNG")]
        = Path("bench-results/labels.png"),
    ) -> None:
        """Replay labelled streams with a simulated oracle and compare strategies."""
        from consumers.bench.labels.run import CsvFile, LabelsOptions, run_bench

        strategies = strategy or ["variable", "randomized"]
        for name in strategies:
            if name not in STRATEGIES:
                raise typer.BadParameter(f"{name!r}; choose from {', '.join(STRATEGIES)}",
                                         param_hint="--strategy")
        if model not in MODELS:
            raise typer.BadParameter(f"{model!r}; choose from {', '.join(MODELS)}",
                                     param_hint="--model")
        files = data or []
        targets = _per_file(target, files, "--target", required=True)
        times = _per_file(time, files, "--time", required=False)
        budgets = budget or [0.1]
        for b in budgets:
            if not 0 < b <= 1:
                raise typer.BadParameter(f"{b} is not in (0, 1]", param_hint="--budget")
        csv_files = [CsvFile(path, target or "", time)
                     for path, target, time in zip(files, targets, times, strict=True)]
        run_bench(LabelsOptions(
            names=dataset or ([] if data else ["ate-floor"]), files=csv_files,
            strategies=strategies, budgets=budgets, model=model, seeds=seeds, records=records,
            delay=delay, shuffle_seed=shuffle_seed, drop=drop or [],
            prior_correction=prior_correction, out=out, plot=plot))


def _per_file(values: list[str] | None, files: list[Path], option: str,
              required: bool) -> list[str | None]:
    """One value for every file, or one per file in order."""
    given: list[str | None] = list(values or [])
    if not files:
        return []
    if len(given) == 1:
        return given * len(files)
    if len(given) == len(files) or (not given and not required):
        return given or [None] * len(files)
    raise typer.BadParameter(f"give it once for all {len(files)} --data files or once per "
                             f"file (got {len(given)})", param_hint=option)
