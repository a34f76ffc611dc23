"""``stream-al bench novelty``: novelty detectors and gates against the floor's rare mode."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from consumers.cli import Cli


def register(cli: Cli) -> None:
    @cli.bench.command("novelty")
    def bench_novelty(
        records: Annotated[int, typer.Option(min=200, help="simulated devices per seed")]
        = 20_000,
        seeds: Annotated[int, typer.Option(min=1, help="seeds (0, 1, …)")] = 3,
        budget: Annotated[float, typer.Option(min=0.001, max=1.0,
                                              help="label budget of the gate arms")] = 0.1,
        sensor_columns: Annotated[int, typer.Option(
            min=0, max=2000, help="uninformative equipment sensor columns added to every "
                                  "record (a fab's wide vectors)")] = 0,
        out: Annotated[Path, typer.Option(help="results as JSON")]
        = Path("bench-results/novelty.json"),
        table: Annotated[Path, typer.Option(help="results as a markdown table")]
        = Path("bench-results/novelty.md"),
        plot: Annotated[Path, typer.Option(help="AUCs and rare-mode queries PNG")]
        = Path("bench-results/novelty.png"),
    ) -> None:
        """How well each novelty detector separates the floor simulator's rare failure
        mode (AUC), and how soon the hybrid gate with each detector, the default strategy
        and random query it, at one budget with the same oracle."""
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        from consumers.bench.console import wide_console
        from consumers.bench.novelty.run import (
            ARMS,
            DETECTORS,
            floor_stream,
            markdown,
            search,
            separation,
            write,
        )
        from consumers.demo.arms import Pace

        console = wide_console()
        progress = Progress(TextColumn("{task.description}"), BarColumn(),
                            MofNCompleteColumn(), console=console)
        passes = seeds * (len(DETECTORS) + len(ARMS))
        task = progress.add_task("records scored", total=passes * records)
        separations, searches = [], []
        begins = 0
        with progress:
            for seed in range(seeds):
                stream, begins = floor_stream(records, seed, sensor_columns)
                for detector in DETECTORS:
                    progress.update(task, description=f"seed {seed}: {detector} separation")
                    separations.append(separation(detector, stream, begins, seed,
                                                  lambda n: progress.advance(task, n)))
                lead: dict[str, int] = {}
                for arm in ARMS:
                    progress.update(task, description=f"seed {seed}: {arm.name}")
                    pace = Pace(active_after=dict(lead)) if arm.paced else None
                    found, asked_after = search(arm, stream, seed, budget,
                                                lambda n: progress.advance(task, n), pace)
                    lead = lead or asked_after  # the first arm sets the pace
                    searches.append(found)
        from consumers.bench.novelty.run import plot as draw

        meta = {"records": records, "seeds": seeds, "budget": budget,
                "sensor_columns": sensor_columns,
                "rare_mode_begins": begins}
        write(out, separations, searches, meta)
        text = markdown(separations, searches)
        table.parent.mkdir(parents=True, exist_ok=True)
        table.write_text(text, encoding="utf-8")
        draw(plot, records, begins, searches, separations)
        console.print(text)
        console.print(f"results written to {out}, {table} and {plot}")
