"""How ``stream-al bench soak`` shows its results: a rich table and a PNG of
throughput and RSS over time, disruptions and stalls marked."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from consumers.bench.soak.options import Row


def summary_rows(result: Row) -> list[tuple[str, str]]:
    """(what, figure) lines of the verdict."""
    predictions, labels, restarts = result["predictions"], result["labels"], result["restarts"]
    overall = result["rss"]["overall"]
    recovered = [r["recovered_after_s"] for r in result["recoveries"]
                 if r["recovered_after_s"] is not None]
    rows = [
        ("records in (acknowledged)", f"{predictions['produced']:,}"),
        ("records with a prediction", f"{predictions['with_prediction']:,} "
                                      f"({predictions['missing']:,} missing)"),
        ("prediction messages", f"{predictions['prediction_messages']:,} "
                                "(a record scored again after a kill -9 counts again)"),
        ("labels sent / queries answered", f"{labels['labels_sent']:,} / "
                                           f"{labels['queries_answered']:,}"),
        ("labels learnt by the final state", _maybe(labels["learned_in_final_state"])
         + f" (lost: {_maybe(labels['lost'])})"),
        ("kill -9s / broker stops", f"{restarts['kills']} / {restarts['broker_stops']}"),
        ("unexpected daemon exits", str(len(restarts["unexpected_exits"]))),
        ("recovery after a disruption", f"max {max(recovered):.0f} s" if recovered else "—"),
        (f"stalls > {result['settings']['stall_s']:.0f} s", str(len(result["stalls"]))),
    ]
    if overall is not None:
        rows.append(("RSS, first → last quarter median",
                     f"{overall['first_quarter_median_mb']:.0f} → "
                     f"{overall['last_quarter_median_mb']:.0f} MB "
                     f"({overall['change']:+.1%}; ±{overall['tolerance']:.0%}: "
                     f"{'within' if overall['within_tolerance'] else 'OUTSIDE'})"))
        if "late_change" in overall:  # results written before it was measured lack it
            rows.append(("RSS, third → last quarter median",
                         f"{overall['third_quarter_median_mb']:.0f} → "
                         f"{overall['last_quarter_median_mb']:.0f} MB "
                         f"({overall['late_change']:+.1%}; ±{overall['tolerance'] / 2:.0%}: "
                         f"{'levelled off' if overall['levelled_off'] else 'STILL GROWING'})"))
    load = result.get("machine", {}).get("load_average_after")
    if load:
        rows.append(("load average after (1, 5, 15 min)", ", ".join(f"{x:.2f}" for x in load)))
    return rows


def show(result: Row, console: Console) -> None:
    table = Table(title=f"stream-al bench soak ({result['settings']['minutes']:g} min)")
    table.add_column("")
    table.add_column("", justify="right")
    for what, figure in summary_rows(result):
        table.add_row(what, figure)
    console.print(table)
    found = result["verdict"]
    if found["ok"]:
        console.print("[green]nothing lost, no stall[/green]")
    else:
        console.print("[red]" + "; ".join(found["reasons"]) + "[/red]")


def rates(samples: Sequence[Row], field: str) -> tuple[list[float], list[float]]:
    """Per-interval rate of a cumulative field: (midpoint times, per second).

    >>> rates([{"t": 0, "n": 0}, {"t": 2, "n": 10}], "n")
    ([1.0], [5.0])
    """
    times, values = [], []
    for before, after in pairwise(samples):
        span = after["t"] - before["t"]
        if span > 0:
            times.append((before["t"] + after["t"]) / 2)
            values.append((after[field] - before[field]) / span)
    return times, values


def plot(result: Row, path: Path) -> None:
    """Two panels over the run's minutes: records in and first predictions per second,
    and the daemon's RSS; kills, broker stops and stalls marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    samples = result["samples"]
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(11, 7), sharex=True)
    for field, name in (("produced", "records in /s"), ("predicted", "records predicted /s")):
        times, values = rates(samples, field)
        top.plot([t / 60 for t in times], values, label=name, linewidth=0.9)
    top.set_ylabel("records / s")
    points = [(s["t"] / 60, s["rss_mb"]) for s in samples if s["rss_mb"] is not None]
    if points:
        bottom.plot(*zip(*points, strict=True), color="tab:purple", linewidth=0.9)
    bottom.set_ylabel("daemon RSS (MB)")
    bottom.set_xlabel("minutes")
    for axis in (top, bottom):
        _mark(axis, result)
        axis.grid(alpha=0.3)
    top.legend(fontsize=8, loc="upper right")
    verdict = "nothing lost, no stall" if result["verdict"]["ok"] else \
        "; ".join(result["verdict"]["reasons"])
    figure.suptitle(f"stream-al bench soak: {verdict}\n(red line: kill -9; grey: broker "
                    "stopped; red band: stall)", fontsize=10)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _mark(axis: Any, result: Row) -> None:  # a matplotlib Axes (untyped)
    for event in result["recoveries"]:
        start, end = event["start"] / 60, event["end"] / 60
        if event["kind"] == "broker":
            axis.axvspan(start, end, color="grey", alpha=0.25)
        else:
            axis.axvline(start, color="red", linestyle="--", linewidth=0.8)
    for stall in result["stalls"]:
        axis.axvspan(stall["start"] / 60, stall["end"] / 60,
                     color="red", alpha=0.3)


def _maybe(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"
