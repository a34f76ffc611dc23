"""``stream-al bench keys``: memory, checkpoint size and time per model key."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, get_args

import typer

from consumers.cli import Cli


def register(cli: Cli) -> None:
    @cli.bench.command("keys")
    def bench_keys(
        templates: Annotated[str, typer.Option(help="comma-separated model templates")]
        = "logistic,naive_bayes,hoeffding_tree,arf",
        strategies: Annotated[str, typer.Option(help="comma-separated gate strategies")]
        = "variable,hybrid",
        keys: Annotated[int, typer.Option(min=1, help="model keys (products) per run")] = 20,
        records: Annotated[int, typer.Option(min=10, help="records scored per key")] = 300,
        labels: Annotated[int, typer.Option(min=0, help="labels learnt per key")] = 30,
        out: Annotated[Path, typer.Option(help="results as JSON")]
        = Path("bench-results/keys.json"),
    ) -> None:
        """What one model key costs: live memory, checkpoint bytes, µs per decision and
        per label, per template and strategy (to choose learner.limits.max_model_keys)."""
        from rich.table import Table

        from consumers.bench.console import wide_console
        from consumers.bench.keys.run import KeyCost, run_all
        from stream_al.gates.config import Strategy
        from stream_al.models import TemplateName

        names = _names(templates, get_args(TemplateName), "--templates")
        chosen = _names(strategies, get_args(Strategy), "--strategies")
        console = wide_console()
        table = Table(title=f"cost per model key ({keys} keys, {records} records and "
                            f"{labels} labels each)")
        for header in ("template", "strategy", "memory/key", "checkpoint/key", "µs/decide",
                       "µs/label"):
            table.add_column(header, justify="left" if header in ("template", "strategy")
                             else "right")

        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        progress = Progress(TextColumn("{task.description}"), BarColumn(),
                            MofNCompleteColumn(), console=console)
        task = progress.add_task("template × strategy", total=len(names) * len(chosen))

        def show(cost: KeyCost) -> None:
            progress.advance(task)
            table.add_row(cost.template, cost.strategy,
                          f"{cost.memory_bytes_per_key / 1e6:.2f} MB",
                          f"{cost.checkpoint_bytes_per_key / 1e6:.2f} MB",
                          f"{cost.decide_us:,.0f}", f"{cost.learn_us:,.0f}")

        with progress:
            run_all(names, chosen, keys, records, labels, out, show)  # type: ignore[arg-type]
        console.print(table)
        console.print(f"results written to {out}")


def _names(text: str, known: tuple[str, ...], option: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    for name in names:
        if name not in known:
            raise typer.BadParameter(f"{name!r}; choose from {', '.join(known)}",
                                     param_hint=option)
    return names
