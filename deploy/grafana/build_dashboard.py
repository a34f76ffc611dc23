"""The stream-al Grafana dashboard, as code.

Built with grafana-foundation-sdk for the Grafana version in GRAFANA_TARGET (the image
pinned in docker-compose.yml). Edit this file, never the JSON, then regenerate:

    .venv/bin/python deploy/grafana/build_dashboard.py          # rewrites dashboards/stream-al.json
    .venv/bin/python deploy/grafana/build_dashboard.py --check  # exit 1 if the JSON is stale

tests/unit/test_deploy.py fails when the committed JSON differs from ``render()``, and
tests/observability/test_prometheus.py runs every expression below on a real Prometheus.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard, heatmap, prometheus, stat, timeseries
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DataSourceRef,
    Panel,
    Threshold,
    ThresholdsMode,
    VariableOption,
    VariableRefresh,
    VariableSort,
)
from grafana_foundation_sdk.models.heatmap import HeatmapColorMode
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

GRAFANA_TARGET = "11.6.0"
UID = "stream-al"
OUTPUT = Path(__file__).parent / "dashboards" / "stream-al.json"
#: Every panel and variable reads the Prometheus chosen in the ``datasource`` variable, never
#: a fixed uid: a dashboard imported into an existing Grafana then works with its own
#: Prometheus (the variable starts at the default one, which provisioning/datasources sets).
DATASOURCE_VARIABLE = "datasource"
DATASOURCE = DataSourceRef(type_val="prometheus", uid=f"${{{DATASOURCE_VARIABLE}}}")
#: The two template variables every expression may use (the test substitutes both).
RATE = "$__rate_interval"
MODEL = 'model_key=~"$model_key"'

Panels = list[Builder[Panel]]


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str


def _target(query: Query, ref_id: str) -> prometheus.Dataquery:
    return (prometheus.Dataquery().expr(query.expr).legend_format(query.legend)
            .ref_id(ref_id).datasource(DATASOURCE))


def _ref_ids(queries: tuple[Query, ...]) -> list[tuple[Query, str]]:
    return [(query, chr(ord("A") + index)) for index, query in enumerate(queries)]


def _steps(*steps: tuple[float | None, str]) -> dashboard.ThresholdsConfig:
    return (dashboard.ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE)
            .steps([Threshold(value=value, color=color) for value, color in steps]))


def graph(title: str, description: str, unit: str, *queries: Query,
          line_at: float | None = None, span: int = 8) -> timeseries.Panel:
    """A time series panel; ``line_at`` draws a dashed red reference line (a limit)."""
    panel = (timeseries.Panel().title(title).description(description).unit(unit)
             .datasource(DATASOURCE).span(span).height(8).fill_opacity(10)
             .legend(common_builders.VizLegendOptions().show_legend(True)
                     .display_mode(common.LegendDisplayMode.LIST)
                     .placement(common.LegendPlacement.BOTTOM)))
    for query, ref_id in _ref_ids(queries):
        panel = panel.with_target(_target(query, ref_id))
    if line_at is not None:
        panel = (panel.thresholds(_steps((None, "green"), (line_at, "red")))
                 .thresholds_style(common_builders.GraphThresholdsStyleConfig()
                                   .mode(common.GraphThresholdsStyleMode.DASHED)))
    return panel


def uncertainty_heatmap() -> heatmap.Panel:
    query = Query(f"sum by (le) (rate(stream_al_uncertainty_bucket[{RATE}]))", "{{le}}")
    target = _target(query, "A").format(PromQueryFormat.HEATMAP)
    return (heatmap.Panel().title("Uncertainty of scored records")
            .description("Records per second in each uncertainty bin (0 = certain, 1 = "
                         "uniform). Mass moving up means the model is less sure: drift or "
                         "a new product. Records above θ are the ones worth asking about.")
            .datasource(DATASOURCE).span(12).height(8).with_target(target)
            .calculate(False).rows_frame(heatmap.RowsHeatmapOptions()
                                         .layout(common.HeatmapCellLayout.LE))
            .color(heatmap.HeatmapColorOptions().mode(HeatmapColorMode.SCHEME)
                   .scheme("Oranges").fill("dark-orange")))


def checkpoint_age() -> stat.Panel:
    # The gauge reads 0 until the first checkpoint: without the filter the age of a replica
    # that just started is the time since 1970.
    query = Query("time() - (stream_al_last_checkpoint_timestamp_seconds > 0)", "{{instance}}")
    return (stat.Panel().title("Checkpoint age")
            .description("Seconds since each replica last saved models, gate state, pending "
                         "queries and offsets. A restart replays what came after it. Alert "
                         "StreamAlCheckpointStale fires past 5 minutes. A replica that has "
                         "not written its first checkpoint yet is not shown.")
            .datasource(DATASOURCE).span(6).height(6).unit("s").no_value("no checkpoint yet")
            .with_target(_target(query, "A"))
            .thresholds(_steps((None, "green"), (60, "orange"), (300, "red")))
            .color_mode(common.BigValueColorMode.BACKGROUND))


def build_info() -> stat.Panel:
    query = Query("stream_al_build_info",
                  "stream-al {{version}} · Python {{python}} · River {{river}} · {{instance}}")
    return (stat.Panel().title("Running versions")
            .description("One line per replica: stream-al, Python and River versions.")
            .datasource(DATASOURCE).span(6).height(6).with_target(_target(query, "A"))
            .text_mode(common.BigValueTextMode.NAME)
            .color_mode(common.BigValueColorMode.NONE))


def datasource_variable() -> dashboard.DatasourceVariable:
    return (dashboard.DatasourceVariable(DATASOURCE_VARIABLE).label("Prometheus")
            .type("prometheus"))


def model_variable() -> dashboard.QueryVariable:
    return (dashboard.QueryVariable("model_key").label("Model").datasource(DATASOURCE)
            .query("label_values(stream_al_query_threshold, model_key)")
            .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED).sort(VariableSort.ALPHABETICAL_ASC)
            .multi(True).include_all(True).all_value(".*")
            .current(VariableOption(selected=True, text="All", value="$__all")))


def flow_panels() -> Panels:
    return [
        graph("Records/s by kind and outcome",
              "Consumed records per second. predicted: confident, let through; queried: "
              "sent to the oracle; dead_letter: undecodable, on stream-al.dlq.", "ops",
              Query(f"sum by (kind, outcome) (rate(stream_al_records_total[{RATE}]))",
                    "{{kind}} {{outcome}}")),
        graph("Queries/s by reason",
              "Oracle requests per second per model and reason (uncertainty, audit, "
              "novelty, warmup).", "ops",
              Query(f"sum by (model_key, reason) (rate(stream_al_queries_total{{{MODEL}}}"
                    f"[{RATE}]))", "{{model_key}} {{reason}}")),
        graph("Processing time per record p50 / p99",
              "Bytes in to decision out, per record.", "s",
              *[Query(f"histogram_quantile({q}, sum by (le) "
                      f"(rate(stream_al_processing_seconds_bucket[{RATE}])))", f"p{p}")
                for q, p in ((0.5, 50), (0.99, 99))]),
    ]


def oracle_panels() -> Panels:
    return [
        graph("Query rate against the budget",
              "û / B per model: the share of recent records queried over the label budget. "
              "The dashed line at 1 is the budget; the budget manager keeps every model "
              "under it. Alert StreamAlQueryRateAboveBudget fires above 1.1.", "percentunit",
              Query(f"stream_al_budget_spent_ratio{{{MODEL}}}", "{{model_key}}"),
              line_at=1.0, span=6),
        graph("Pending queries",
              "Queries sent and not yet answered or expired: the engineers' backlog.",
              "short", Query("sum by (instance) (stream_al_pending_queries)", "{{instance}}"),
              span=6),
        graph("Label latency p50 / p95",
              "Time from an oracle request to its label.", "s",
              *[Query(f"histogram_quantile({q}, sum by (le) "
                      f"(rate(stream_al_label_latency_seconds_bucket[{RATE}])))", f"p{p}")
                for q, p in ((0.5, 50), (0.95, 95))], span=6),
        graph("Labels/s by outcome",
              "applied: learnt; unknown_query, expired, duplicate, invalid: dead-lettered.",
              "ops", Query(f"sum by (outcome) (rate(stream_al_labels_total[{RATE}]))",
                           "{{outcome}}"), span=6),
        graph("Queries skipped/s by reason",
              "Records the gate chose but that were not asked about. too_large: the "
              "request would not fit the requests topic (learner.limits.max_request_bytes); "
              "little_data: almost no test measured (learner.min_measured_share).",
              "ops", Query(f"sum by (reason) (rate(stream_al_query_skips_total[{RATE}]))",
                           "{{reason}}"), span=12),
    ]


def model_panels() -> Panels:
    return [
        graph("Accuracy: audit vs queried",
              "Rolling accuracy per model. audit: random sample, the unbiased estimate of "
              "live accuracy; queried: the hard cases the gate picked (biased low); inline: "
              "records that arrived labelled.", "percentunit",
              Query(f"stream_al_model_accuracy{{{MODEL}}}", "{{model_key}} {{window}}"),
              span=12),
        uncertainty_heatmap(),
        graph("Uncertainty threshold θ per model",
              "The gate queries a record when its uncertainty reaches θ; variable "
              "strategies move θ so the query rate tracks the budget.", "short",
              Query(f"stream_al_query_threshold{{{MODEL}}}", "{{model_key}}"), span=12),
        graph("Labels learnt per minute",
              "Labels applied to each model (learn_one), per minute.", "short",
              Query(f"sum by (model_key) (rate(stream_al_model_labels_total{{{MODEL}}}"
                    f"[{RATE}])) * 60", "{{model_key}}"), span=12),
    ]


def health_panels() -> Panels:
    return [
        graph("Dead letters/s by reason",
              "Messages sent to stream-al.dlq, by reason code. Each one carries the "
              "original bytes and a sentence saying what is wrong.", "ops",
              Query(f"sum by (reason) (rate(stream_al_dead_letters_total[{RATE}]))",
                    "{{reason}}"), span=6),
        graph("Consumer lag",
              "Records left to read per input partition (end offset − position).", "short",
              Query("sum by (topic, partition) (stream_al_consumer_lag)",
                    "{{topic}}[{{partition}}]"), span=6),
        checkpoint_age(),
        build_info(),
    ]


def build() -> dashboard.Dashboard:
    """The whole dashboard: four rows, a Prometheus ``datasource`` variable and a
    ``model_key`` variable."""
    board = (dashboard.Dashboard("stream-al").uid(UID).tags(["stream-al", "active-learning"])
             .description("Streaming active learning on the test floor: flow, oracle and "
                          "budget, model quality, health.")
             .refresh("30s").time("now-6h", "now").timezone("browser").editable()
             .tooltip(DashboardCursorSync.CROSSHAIR)
             .with_variable(datasource_variable()).with_variable(model_variable()))
    rows: list[tuple[str, Panels]] = [
        ("Flow", flow_panels()), ("Oracle and budget", oracle_panels()),
        ("Model quality", model_panels()), ("Health", health_panels()),
    ]
    for title, panels in rows:
        board = board.with_row(dashboard.Row(title))
        for panel in panels:
            board = board.with_panel(panel)
    return board


def render() -> str:
    """The dashboard JSON exactly as committed: sorted keys, two-space indent, newline."""
    return json.dumps(build().build(), cls=JSONEncoder, indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if the committed JSON differs instead of rewriting it")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        fresh = OUTPUT.is_file() and OUTPUT.read_text(encoding="utf-8") == text
        print(f"{OUTPUT} is {'up to date' if fresh else 'STALE: run without --check'}")
        return 0 if fresh else 1
    OUTPUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
