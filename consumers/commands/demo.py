"""``stream-al demo``: the embedded default, no broker needed."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from consumers.cli import Cli


def register(cli: Cli) -> None:
    @cli.app.command()
    def demo(
        records: Annotated[int, typer.Option(min=1000, help="devices to simulate")] = 30_000,
        seed: Annotated[int, typer.Option(help="seed of the floor, the gates, the oracle")]
        = 7,
        out: Annotated[Path, typer.Option(help="folder for the PNG and summary.json")]
        = Path("demo-out"),
        metrics_port: Annotated[int, typer.Option(min=0, max=65535,
                                                  help="/metrics port (0: any free)")] = 9108,
        strategy: Annotated[str, typer.Option(
            help="random, fixed, variable, randomized or hybrid")] = "hybrid",
        budget: Annotated[float, typer.Option(min=0.001, max=1.0,
                                              help="label budget, share of devices")] = 0.1,
        oracle_delay: Annotated[float, typer.Option(
            min=0, help="simulated seconds before the oracle answers")] = 60.0,
        rate: Annotated[float | None, typer.Option(
            min=1, help="devices per wall-clock second (default: as fast as it goes)")] = None,
        hold: Annotated[float, typer.Option(
            min=0, help="keep serving /metrics this many seconds after the run")] = 0.0,
    ) -> None:
        """Run the whole loop in one process on a simulated floor (no broker needed)."""
        from consumers.bench.console import wide_console
        from consumers.demo.run import DemoOptions, run_demo

        if strategy not in ("random", "fixed", "variable", "randomized", "hybrid"):
            raise typer.BadParameter(f"{strategy!r}; choose random, fixed, variable, "
                                     "randomized or hybrid", param_hint="--strategy")
        from stream_al.errors import ConfigError

        try:
            run_demo(DemoOptions(records, seed, out, metrics_port, strategy, budget,
                                 oracle_delay, rate, hold), wide_console())
        except ConfigError as error:
            typer.echo(f"stream-al demo: {error}", err=True)
            raise typer.Exit(2) from None
