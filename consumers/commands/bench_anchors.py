"""``stream-al bench anchors``: stream-al's strategies against other libraries' on the
same plain River models, streams, oracle and cold start."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

from consumers.cli import Cli


def register(cli: Cli) -> None:
    @cli.bench.command("anchors")
    def bench_anchors(
        quick: Annotated[bool, typer.Option(
            help="smoke test: phishing LR and imagesegments GNB, their first 600 records, "
                 "budget 10 %, seed 0")] = False,
        config: Annotated[list[str] | None, typer.Option(
            help="only this configuration, e.g. 'shuttle HT' (repeatable; default all 14)")]
        = None,
        budget: Annotated[list[float] | None, typer.Option(
            help="label budget as a fraction of records (repeatable; default 0.05 0.1 0.2)")]
        = None,
        arm: Annotated[list[str] | None, typer.Option(
            help="only this budgeted arm, e.g. random or stream-al:randomized (repeatable; "
                 "default every one; all labels always runs, as the reference)")] = None,
        seeds: Annotated[int, typer.Option(min=1, help="seeds 0 … N−1")] = 3,
        delay: Annotated[int, typer.Option(
            min=0, help="the second table's oracle delay in records (the first is 0; "
                        "0 here gives only the first)")] = 50,
        jobs: Annotated[int, typer.Option(min=1, help="worker processes")] = 1,
        records: Annotated[int | None, typer.Option(
            min=1, help="replay only each stream's first N records")] = None,
        out: Annotated[Path, typer.Option(help="JSON rows")]
        = Path("bench-results/anchors.json"),
        markdown: Annotated[Path, typer.Option(help="markdown tables")]
        = Path("bench-results/anchors.md"),
        plot: Annotated[Path, typer.Option(help="accuracy against budget, PNG (the delayed "
                                           "oracle's beside it, -delayN)")]
        = Path("bench-results/anchors.png"),
        own_budgets: Annotated[bool, typer.Option(
            "--own-budgets", help="let each arm spend what its own budget manager allows "
            "(scikit-activeml's overspends early) instead of one hard budget ⌈B·t⌉ + 1 for "
            "all")] = False,
        floor_data: Annotated[Path | None, typer.Option(
            exists=True, file_okay=False,
            help="the imbalanced floor streams: Shuttle LR, the simulated ATE floor, and the "
                 "STDF lots and Ethereum fraud table found in this datasets folder, on "
                 "stream-al's logistic template (instead of the 14, unless --config names "
                 "some of those too)")] = None,
        rerender: Annotated[Path | None, typer.Option(
            exists=True, dir_okay=False,
            help="no run: write the tables and plots again from these JSON rows")] = None,
    ) -> None:
        """Compare stream-al with River's EntropySampler and scikit-activeml's stream
        strategies (prequential, test-then-train, in stream order)."""
        from consumers.bench.anchors import run
        from consumers.bench.anchors.streams import CONFIGS, QUICK, QUICK_RECORDS, floor_configs
        from consumers.bench.console import wide_console

        budgets = budget or ([0.1] if quick else [0.05, 0.1, 0.2])
        for b in budgets:
            if not 0 < b < 1:
                raise typer.BadParameter(f"{b} is not in (0, 1)", param_hint="--budget")
        known = {c.name.lower(): c for c in CONFIGS}
        unknown = [name for name in config or [] if name.lower() not in known]
        if unknown:
            raise typer.BadParameter(f"{', '.join(map(repr, unknown))}; choose from "
                                     f"{', '.join(known)}", param_hint="--config")
        from consumers.bench.anchors import skal
        from consumers.bench.anchors.runs import arm_names
        offered = arm_names(with_skactiveml=skal.available())
        strange = [name for name in arm or [] if name not in offered]
        if strange:
            raise typer.BadParameter(f"{', '.join(map(repr, strange))}; choose from "
                                     f"{', '.join(offered)}", param_hint="--arm")
        chosen = [known[name.lower()] for name in config] if config else \
            [] if floor_data else list(QUICK if quick else CONFIGS)
        if floor_data:
            chosen += [c for c in floor_configs(floor_data) if c not in chosen]
        options = run.AnchorsOptions(
            configs=chosen, budgets=budgets, seeds=[0] if quick else list(range(seeds)),
            delays=[0, delay] if delay else [0], jobs=jobs,
            records=records or (QUICK_RECORDS if quick else None), out=out, markdown=markdown,
            plot=plot, command=shlex.join(["stream-al", *sys.argv[1:]]),
            own_budgets=own_budgets, arms=tuple(dict.fromkeys(arm or ())),
            plot_score="balanced_accuracy" if floor_data else "accuracy")
        if rerender is not None:
            run.rerender(rerender, options, wide_console())
        else:
            run.run_anchors(options, wide_console())
