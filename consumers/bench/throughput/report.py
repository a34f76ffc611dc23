"""How ``stream-al bench throughput`` shows its results: rich tables and a PNG."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from consumers.bench.throughput.options import Row

_LATENCIES = {"produce_to_consumed": "send → prediction consumed",
              "produce_to_daemon_send": "send → daemon sends prediction"}


def rate_rows(result: Row) -> list[Row]:
    """One row per measured loop: steady and wall records/s, the share of the bare
    decoding consumer's rate, µs per record, and a note."""
    ceiling = result["ratios"]["bare_decoded_records_per_s"]
    producer = result["producer"]
    rows = [_row("producer (acks=all, idempotent)", producer["records_per_s"], None, ceiling,
                 f"{producer['mb_per_s']:.1f} MB/s")]
    for kind, name in (("raw", "bare consumer, raw"), ("decoded", "bare consumer, json.loads"),
                       ("decoded_after", "bare consumer, json.loads, after")):
        bare = result["bare_consumer"][kind]
        rows.append(_row(name, bare["records_per_s"], bare["records_per_s_wall"], ceiling,
                         f"group join {bare['startup_s']:.1f} s"))
    for template, run in result["pipeline"].items():
        rows.append(_row(f"daemon, {template}", run["records_per_s"], run["records_per_s_wall"],
                         ceiling, f"start-up {run['startup_s']:.1f} s, "
                         f"{run['labels_applied']} labels learnt, {run['requests']} queries"))
    for template, run in result["inmemory"].items():
        daemon = result["pipeline"].get(template, {}).get("records_per_s")
        kafka_us = 1e6 / daemon - run["us_per_record"] if daemon else None
        note = f"{run['labels_applied']} labels learnt"
        if kafka_us is not None:
            note += f"; the daemon spends {kafka_us:.0f} µs/record more"
        rows.append(_row(f"in-memory pipeline, {template}", run["records_per_s"], None, ceiling,
                         note))
    return rows


def verdict(result: Row) -> str:
    """DESIGN §7's target in one sentence."""
    ratios = result["ratios"]
    template, target = ratios["target_template"], ratios["target"]
    measured = ratios.get(f"{template}_vs_bare_decoded")
    if measured is None:
        return f"DESIGN §7 target (≥ {target:.2f}): not measured ({template} not run)"
    met = "met" if ratios["target_met"] else "NOT met"
    return (f"DESIGN §7: the daemon with the {template} template runs at {measured:.2f} × "
            f"the bare decoding consumer (target ≥ {target:.2f}): {met}")


def show(result: Row, console: Console) -> None:
    console.print(rates_table(result))
    console.print(latency_table(result["latency"]))
    console.print(verdict(result))


def rates_table(result: Row) -> Table:
    sizes, machine = result["record_bytes"], result["machine"]
    table = Table(title=f"stream-al bench throughput — {result['settings']['records']:,} "
                  f"records of {sizes['mean']:,.0f} bytes ({sizes['measurements']} "
                  f"measurements), {result['settings']['partitions']} partitions, "
                  f"{machine['kafka']}, {machine['cores']} cores")
    for header in ("loop", "records/s", "records/s from start", "× bare json.loads",
                   "µs/record", "notes"):
        table.add_column(header, justify="left" if header in ("loop", "notes") else "right")
    for row in rate_rows(result):
        table.add_row(row["loop"], _number(row["records_per_s"]),
                      _number(row["records_per_s_wall"]), _share(row["share"]),
                      _number(row["us_per_record"]), row["note"])
    return table


def latency_table(latency: Row) -> Table:
    table = Table(title=f"latency, daemon ({latency['template']}) fed at "
                  f"{latency['rate_achieved']:,.0f} records/s for {latency['seconds']:.0f} s "
                  f"({latency['received']:,}/{latency['sent']:,} predictions seen)")
    for header in ("from → to", "p50 ms", "p95 ms", "p99 ms", "max ms"):
        table.add_column(header, justify="left" if header == "from → to" else "right")
    for key, name in _LATENCIES.items():
        summary = latency[key]
        table.add_row(name, *(f"{summary[f]:.1f}" if f in summary else "–"
                              for f in ("p50_ms", "p95_ms", "p99_ms", "max_ms")))
    return table


def plot(result: Row, path: Path) -> None:
    """Records/s per loop (with DESIGN §7's target line) beside the latency percentiles."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (rates_axis, latency_axis) = plt.subplots(
        1, 2, figsize=(14, 5.2), gridspec_kw={"width_ratios": [1.6, 1]})
    _plot_rates(rates_axis, result)
    _plot_latency(latency_axis, result["latency"])
    figure.suptitle(f"stream-al bench throughput — {result['machine']['kafka']}, "
                    f"{result['machine']['cores']} cores, "
                    f"{result['record_bytes']['mean']:,.0f}-byte records")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _plot_rates(axis: Any, result: Row) -> None:
    rows = [r for r in rate_rows(result) if r["records_per_s"]]
    names = [r["loop"] for r in rows][::-1]
    values = [r["records_per_s"] for r in rows][::-1]
    colours = ["tab:orange" if n.startswith("daemon") else "tab:green"
               if n.startswith("in-memory") else "tab:blue" for n in names]
    bars = axis.barh(names, values, color=colours)
    for bar, row in zip(bars, rows[::-1], strict=True):
        axis.annotate(f" {row['records_per_s']:,.0f}  ({_share(row['share'])})",
                      (bar.get_width(), bar.get_y() + bar.get_height() / 2),
                      va="center", fontsize=8)
    target = result["ratios"]["target"] * result["ratios"]["bare_decoded_records_per_s"]
    axis.axvline(target, color="tab:red", linestyle="--", linewidth=1)
    axis.annotate(" DESIGN §7 target", (target, len(names) - 0.5), color="tab:red",
                  fontsize=8)
    axis.set_xlabel("records/s, first to last record (× the mean bare json.loads consumer)")
    axis.set_xlim(0, max(values) * 1.35)
    axis.grid(axis="x", alpha=0.3)


def _plot_latency(axis: Any, latency: Row) -> None:
    quantiles = ("p50_ms", "p95_ms", "p99_ms")
    width = 0.38
    for offset, (key, name) in enumerate(_LATENCIES.items()):
        summary = latency[key]
        xs = [i + (offset - 0.5) * width for i in range(len(quantiles))]
        bars = axis.bar(xs, [summary.get(q, 0.0) for q in quantiles], width, label=name)
        axis.bar_label(bars, fmt="%.1f", fontsize=8)
    axis.set_xticks(range(len(quantiles)), [q.removesuffix("_ms") for q in quantiles])
    axis.set_ylabel("milliseconds")
    axis.set_title(f"latency at {latency['rate_achieved']:,.0f} records/s "
                   f"({latency['template']})", fontsize=10)
    axis.legend(fontsize=8)
    axis.grid(axis="y", alpha=0.3)


def _row(loop: str, steady: float | None, wall: float | None, ceiling: float,
         note: str) -> Row:
    return {"loop": loop, "records_per_s": steady, "records_per_s_wall": wall,
            "share": steady / ceiling if steady and ceiling else None,
            "us_per_record": 1e6 / steady if steady else None, "note": note}


def _number(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f}"


def _share(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}×"
