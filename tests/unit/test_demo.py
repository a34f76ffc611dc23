"""The demo's comparison: a live random arm at the active arm's label count, the floor's
measures in the table and summary.json, the rare failure mode's onset on the plot.

One small demo run (3,000 devices) serves every test of the run; its floor's rare mode is
moved to 30 % of the run, so a marker at the default's half-way point would be caught.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

import consumers.demo.run as demo_run
from consumers.bench.plots import RARE_MODE_MARKER, DemoLine, demo_curves, demo_figure
from consumers.cli import build_cli
from consumers.demo.arms import Pace, PacedRandomGate, RecentScores
from stream_al.evaluation import annotation_savings
from stream_al.simulate.floor import FloorConfig, FloorSimulator

RECORDS, SEED, RARE_MODE_START = 3000, 7, 0.3
ARMS = ("active", "random", "all")


@dataclass
class DemoRun:
    summary: dict[str, Any]
    output: str
    plotted: dict[str, Any]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoRun]:
    out = tmp_path_factory.mktemp("demo")
    plotted: dict[str, Any] = {}

    def recording_curves(path: Path, lines: list[DemoLine], rare_mode_begins: int,
                         target: float | None, title: str) -> None:
        plotted.update(lines=lines, rare_mode_begins=rare_mode_begins, target=target)
        demo_curves(path, lines, rare_mode_begins, target, title)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(demo_run, "FloorConfig",
                      functools.partial(FloorConfig, rare_mode_start=RARE_MODE_START))
        patch.setattr(demo_run, "demo_curves", recording_curves)
        result = CliRunner().invoke(build_cli(), [
            "demo", "--records", str(RECORDS), "--seed", str(SEED), "--metrics-port", "0",
            "--out", str(out), "--oracle-delay", "10"])
    assert result.exit_code == 0, result.output
    yield DemoRun(json.loads((out / "summary.json").read_text()), result.output, plotted)


def test_the_random_arm_runs_live_with_the_active_arms_label_count(demo: DemoRun) -> None:
    summary = demo.summary
    active, random = summary["labels_active"], summary["labels_random"]
    assert 0.05 * RECORDS < active <= 0.1 * RECORDS + 3  # a real budgeted run
    assert abs(random - active) <= 0.01 * active, (random, active)
    assert summary["label_gap"] == pytest.approx((random - active) / active)
    assert summary["random_baseline"].startswith("live")
    # Its own choices never take it ahead; warm-up and audit draws may, by a few at most.
    assert 0 <= summary["random_most_ahead"] <= 10
    # Every device asked, but those with almost no data (never asked for uncertainty).
    assert 0.99 * RECORDS <= summary["labels_all"] <= RECORDS


def test_summary_has_the_floor_measures_of_every_arm(demo: DemoRun) -> None:
    summary = demo.summary
    for arm in ARMS:
        for measure in ("accuracy", "balanced_accuracy", "escape_rate", "overkill"):
            assert 0.0 <= summary[f"{measure}_{arm}"] <= 1.0, (measure, arm)
        assert f"labels_to_95_{arm}" in summary and f"labels_to_95_balanced_{arm}" in summary
    # On a floor where most parts pass, balanced accuracy is below accuracy for every arm:
    # the rare class is the harder one.
    assert all(summary[f"balanced_accuracy_{a}"] < summary[f"accuracy_{a}"] for a in ARMS)
    # Every label: it reaches 95 % of its own accuracy, with fewer labels than it used.
    assert 0 < summary["labels_to_95_all"] <= summary["labels_all"]
    for suffix in ("", "_balanced"):
        assert summary[f"annotation_savings{suffix}"] == annotation_savings(
            summary[f"labels_to_95{suffix}_active"], summary[f"labels_to_95{suffix}_random"])
    assert summary["labels_active"] == summary["queries_active"]  # every query answered


def test_the_table_shows_the_floor_measures(demo: DemoRun) -> None:
    output, summary = demo.output, demo.summary
    for header in ("balanced acc", "escapes", "overkill", "savings"):
        assert header in output
    for arm in ARMS:
        assert f"{summary[f'balanced_accuracy_{arm}']:.4f}" in output
        assert f"{summary[f'escape_rate_{arm}']:.1%}" in output
        assert f"{summary[f'overkill_{arm}']:.1%}" in output
    savings = summary["annotation_savings"]
    assert ("–" if savings is None else f"{savings:.1%}") in output


def test_the_plot_marks_the_simulators_rare_mode_onset(demo: DemoRun) -> None:
    floor = FloorConfig(run_length=RECORDS, rare_mode_start=RARE_MODE_START)
    onset = FloorSimulator(floor, SEED).rare_mode_begins
    assert onset != RECORDS // 2  # the moved onset, not the default's
    assert demo.plotted["rare_mode_begins"] == onset == demo.summary["rare_mode_begins"]
    assert onset <= demo.summary["rare_mode_first_device"] < RECORDS
    figure = demo_figure(demo.plotted["lines"], onset, demo.plotted["target"], "t")
    by_devices = [axis for axis in figure.axes if axis.get_xlabel() == "devices"]
    assert len(by_devices) == 2
    for axis in by_devices:
        ylabel = axis.get_ylabel()
        markers = [line for line in axis.get_lines()
                   if RARE_MODE_MARKER in str(line.get_label())]
        assert len(markers) == 1, ylabel
        assert np.asarray(markers[0].get_xdata(), dtype=float).tolist() == [onset, onset]
        # Three arms drawn against devices on both panels, balanced accuracy on one.
        assert len(axis.get_lines()) == 4
    assert "balanced accuracy" in by_devices[0].get_ylabel()
    png = Path(demo.summary["plot"]).read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 20_000


def test_the_paced_gate_asks_only_while_behind_and_more_the_further_behind() -> None:
    pace = Pace(target=10, asked=10)
    gate = PacedRandomGate(pace, rate=0.1, seed=3)
    assert all(gate.decide(1.0, 1.0) is None for _ in range(1000))  # level: never
    pace.asked = 12
    assert all(gate.decide(1.0) is None for _ in range(1000))  # ahead: never
    asked = {}
    for behind in (1, 5):
        pace.asked = pace.target - behind
        asked[behind] = sum(gate.decide(0.0) is not None for _ in range(4000)) / 4000
    assert 0.07 < asked[1] < 0.13  # B per device when one behind
    assert 0.45 < asked[5] < 0.55  # B × 5


def test_recent_scores_forget_devices_beyond_the_window() -> None:
    recent = RecentScores(window=4)
    for truth, hit in [("fail", False)] * 4 + [("pass", True)] * 3 + [("fail", True)]:
        recent.update(truth, hit)
    assert recent.recalls() == {"fail": 1.0, "pass": 1.0}
    assert recent.balanced_accuracy == 1.0
