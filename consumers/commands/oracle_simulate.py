"""``stream-al oracle simulate``: an automatic oracle for demos, tests and benchmarks."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Annotated

import typer

from consumers.cli import Cli
from consumers.commands import _options as shared
from consumers.stopping import StopRequest


def register(cli: Cli) -> None:
    @cli.oracle.command("simulate")
    def simulate(
        config: shared.ConfigOption = None,
        bootstrap_servers: shared.BootstrapOption = None,
        truth: Annotated[Path | None, typer.Option(
            help="CSV (record_id,label) or JSONL of true labels; default: the label inside "
                 "each request's record", exists=True, dir_okay=False)] = None,
        delay: Annotated[float, typer.Option(min=0, help="seconds before answering")] = 1.0,
        noise: Annotated[float, typer.Option(min=0, max=1, help="share of wrong labels")] = 0.0,
        per_minute: Annotated[float | None, typer.Option(
            min=0.001, help="capacity: at most this many labels a minute")] = None,
        labeler: Annotated[str, typer.Option(help="name on each label")] = "simulator",
        seed: Annotated[int, typer.Option(help="seed of the label noise")] = 0,
        idle_exit: Annotated[float | None, typer.Option(
            help="exit after this many seconds with nothing to do")] = None,
        max_labels: Annotated[int | None, typer.Option(min=1, help="exit after N labels")]
        = None,
        progress_every: Annotated[float, typer.Option(
            min=0.1, help="seconds between progress lines (only when something changed)")]
        = 10.0,
    ) -> None:
        """Answer oracle requests from ground truth, after a delay, with optional noise.

        A request with no truth (no --truth entry, no label in its record) is not answered
        and offsets are not committed past it: it is read again at the next start."""
        from consumers.oracle.simulate import make_oracle, run_oracle

        shared.setup_logging(fmt="%(asctime)s %(levelname)s %(message)s")
        settings = shared.settings_or_exit("oracle simulate", config, bootstrap_servers)
        try:
            oracle = make_oracle(delay, noise, per_minute, seed, labeler, truth)
        except ValueError as error:
            shared.fail("oracle simulate", error)
        stop = StopRequest()
        stop.install(signal.SIGTERM, signal.SIGINT)
        from consumers.kafka.reach import EXIT_NO_BROKER
        from stream_al.errors import BrokerUnavailable

        try:
            code = run_oracle(settings, oracle, stop, idle_exit_s=idle_exit,
                              max_labels=max_labels, progress_every_s=progress_every)
        except BrokerUnavailable as error:
            shared.fail("oracle simulate", error, EXIT_NO_BROKER)
        raise typer.Exit(code)
