"""How ``stream-al bench throughput`` shows its results: rich tables and a PNG."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from consumers.bench.throughput.options import Row, skip_line

_LATENCIES = {"produce_to_consumed": "send → prediction consumed",
              "produce_to_daemon_send": "send → daemon sends prediction"}


#: The paired ratios shown, in order, with what they divide.
RATIO_NAMES = {"daemon_vs_quix_peer": "daemon / Quix Streams peer",
               "daemon_vs_confluent_peer": "daemon / confluent-kafka peer",
               "daemon_vs_bare_decoded": "daemon / bare kafka-python consumer, json.loads",
               "daemon_vs_min_consume_produce":
                   "daemon / min(kafka-python consume json.loads, produce)",
               "daemon_confluent_vs_daemon": "daemon on confluent-kafka / on kafka-python",
               "daemon_confluent_vs_quix_peer": "daemon on confluent-kafka / Quix Streams peer",
               "daemon_confluent_vs_confluent_peer":
                   "daemon on confluent-kafka / confluent-kafka peer",
               "replicas_vs_one": "N replicas in one group / one replica"}


def rate_rows(result: Row) -> list[Row]:
    """One row per arm, in the order run: the median and min–max of its steady records/s
    across rounds, the median wall rate, the share of the bare decoding consumer's
    median rate, CPU µs per record (median), and a note from its first round."""
    ceiling = result["ratios"]["bare_decoded_records_per_s"]["median"]
    first = result["rounds"][0]["arms"] if result["rounds"] else {}
    rows = []
    for name, arm in result["arms"].items():
        steady = arm["records_per_s"]
        rows.append({"arm": name, "loop": arm["label"], "records_per_s": steady["median"],
                     "min": steady["min"], "max": steady["max"], "rounds": steady["n"],
                     "records_per_s_wall": arm["records_per_s_wall"]["median"],
                     "share": steady["median"] / ceiling if steady["median"] and ceiling
                     else None, "cpu_us_per_record": arm["cpu_us_per_record"]["median"],
                     "note": _note(name, first.get(name, {}))})
    return rows


def _note(name: str, row: Row) -> str:
    if name.startswith("producer"):
        return f"{row['mb_per_s']:.1f} MB/s" if "mb_per_s" in row else ""
    if name.startswith("consumer"):
        return f"group join {row['startup_s']:.1f} s" if "startup_s" in row else ""
    if name.startswith("scale"):
        return (f"records per replica {row.get('records_per_replica')}, labels learnt per "
                f"replica {row.get('labels_learnt_per_replica')}")
    if name.startswith("daemon"):
        return (f"start-up {row.get('startup_s', 0):.1f} s, {row.get('labels_applied', 0)} "
                f"labels learnt, {row.get('requests', 0)} queries")
    if name.startswith("peer"):
        return (f"start-up {row.get('startup_s', 0):.1f} s, {row.get('labels_applied', 0)} "
                f"labels learnt; no imputer, gate, checkpoint, metrics or validation")
    return f"{row.get('labels_applied', 0)} labels learnt"


def verdict(result: Row) -> str:
    """DESIGN §7's target in one sentence, and the daemon against the peers."""
    ratios = result["ratios"]
    template, target = ratios["target_template"], ratios["target"]
    measured = ratios["daemon_vs_bare_decoded"]["median"]
    if measured is None:
        return f"DESIGN §7 target (≥ {target:.2f}): not measured ({template} not run)"
    met = "met" if ratios["target_met"] else "NOT met"
    lines = [f"DESIGN §7: the daemon with the {template} template runs at {measured:.2f} × "
             f"the bare decoding consumer (median of rounds, target ≥ {target:.2f}): {met}"]
    for key in ("daemon_vs_quix_peer", "daemon_vs_confluent_peer",
                "daemon_confluent_vs_daemon", "daemon_confluent_vs_quix_peer"):
        ratio = ratios.get(key, {"median": None})  # results from before the confluent arm
        if ratio["median"] is not None:
            lines.append(f"{RATIO_NAMES[key]}: {ratio['median']:.2f} × "
                         f"({ratio['min']:.2f}–{ratio['max']:.2f}, {ratio['n']} rounds)")
    return "\n".join(lines)


def show(result: Row, console: Console) -> None:
    console.print(rates_table(result))
    console.print(ratios_table(result))
    loads = ", ".join(f"r{r['round']} {r['load_average_before'][0]:.2f}→"
                      f"{r['load_average_after'][0]:.2f}" for r in result["rounds"])
    console.print(f"load average (1 min) before→after each round: {loads}")
    if result["skipped"]:
        console.print(skip_line(result["skipped"]), markup=False, highlight=False)
    for latency in result.get("latency_runs", [result["latency"]]):
        console.print(latency_table(latency))
    console.print(verdict(result))


def rates_table(result: Row) -> Table:
    sizes, machine = result["record_bytes"], result["machine"]
    table = Table(title=f"stream-al bench throughput — {result['settings']['records']:,} "
                  f"records of {sizes['mean']:,.0f} bytes ({sizes['measurements']} "
                  f"measurements), {result['settings']['partitions']} partitions, "
                  f"{machine['kafka']}, {machine['cores']} cores, "
                  f"{len(result['rounds'])} interleaved rounds")
    for header in ("loop", "records/s (median)", "min–max", "from start", "× bare json.loads",
                   "CPU µs/record", "notes"):
        table.add_column(header, justify="left" if header in ("loop", "notes") else "right")
    for row in rate_rows(result):
        spread = ("–" if row["min"] is None
                  else f"{_number(row['min'])}–{_number(row['max'])}")
        table.add_row(row["loop"], _number(row["records_per_s"]), spread,
                      _number(row["records_per_s_wall"]), _share(row["share"]),
                      _number(row["cpu_us_per_record"], ".1f"), row["note"])
    return table


def ratios_table(result: Row) -> Table:
    table = Table(title="ratios, paired within each round")
    for header in ("ratio", "median", "min–max", "per round"):
        table.add_column(header, justify="left" if header == "ratio" else "right")
    for key, name in RATIO_NAMES.items():
        ratio = result["ratios"].get(key)
        if ratio is None:  # results from before that arm existed
            continue
        table.add_row(name, _share(ratio["median"]),
                      "–" if ratio["min"] is None
                      else f"{ratio['min']:.2f}–{ratio['max']:.2f}",
                      " ".join(_share(v) for v in ratio["per_round"]))
    return table


def latency_table(latency: Row) -> Table:
    table = Table(title=f"latency, daemon ({latency['template']}) fed at "
                  f"{latency['rate_achieved']:,.0f} records/s for {latency['seconds']:.0f} s "
                  f"({latency['received']:,}/{latency['sent']:,} predictions seen), "
                  f"fetch wait {latency.get('fetch_max_wait_ms', 500)} ms")
    for header in ("from → to", "p50 ms", "p95 ms", "p99 ms", "max ms"):
        table.add_column(header, justify="left" if header == "from → to" else "right")
    for key, name in _LATENCIES.items():
        summary = latency[key]
        table.add_row(name, *(f"{summary[f]:.1f}" if f in summary else "–"
                              for f in ("p50_ms", "p95_ms", "p99_ms", "max_ms")))
    return table


def plot(result: Row, path: Path) -> None:
    """Records/s per arm, median and min–max of the rounds (with DESIGN §7's target line),
    beside the latency percentiles."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (rates_axis, latency_axis) = plt.subplots(
        1, 2, figsize=(14, 5.2), gridspec_kw={"width_ratios": [1.6, 1]})
    _plot_rates(rates_axis, result)
    _plot_latency(latency_axis, result.get("latency_runs", [result["latency"]]))
    figure.suptitle(f"stream-al bench throughput — {result['machine']['kafka']}, "
                    f"{result['machine']['cores']} cores, "
                    f"{result['record_bytes']['mean']:,.0f}-byte records")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _plot_rates(axis: Any, result: Row) -> None:
    rows = [r for r in rate_rows(result) if r["records_per_s"]][::-1]
    names = [r["loop"] for r in rows]
    values = [r["records_per_s"] for r in rows]
    spans = [[v - r["min"] for v, r in zip(values, rows, strict=True)],
             [r["max"] - v for v, r in zip(values, rows, strict=True)]]
    colours = ["tab:orange" if r["arm"].startswith(("daemon", "scale")) else "tab:green"
               if r["arm"].startswith("inmemory") else "tab:purple"
               if r["arm"].startswith("peer") else "tab:blue" for r in rows]
    bars = axis.barh(names, values, xerr=spans, color=colours, error_kw={"linewidth": 0.8})
    for bar, row in zip(bars, rows, strict=True):
        axis.annotate(f" {row['records_per_s']:,.0f}  ({_share(row['share'])})",
                      (row["max"], bar.get_y() + bar.get_height() / 2),
                      va="center", fontsize=8)
    ratios = result["ratios"]
    if ratios["bare_decoded_records_per_s"]["median"]:
        target = ratios["target"] * ratios["bare_decoded_records_per_s"]["median"]
        axis.axvline(target, color="tab:red", linestyle="--", linewidth=1)
        axis.annotate(" DESIGN §7 target", (target, len(names) - 0.5), color="tab:red",
                      fontsize=8)
    axis.set_xlabel(f"records/s, first to last record, log scale: median and min–max of "
                    f"{len(result['rounds'])} rounds (× the bare json.loads consumer)")
    # Log: a bare raw consumer runs hundreds of times the daemon's rate; linear, the
    # daemon's bar would not show.
    axis.set_xscale("log")
    axis.set_xlim(min(r["min"] for r in rows) / 2, max(r["max"] for r in rows) * 6)
    axis.grid(axis="x", alpha=0.3)


def _plot_latency(axis: Any, runs: Sequence[Row]) -> None:
    """p50/p95/p99 of each latency run (one bar per run and span measured)."""
    quantiles = ("p50_ms", "p95_ms", "p99_ms")
    series = [(f"{name}" if len(runs) == 1 else f"{name}, {run['rate_achieved']:,.0f}/s",
               run[key]) for run in runs for key, name in _LATENCIES.items()]
    width = 0.8 / len(series)
    heights = []
    for offset, (name, summary) in enumerate(series):
        xs = [i + (offset - (len(series) - 1) / 2) * width for i in range(len(quantiles))]
        values = [summary.get(q, 0.0) for q in quantiles]
        heights += [v for v in values if v > 0]
        bars = axis.bar(xs, values, width, label=name)
        axis.bar_label(bars, fmt="%.0f" if len(series) > 2 else "%.1f", fontsize=7)
    if heights and max(heights) > 50 * min(heights):
        axis.set_yscale("log")  # a rate the daemon cannot keep up with: seconds beside ms
    axis.set_xticks(range(len(quantiles)), [q.removesuffix("_ms") for q in quantiles])
    axis.set_ylabel("milliseconds")
    rates = ", ".join(f"{run['rate_achieved']:,.0f}" for run in runs)
    axis.set_title(f"latency at {rates} records/s ({runs[0]['template']})", fontsize=10)
    axis.legend(fontsize=7)
    axis.grid(axis="y", alpha=0.3)


def _number(value: float | None, spec: str = ",.0f") -> str:
    return "–" if value is None else format(value, spec)


def _share(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}×"
