"""``stream-al bench throughput``: the daemon against bare clients and peers on a real
broker."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, get_args

import typer

from consumers.cli import Cli

if TYPE_CHECKING:
    from rich.console import Console

    from stream_al.models import TemplateName


def register(cli: Cli) -> None:
    @cli.bench.command("throughput")
    def bench_throughput(
        records: Annotated[int, typer.Option(min=2, help="records in the shared topic")]
        = 50_000,
        bootstrap_servers: Annotated[str | None, typer.Option(
            help="host:port list of a broker to use; default: start a local Apache Kafka "
                 "and stop it after")] = None,
        templates: Annotated[str, typer.Option(
            help="comma-separated model templates to run the daemon with")] = "logistic,arf",
        latency_rate: Annotated[list[float] | None, typer.Option(
            min=1, help="records/s sent during a latency run (repeatable: one run per "
                        "rate; default 500)")] = None,
        latency_seconds: Annotated[float, typer.Option(
            min=0.1, help="seconds of the latency run")] = 20.0,
        partitions: Annotated[int, typer.Option(min=1, help="partitions per topic")] = 6,
        rounds: Annotated[int, typer.Option(
            min=1, help="every arm runs once per round, in the same order each round; "
                        "each figure is the median (and min–max) of the rounds")] = 3,
        budget: Annotated[float, typer.Option(
            min=0.001, max=1.0, help="label budget B of the daemon")] = 0.1,
        oracle: Annotated[bool, typer.Option(
            help="answer the daemon's queries at once from the truth, so it learns "
                 "as it would on a floor")] = True,
        fetch_wait_ms: Annotated[int, typer.Option(
            min=1, max=30_000, help="the daemon's kafka.fetch_max_wait_ms (how long a fetch "
                                    "waits at the broker for records)")] = 500,
        replicas: Annotated[int, typer.Option(
            min=1, max=16, help="scale-out arms: this many daemons in one group against "
                                "one (1: leave them out)")] = 2,
        out: Annotated[Path, typer.Option(help="results as JSON")]
        = Path("bench-results/throughput.json"),
        plot: Annotated[Path | None, typer.Option(help="records/s and latency PNG")]
        = Path("bench-results/throughput.png"),
    ) -> None:
        """Records/s of the producers, bare consumers, the daemon and its peers (a Quix
        Streams app and a confluent-kafka loop around the same River model, which need
        the project's bench extra) on one topic of identical records, in interleaved
        rounds; and produce→prediction latency at a fixed rate."""
        from consumers.bench.console import wide_console
        from consumers.bench.throughput.options import ThroughputOptions
        from consumers.bench.throughput.report import plot as plot_results
        from consumers.bench.throughput.report import show
        from consumers.bench.throughput.run import run_bench
        from stream_al.errors import StreamAlError

        options = ThroughputOptions(
            records=records, bootstrap_servers=bootstrap_servers,
            templates=_templates(templates), latency_rates=tuple(latency_rate or [500.0]),
            latency_seconds=latency_seconds, out=out, plot=plot, partitions=partitions,
            budget=budget, oracle=oracle, rounds=rounds, fetch_wait_ms=fetch_wait_ms,
            replicas=replicas)
        console = wide_console()
        _log_above_progress(console)
        try:
            result = run_bench(options, console)
        except StreamAlError as error:
            typer.echo(f"stream-al bench throughput: {error}", err=True)
            raise typer.Exit(1) from None
        console.print(f"mean record size {result['record_bytes']['mean']:,.0f} bytes")
        show(result, console)
        console.print(f"results written to {out}")
        if plot:
            plot_results(result, plot)
            console.print(f"plot written to {plot}")


def _templates(text: str) -> tuple[TemplateName, ...]:
    from stream_al.models import TemplateName

    known = get_args(TemplateName)
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    for name in names:
        if name not in known:
            raise typer.BadParameter(f"{name!r}; choose from {', '.join(known)}",
                                     param_hint="--templates")
    if not names:
        raise typer.BadParameter("name at least one template", param_hint="--templates")
    return names  # type: ignore[return-value]  # each checked against the Literal above


def _log_above_progress(console: Console) -> None:
    """Warnings print above the progress bars; kafka-python's narration of every
    connection (INFO) and its retried metadata hiccups (WARNING) stay out."""
    import logging

    from rich.logging import RichHandler

    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s",
                        handlers=[RichHandler(console=console, show_path=False)])
    logging.getLogger("kafka").setLevel(logging.ERROR)
