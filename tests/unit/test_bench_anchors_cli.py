"""``stream-al bench anchors`` as a person runs it (``--quick``), and the arithmetic of
its report: annotation savings on hand-made learning curves, wins and losses."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from consumers.bench.anchors import skal
from consumers.bench.anchors.report import savings_table, seed_means, wins_table
from consumers.bench.anchors.run import AnchorsOptions, run_anchors
from consumers.bench.anchors.runs import STREAM_AL_ARMS
from consumers.bench.anchors.streams import Config
from consumers.bench.labels.savings import attach_reach, savings
from consumers.cli import build_cli

CONTRACT = {"dataset", "model", "strategy", "budget", "seed", "accuracy", "accuracy_last20",
            "balanced_accuracy", "labels_used", "records", "records_per_s"}
EXTRAS = {"minority_recall", "escape_rate", "overkill", "labels_max_over_bound",
          "labels_to_95", "labels_to_98", "delay"}


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One ``--quick`` run (about half a minute) shared by the tests that read it."""
    folder = tmp_path_factory.mktemp("anchors")
    result = CliRunner().invoke(build_cli(), [
        "bench", "anchors", "--quick", "--out", str(folder / "a.json"),
        "--markdown", str(folder / "a.md"), "--plot", str(folder / "a.png")])
    assert result.exit_code == 0, result.output
    return folder


@pytest.mark.slow
def test_quick_run_writes_rows_tables_and_plots(quick: Path) -> None:
    rows = json.loads((quick / "a.json").read_text())
    assert all(CONTRACT | EXTRAS <= set(row) for row in rows)
    arms = {row["strategy"] for row in rows}
    assert {"all", "random", "river-entropy", *STREAM_AL_ARMS} <= arms
    assert {(r["dataset"], r["model"]) for r in rows} == {("phishing", "LR"),
                                                          ("imagesegments", "GNB")}
    assert {r["delay"] for r in rows} == {0, 50} and {r["seed"] for r in rows} == {0}
    # Floor scores on the binary stream only.
    for row in rows:
        assert (row["escape_rate"] is not None) == (row["dataset"] == "phishing")
    text = (quick / "a.md").read_text()
    for heading in ("Means over the 2 configurations", "Wins / ties / losses",
                    "Annotation savings", "Oracle answers immediately",
                    "Oracle answers 50 records later", "Labels spent"):
        assert heading in text
    if not skal.available():
        assert "scikit-activeml is not installed: its arms are skipped" in text
    for plot in ("a.png", "a-delay50.png"):
        assert (quick / plot).read_bytes().startswith(b"\x89PNG")


@pytest.mark.slow
@pytest.mark.skipif(not skal.available(), reason="scikit-activeml is not installed: "
                    "install the anchors extra (pip install -e '.[anchors]') to run its arms")
def test_quick_run_includes_the_skactiveml_arms(quick: Path) -> None:
    rows = json.loads((quick / "a.json").read_text())
    for name in skal.STRATEGIES:
        mine = [r for r in rows if r["strategy"] == name]
        assert len(mine) == 4 and all(r["labels_used"] > 0 for r in mine)  # 2 configs × 2 delays


def test_unknown_configurations_and_budgets_are_refused() -> None:
    runner = CliRunner()
    bad = runner.invoke(build_cli(), ["bench", "anchors", "--config", "mnist CNN"])
    assert bad.exit_code == 2 and "mnist CNN" in bad.output
    bad = runner.invoke(build_cli(), ["bench", "anchors", "--budget", "1.0"])
    assert bad.exit_code == 2 and "1.0" in bad.output


def _row(strategy: str, budget: float, accuracy: float, seed: int = 0,
         dataset: str = "d") -> dict[str, Any]:
    return {"dataset": dataset, "model": "LR", "strategy": strategy, "budget": budget,
            "seed": seed, "accuracy": accuracy}


def test_savings_on_hand_made_learning_curves() -> None:
    # All labels: 0.9, so the targets are 0.855 (95 %) and 0.882 (98 %).
    rows = [_row("all", 1.0, 0.9), _row("random", 0.1, 0.89), _row("variable", 0.1, 0.87),
            _row("variable", 0.2, 0.88)]
    curves = [
        [(100, 0.9)],
        # Random: at 0.86 from 40 labels (after a lucky start), 0.885 from 80.
        [(2, 1.0), (10, 0.5), (40, 0.86), (80, 0.885), (100, 0.89)],
        # Variable at 10 %: 0.855 from 10 labels, never 0.882.
        [(5, 0.8), (10, 0.855), (30, 0.87)],
        # Variable at 20 %: gets there later in labels, and dips below once.
        [(10, 0.86), (20, 0.85), (25, 0.86), (60, 0.88)],
    ]
    attach_reach(rows, curves, keys=("dataset", "model"))
    assert [(r["labels_to_95"], r["labels_to_98"]) for r in rows] == [
        (100, 100), (40, 80), (10, None), (25, None)]
    table = {(r["strategy"], r["target"]): r for r in savings(rows, ("dataset", "model"))}
    # The fewest labels any budget needed (10), against random's 40.
    assert table[("variable", 0.95)]["savings"] == pytest.approx(1 - 10 / 40)
    assert table[("variable", 0.98)]["savings"] is None
    assert ("random", 0.95) not in table


def test_savings_average_the_seeds_where_both_reach() -> None:
    rows = [_row("all", 1.0, 0.9, seed=s) for s in (0, 1)]
    rows += [_row("random", 0.1, 0.9, seed=s) for s in (0, 1)]
    rows += [_row("variable", 0.1, 0.9, seed=s) for s in (0, 1)]
    curves = [[(9, 0.9)], [(9, 0.9)], [(40, 0.9)], [(50, 0.9)], [(10, 0.9)], [(100, 0.5)]]
    attach_reach(rows, curves, keys=("dataset",))
    [variable_95, _] = [r for r in savings(rows, ("dataset",)) if r["strategy"] == "variable"]
    assert variable_95["savings"] == pytest.approx(0.75) and variable_95["reached"] == 1


def test_the_savings_table_counts_the_configurations_at_half_of_randoms_labels() -> None:
    # Random needs 100 labels on a, b and c; the strategy 40 (60 % saved), 90 (10 %) and
    # 50 (50 %, on the bar). Budgets 0.1 and 0.4: the fewer labels of the two count.
    rows, curves = [], []
    for dataset, mine in (("a", 40), ("b", 90), ("c", 50)):
        for strategy, budget, curve in (("all", 1.0, [(1000, 0.9)]),
                                        ("random", 0.1, [(100, 0.9)]),
                                        ("random", 0.4, [(300, 0.9)]),
                                        ("stream-al:randomized", 0.1, [(5, 0.1)]),
                                        ("stream-al:randomized", 0.4, [(mine, 0.9)])):
            rows.append({**_row(strategy, budget, 0.9, dataset=dataset), "delay": 0})
            curves.append(curve)
    attach_reach(rows, curves, keys=("dataset", "model"))
    table = savings_table(rows, ["all", "random", "stream-al:randomized"])
    assert "| stream-al:randomized (default) | 3/3 | 50 % (3 of 3 better, 2 ≥ 50 %) |" in table


def test_wins_ties_and_losses_compare_seed_means_with_a_tie_band() -> None:
    rows = []
    for dataset, ours, theirs in (("a", 0.90, 0.80), ("b", 0.801, 0.80), ("c", 0.70, 0.80)):
        for seed, jitter in ((0, 0.01), (1, -0.01)):
            rows += [{**_row("stream-al:variable", 0.1, ours + jitter, seed, dataset),
                      "balanced_accuracy": 0.0, "labels_used": 1, "records": 10},
                     {**_row("random", 0.1, theirs, seed, dataset),
                      "balanced_accuracy": 0.0, "labels_used": 1, "records": 10}]
    table = wins_table(seed_means(rows), ["random", "stream-al:variable"], [0.1])
    assert "| stream-al:variable | 1 / 1 / 1 |" in table


def test_without_scikit_activeml_its_arms_are_skipped_and_the_report_says_so(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(skal, "available", lambda: False)
    options = AnchorsOptions(configs=[Config("phishing", "LR")], budgets=[0.2], seeds=[0],
                             delays=[0], records=200, out=tmp_path / "a.json",
                             markdown=tmp_path / "a.md", plot=tmp_path / "a.png")
    rows = run_anchors(options, Console(file=io.StringIO()))
    assert not {r["strategy"] for r in rows} & set(skal.STRATEGIES)
    assert "scikit-activeml is not installed: its arms are skipped" in \
        (tmp_path / "a.md").read_text()


@pytest.mark.slow
def test_rerender_writes_the_tables_again_from_rows_without_a_run(quick: Path,
                                                                  tmp_path: Path) -> None:
    md, png = tmp_path / "again.md", tmp_path / "again.png"
    result = CliRunner().invoke(build_cli(), [
        "bench", "anchors", "--rerender", str(quick / "a.json"), "--markdown", str(md),
        "--plot", str(png)])
    assert result.exit_code == 0, result.output
    assert "re-rendered from" in md.read_text() and "Wins / ties / losses" in md.read_text()
    assert png.read_bytes().startswith(b"\x89PNG")
    assert (tmp_path / "again-delay50.png").exists()


def test_unknown_arms_are_refused_with_the_choices() -> None:
    bad = CliRunner().invoke(build_cli(), ["bench", "anchors", "--arm", "stream-al:magic"])
    assert bad.exit_code == 2
    assert "stream-al:magic" in bad.output and "stream-al:randomized" in bad.output


@pytest.mark.slow
def test_arm_runs_only_the_arms_named_beside_the_reference(tmp_path: Path) -> None:
    result = CliRunner().invoke(build_cli(), [
        "bench", "anchors", "--quick", "--delay", "0", "--arm", "random",
        "--arm", "stream-al:randomized", "--config", "phishing LR",
        "--out", str(tmp_path / "a.json"), "--markdown", str(tmp_path / "a.md"),
        "--plot", str(tmp_path / "a.png")])
    assert result.exit_code == 0, result.output
    rows = json.loads((tmp_path / "a.json").read_text())
    assert sorted(r["strategy"] for r in rows) == ["all", "random", "stream-al:randomized"]
