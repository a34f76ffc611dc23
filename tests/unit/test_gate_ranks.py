"""The rank scale: a gate judges u by its share among the model's recent uncertainties."""

from __future__ import annotations

import pickle
import random
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stream_al.gates import FixedGate, GateConfig, RankedGate, RecentRanks, make_gate

unit = st.floats(min_value=0.0, max_value=1.0)


@given(values=st.lists(unit, min_size=1, max_size=200), window=st.integers(1, 50))
def test_a_rank_is_the_share_of_recent_values_below_ties_split(values: list[float],
                                                                window: int) -> None:
    ranks = RecentRanks(window, seed=1)
    recent: list[float] = []
    for value in values:
        rank = ranks.rank_then_add(value)
        if recent:
            below = sum(v < value for v in recent) / len(recent)
            equal = sum(v == value for v in recent) / len(recent)
            assert below - 1e-12 <= rank <= below + equal + 1e-12
        else:
            assert rank == 0.5
        recent = (recent + [value])[-window:]
        assert len(ranks) == len(recent)


def test_ranks_of_any_distribution_are_uniform() -> None:
    # The point of the scale: a model whose u crowd near 0 (naive Bayes) and one whose u
    # spread over [0, 1] give the gate the same distribution of inputs.
    rng = random.Random(3)
    draws: list[Callable[[], float]] = [lambda: rng.random() ** 12,
                                        lambda: rng.betavariate(2, 5)]
    for draw in draws:
        ranks = RecentRanks(500, seed=4)
        seen = [ranks.rank_then_add(draw()) for _ in range(6000)][1000:]
        for q in (0.1, 0.5, 0.9):
            assert sum(r < q for r in seen) / len(seen) == pytest.approx(q, abs=0.03)


def test_a_run_of_identical_uncertainties_is_ranked_at_random_not_all_alike() -> None:
    ranks = RecentRanks(200, seed=5)
    seen = [ranks.rank_then_add(0.0) for _ in range(2000)][200:]
    assert sum(r >= 0.9 for r in seen) / len(seen) == pytest.approx(0.1, abs=0.03)


def test_an_old_value_leaves_the_window() -> None:
    ranks = RecentRanks(3, seed=0)
    for value in (0.9, 0.1, 0.2, 0.3):  # 0.9 falls out with the fourth value
        ranks.rank_then_add(value)
    assert ranks.rank_then_add(0.5) == 1.0


def test_window_must_hold_a_value() -> None:
    with pytest.raises(ValueError, match="window"):
        RecentRanks(0, seed=0)


def test_the_ranked_gate_passes_ranks_to_its_inner_gate() -> None:
    seen: list[float] = []

    class Recording(FixedGate):
        def decide(self, uncertainty: float, novelty: float | None = None) -> None:
            seen.append(uncertainty)

    gate = RankedGate(Recording(0.5), window=10, seed=0)
    for u in (0.001, 0.0001, 0.01):
        gate.decide(u)
    assert seen == [0.5, 0.0, 1.0]


def test_a_ranked_variable_gate_spends_its_share_on_the_top_of_any_scale() -> None:
    # Raw u crowded in [0, 1e-6]: a raw threshold starting at 1.0 would take ~1,400
    # records to come down; on ranks the gate asks for the top of them from the start.
    rng = random.Random(8)
    gate = make_gate(GateConfig(strategy="variable"), seed=2)
    tiny = [rng.random() * 1e-6 for _ in range(3000)]
    asked = [u for u in tiny if gate.decide(u)]
    assert 0.3 <= len(asked) / len(tiny) <= 0.7
    assert sorted(tiny)[len(tiny) // 2] < sum(asked) / len(asked)


def test_random_strategy_is_never_ranked() -> None:
    assert not isinstance(make_gate(GateConfig(strategy="random"), seed=0,
                                    budget_fraction=0.1), RankedGate)


def test_a_ranked_gate_survives_a_checkpoint() -> None:
    gate = make_gate(GateConfig(), seed=7)
    rng = random.Random(9)
    scores = [rng.random() for _ in range(400)]
    for u in scores[:200]:
        gate.decide(u)
    restored = pickle.loads(pickle.dumps(gate))  # noqa: S301 (our own object, in memory)
    assert [restored.decide(u) for u in scores[200:]] == [gate.decide(u) for u in scores[200:]]


def test_rank_window_is_bounded_in_the_settings() -> None:
    with pytest.raises(ValueError, match="rank_window"):
        GateConfig(rank_window=5)
