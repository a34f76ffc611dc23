"""``stream-al bench novelty``: the AUC is the rank measure it claims, the principal
detector separates the floor's rare mode, and the random arm is paced to the same labels."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from consumers.bench.novelty.run import ARMS, floor_stream, search, separation
from consumers.cli import build_cli
from consumers.demo.arms import Pace
from stream_al.evaluation import rank_auc
from stream_al.simulate.base import SimulatedRecord

Floor = tuple[list[SimulatedRecord], int]


@given(st.lists(st.tuples(st.integers(0, 5), st.booleans()), min_size=1, max_size=40))
def test_rank_auc_is_the_share_of_positive_negative_pairs_ranked_right(
        pairs: list[tuple[int, bool]]) -> None:
    scores, flags = [float(s) for s, _ in pairs], [f for _, f in pairs]
    positives = [s for s, f in zip(scores, flags, strict=True) if f]
    negatives = [s for s, f in zip(scores, flags, strict=True) if not f]
    if not positives or not negatives:
        assert rank_auc(scores, flags) is None
        return
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0
               for p, n in itertools.product(positives, negatives))
    assert rank_auc(scores, flags) == pytest.approx(wins / (len(positives) * len(negatives)))


def test_rank_auc_refuses_unequal_lengths() -> None:
    with pytest.raises(ValueError, match="2 scores for 1 flags"):
        rank_auc([0.1, 0.2], [True])


@pytest.fixture(scope="module")
def floor() -> Floor:
    return floor_stream(3_000, seed=0)


def test_the_principal_detector_separates_the_rare_mode_far_better_than_half_space(
        floor: Floor) -> None:
    stream, begins = floor
    principal = separation("principal", stream, begins, seed=0)
    half_space = separation("half_space", stream, begins, seed=0)
    assert principal.rare_devices > 10 and principal.devices_scored == len(stream) - begins
    assert principal.auc is not None and half_space.auc is not None
    assert principal.auc >= 0.9 > half_space.auc


def test_the_paced_random_arm_ends_with_the_labels_of_the_arm_it_follows(
        floor: Floor) -> None:
    stream, _ = floor
    lead, after = search(ARMS[0], stream, seed=0, budget=0.1)
    paced_arm = next(arm for arm in ARMS if arm.paced)
    paced, _ = search(paced_arm, stream, seed=0, budget=0.1, pace=Pace(active_after=after))
    assert paced.arm == "random (paced)"
    assert abs(paced.labels_used - lead.labels_used) <= max(1, lead.labels_used // 100)
    assert lead.rare_devices == paced.rare_devices > 0
    assert lead.rare_queries_at[-1] == (len(stream), lead.rare_queried)


def test_the_command_writes_json_markdown_and_a_plot(tmp_path: Path) -> None:
    out, table, plot = tmp_path / "n.json", tmp_path / "n.md", tmp_path / "n.png"
    result = CliRunner().invoke(build_cli(), [
        "bench", "novelty", "--records", "600", "--seeds", "1", "--out", str(out),
        "--table", str(table), "--plot", str(plot)])
    assert result.exit_code == 0, result.output
    rows = json.loads(out.read_text())
    assert [r["detector"] for r in rows["separation"]] == ["principal", "half_space"]
    assert [r["arm"] for r in rows["search"]] == [a.name for a in ARMS]
    assert "| hybrid (principal) |" in table.read_text()
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
