"""``stream-al bench soak``: steady traffic through the daemon with kill -9s, broker
stops and label bursts; exit 1 if anything was lost or stalled."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from consumers.cli import Cli
from consumers.settings import KafkaClient

if TYPE_CHECKING:
    from rich.console import Console


def register(cli: Cli) -> None:
    @cli.bench.command("soak")
    def bench_soak(
        minutes: Annotated[float, typer.Option(min=0.5, help="minutes of traffic")] = 20.0,
        rate: Annotated[float, typer.Option(min=1, help="records/s sent")] = 200.0,
        kill_every: Annotated[float, typer.Option(
            min=0, help="seconds between kill -9s of the daemon; 0: none")] = 240.0,
        broker_stop_every: Annotated[float, typer.Option(
            min=0, help="seconds between broker stops (own broker only); 0: none")] = 420.0,
        broker_down: Annotated[float, typer.Option(
            min=0, help="seconds the broker stays stopped")] = 20.0,
        label_burst_every: Annotated[float, typer.Option(
            min=1, help="the oracle answers everything it holds this often (s)")] = 45.0,
        stall: Annotated[float, typer.Option(
            min=1, help="input waiting and no new prediction this long (s) is a stall")]
        = 10.0,
        bootstrap_servers: Annotated[str | None, typer.Option(
            help="host:port list of a broker to use (never stopped); default: start a "
                 "local Apache Kafka and stop it after")] = None,
        client: Annotated[KafkaClient, typer.Option(
            help="kafka.client of the daemon and of the soak's own clients (the "
                 "daemon's default, confluent)")]
        = "confluent",
        out: Annotated[Path, typer.Option(help="results as JSON")]
        = Path("bench-results/soak.json"),
        plot: Annotated[Path | None, typer.Option(help="throughput and RSS PNG")]
        = Path("bench-results/soak.png"),
    ) -> None:
        """A bounded soak of ``stream-al run``: records in, predictions out, labels
        learnt, stalls, restarts and RSS over time; every record must get a prediction
        and the final state every label."""
        from consumers.bench.console import wide_console
        from consumers.bench.soak.options import SoakOptions
        from consumers.bench.soak.report import plot as plot_results
        from consumers.bench.soak.report import show
        from consumers.bench.soak.run import run_soak
        from stream_al.errors import StreamAlError

        options = SoakOptions(
            minutes=minutes, rate=rate, kill_every_s=kill_every or None,
            broker_stop_every_s=broker_stop_every or None, broker_down_s=broker_down,
            label_burst_every_s=label_burst_every, stall_s=stall,
            bootstrap_servers=bootstrap_servers, client=client, out=out, plot=plot)
        console = wide_console()
        _log_warnings(console)
        try:
            result = run_soak(options, console)
        except StreamAlError as error:
            typer.echo(f"stream-al bench soak: {error}", err=True)
            raise typer.Exit(1) from None
        show(result, console)
        console.print(f"results written to {out}")
        if plot:
            plot_results(result, plot)
            console.print(f"plot written to {plot}")
        if not result["verdict"]["ok"]:
            raise typer.Exit(1)


def _log_warnings(console: Console) -> None:
    """Warnings print above the progress bar; kafka-python's retries while the broker
    is stopped (it is, on purpose) stay out."""
    import logging

    from rich.logging import RichHandler

    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s",
                        handlers=[RichHandler(console=console, show_path=False)])
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
