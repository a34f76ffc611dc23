"""Gates: one contract suite over every strategy, then what each strategy promises."""

from __future__ import annotations

import pickle
import random
from collections.abc import Callable
from statistics import NormalDist
from typing import get_args

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from stream_al.budget import BudgetConfig, BudgetManager
from stream_al.errors import ConfigError
from stream_al.gates import (
    THRESHOLD_MAX,
    THRESHOLD_MIN,
    FixedGate,
    Gate,
    GateConfig,
    HybridGate,
    MeasureName,
    RandomGate,
    RandomizedUncertaintyGate,
    RankedGate,
    Strategy,
    VariableUncertaintyGate,
    make_gate,
)
from stream_al.reasons import REASONS, Reason
from stream_al.uncertainty import MEASURES

Scores = list[tuple[float, float | None]]

#: Every strategy a gate may be configured with: the ``Strategy`` Literal itself.
STRATEGIES: tuple[Strategy, ...] = get_args(Strategy)
#: The inner gates a hybrid may wrap: the ``hybrid_inner`` Literal.
HYBRID_INNERS: tuple[str, ...] = get_args(GateConfig.model_fields["hybrid_inner"].annotation)
#: The contract suite's cases: one under each strategy's name, plus variants of their own.
CONFIGS = {
    "random": GateConfig(strategy="random", rate=0.3),
    "fixed": GateConfig(strategy="fixed"),
    "variable": GateConfig(strategy="variable"),
    "randomized": GateConfig(strategy="randomized"),
    "hybrid": GateConfig(strategy="hybrid"),
    "hybrid-randomized": GateConfig(strategy="hybrid", hybrid_inner="randomized"),
    # The same rules on u itself rather than on its rank.
    "fixed-raw": GateConfig(strategy="fixed", scale="raw"),
    "variable-raw": GateConfig(strategy="variable", scale="raw"),
    "randomized-raw": GateConfig(strategy="randomized", scale="raw"),
    "hybrid-raw": GateConfig(strategy="hybrid", scale="raw"),
}
#: Each strategy of the Literal (whether CONFIGS has it or not), then the variants.
CASES = [*STRATEGIES, *(name for name in CONFIGS if name not in STRATEGIES)]
every_gate = pytest.mark.parametrize("config", CASES, indirect=True)
unit = st.floats(min_value=0.0, max_value=1.0)
score_streams = st.lists(st.tuples(unit, st.none() | unit), max_size=300)


@pytest.fixture(scope="module")
def config(request: pytest.FixtureRequest) -> GateConfig:
    """The contract case the parameter names: a strategy without one fails its cases here."""
    name: str = request.param
    assert name in CONFIGS, f"strategy {name!r} has no contract case in CONFIGS"
    return CONFIGS[name]


def _stream(seed: int, n: int = 500) -> Scores:
    rng = random.Random(seed)
    return [(rng.betavariate(2, 5), rng.betavariate(2, 8)) for _ in range(n)]


def _run(gate: Gate, scores: Scores) -> list[tuple[Reason | None, float]]:
    return [(gate.decide(u, novelty), gate.threshold) for u, novelty in scores]


# --- the contract every gate meets ------------------------------------------------------


def test_every_strategy_has_a_contract_case_under_its_name() -> None:
    missing = [strategy for strategy in STRATEGIES if strategy not in CONFIGS]
    assert not missing, f"add a contract case to CONFIGS for {missing}"
    named = {strategy: CONFIGS[strategy].strategy for strategy in STRATEGIES}
    assert named == {strategy: strategy for strategy in STRATEGIES}
    assert set(CASES) == set(CONFIGS), "every case of CONFIGS runs the contract"


def test_every_inner_gate_of_a_hybrid_has_a_contract_case() -> None:
    cased = {case.hybrid_inner for case in CONFIGS.values() if case.strategy == "hybrid"}
    missing = set(HYBRID_INNERS) - cased
    assert not missing, f"add a hybrid contract case to CONFIGS for hybrid_inner {missing}"


@every_gate
def test_every_strategy_is_built_under_its_own_name(config: GateConfig) -> None:
    gate = make_gate(config, seed=1)
    assert isinstance(gate, Gate)
    assert gate.name == config.strategy


@every_gate
def test_decisions_are_deterministic_for_a_seed(config: GateConfig) -> None:
    scores = _stream(seed=11)
    first = _run(make_gate(config, seed=5), scores)
    assert first == _run(make_gate(config, seed=5), scores)
    assert {reason for reason, _ in first} - {None} <= set(REASONS)


@every_gate
def test_pickle_round_trip_continues_identically(config: GateConfig) -> None:
    scores = _stream(seed=12)
    gate = make_gate(config, seed=9)
    _run(gate, scores[:250])
    restored = pickle.loads(pickle.dumps(gate))  # noqa: S301 (our own object, in memory)
    assert _run(restored, scores[250:]) == _run(gate, scores[250:])


@every_gate
@given(scores=score_streams)
def test_threshold_stays_in_range(config: GateConfig, scores: Scores) -> None:
    gate = make_gate(config, seed=2)
    for _, threshold in _run(gate, scores):
        assert 0.0 <= threshold <= 1.0


@pytest.mark.parametrize("strategy", ["random", "randomized"])
def test_randomised_gates_use_their_seed(strategy: Strategy) -> None:
    config = CONFIGS[strategy]
    scores = _stream(seed=13)
    assert _run(make_gate(config, seed=1), scores) != _run(make_gate(config, seed=2), scores)


# --- variable uncertainty ---------------------------------------------------------------


def test_variable_threshold_follows_the_paper_rule_in_u_form() -> None:
    gate = VariableUncertaintyGate(threshold=0.5, step=0.1)
    assert gate.decide(0.5) == "uncertainty"  # u ≥ θ queries ...
    assert gate.threshold == pytest.approx(0.5 * 1.1)  # ... and narrows the region
    assert gate.decide(0.54) is None
    assert gate.threshold == pytest.approx(0.5 * 1.1 * 0.9)  # a pass widens it


@pytest.mark.parametrize("case", ["variable-raw", "randomized-raw"])
def test_adaptive_threshold_is_clamped_to_its_range(case: str) -> None:
    gate = make_gate(CONFIGS[case], seed=3)
    falling = [t for _, t in _run(gate, [(0.0, None)] * 2000)]
    rising = [t for _, t in _run(gate, [(1.0, None)] * 2000)]
    assert min(falling) == pytest.approx(THRESHOLD_MIN)
    assert max(rising) == pytest.approx(THRESHOLD_MAX)
    assert THRESHOLD_MIN <= min(falling + rising) and max(falling + rising) <= THRESHOLD_MAX


def test_variable_threshold_does_not_stick_at_its_floor() -> None:
    gate = VariableUncertaintyGate(threshold=0.01)
    for _ in range(1000):
        gate.decide(0.0)
    assert gate.decide(2 * THRESHOLD_MIN) == "uncertainty"
    assert gate.threshold > THRESHOLD_MIN


def test_variable_gate_settles_where_half_the_affordable_records_trigger() -> None:
    # Equal relative steps up and down balance when half the calls trigger.
    gate = VariableUncertaintyGate()
    rng = random.Random(4)
    decisions = [gate.decide(rng.random()) for _ in range(20_000)][5_000:]
    assert sum(d is not None for d in decisions) / len(decisions) == pytest.approx(0.5, abs=0.02)
    assert gate.threshold == pytest.approx(0.5, abs=0.1)  # the median of U(0, 1)


def test_randomized_gate_queries_certain_records_at_the_gaussian_rate() -> None:
    # With θ far above its floor, u = 0 triggers when η ≤ THRESHOLD_MIN/θ ≈ 0:
    # P ≈ Φ(−1/δ). A tiny step keeps θ near 1 for the whole run.
    delta = 0.8
    gate = RandomizedUncertaintyGate(seed=5, delta=delta, step=1e-6)
    rate = sum(gate.decide(0.0) is not None for _ in range(5000)) / 5000
    assert rate == pytest.approx(NormalDist(1.0, delta).cdf(0.0), abs=0.02)


@pytest.mark.parametrize("make", [lambda: VariableUncertaintyGate(threshold=0.01),
                                  lambda: RandomizedUncertaintyGate(seed=6, threshold=0.01)])
def test_certain_records_are_queried_once_the_threshold_reaches_its_floor(
        make: Callable[[], Gate]) -> None:
    # A model sure of everything (pure leaves: u = 0) must still spend its budget: at the
    # floor the gate cannot rank such records, so it asks for them as often as it passes.
    gate = make()
    decisions = [gate.decide(0.0) for _ in range(3000)][1000:]
    assert gate.threshold == pytest.approx(THRESHOLD_MIN, rel=0.05)
    assert 0.3 <= sum(d is not None for d in decisions) / len(decisions) <= 0.7


def test_above_its_floor_the_variable_gate_never_queries_a_certain_record() -> None:
    gate = VariableUncertaintyGate(threshold=0.5, step=1e-6)
    assert all(gate.decide(0.0) is None for _ in range(1000))


def test_randomized_gate_without_jitter_is_the_variable_gate() -> None:
    scores = _stream(seed=14)
    plain = _run(VariableUncertaintyGate(0.4), scores)
    assert _run(RandomizedUncertaintyGate(seed=1, threshold=0.4, delta=0.0), scores) == plain


# --- fixed, random, hybrid ---------------------------------------------------------------


@given(threshold=unit, scores=st.lists(unit, max_size=50))
def test_fixed_gate_queries_exactly_at_or_above_a_constant_threshold(
    threshold: float, scores: list[float]
) -> None:
    gate = FixedGate(threshold)
    for u in scores:
        assert (gate.decide(u) is not None) == (u >= threshold)
        assert gate.threshold == threshold


def test_random_gate_ignores_uncertainty_and_samples_at_its_rate() -> None:
    gate_a, gate_b = RandomGate(0.2, seed=6), RandomGate(0.2, seed=6)
    a = [gate_a.decide(0.0) for _ in range(5000)]
    b = [gate_b.decide(1.0) for _ in range(5000)]
    assert a == b
    assert sum(d is not None for d in a) / 5000 == pytest.approx(0.2, abs=0.02)


def test_hybrid_says_novelty_only_when_novelty_alone_triggered() -> None:
    gate = HybridGate(VariableUncertaintyGate(0.5), novelty_threshold=0.6)
    assert gate.decide(0.9, novelty=0.9) == "uncertainty"
    assert gate.decide(0.0, novelty=0.9) == "novelty"
    assert gate.decide(0.0, novelty=0.0) is None
    assert gate.decide(0.0, novelty=None) is None


def test_hybrid_novelty_threshold_adapts_only_on_a_novelty_score() -> None:
    gate = HybridGate(VariableUncertaintyGate(0.5), novelty_threshold=0.6, step=0.1)
    gate.decide(0.0, novelty=None)
    assert gate.novelty_threshold == pytest.approx(0.6)
    gate.decide(0.0, novelty=0.9)
    assert gate.novelty_threshold == pytest.approx(0.66)
    gate.decide(0.0, novelty=0.1)
    assert gate.novelty_threshold == pytest.approx(0.66 * 0.9)


# --- configuration ----------------------------------------------------------------------


def test_configured_measures_are_exactly_the_known_measures() -> None:
    assert set(get_args(MeasureName)) == set(MEASURES)


@pytest.mark.parametrize(("strategy", "scale", "start"), [
    ("fixed", "rank", 0.5), ("fixed", "raw", 0.5), ("variable", "rank", 0.5),
    ("variable", "raw", 1.0), ("randomized", "rank", 0.5), ("randomized", "raw", 1.0)])
def test_unset_threshold_takes_the_strategy_default(strategy: Strategy, scale: str,
                                                    start: float) -> None:
    config = GateConfig.model_validate({"strategy": strategy, "scale": scale})
    assert make_gate(config, seed=0).threshold == start


def test_the_default_gate_is_randomized_on_the_rank_scale() -> None:
    # Chosen by `stream-al bench anchors` (docs/benchmarks.md): it beat every other
    # strategy at B = 10 % over the 14 configurations, at equal labels.
    config = GateConfig()
    assert (config.strategy, config.scale) == ("randomized", "rank")
    assert isinstance(make_gate(config, seed=0), RankedGate)


def test_configured_threshold_is_the_starting_threshold() -> None:
    assert make_gate(GateConfig(strategy="randomized", threshold=0.3), seed=0).threshold == 0.3


def test_random_rate_defaults_to_the_budget_fraction() -> None:
    gate = make_gate(GateConfig(strategy="random"), seed=0, budget_fraction=0.1)
    assert sum(gate.decide(1.0) is not None for _ in range(5000)) / 5000 == pytest.approx(
        0.1, abs=0.015
    )


def test_random_without_a_rate_says_how_to_give_one() -> None:
    with pytest.raises(ConfigError, match="gate.rate"):
        make_gate(GateConfig(strategy="random"), seed=0)


@pytest.mark.parametrize(
    ("field", "value"),
    [("threshold", 1.5), ("step", 0.0), ("step", 1.0), ("delta", -0.1), ("rate", 2.0),
     ("novelty_threshold", -0.1), ("strategy", "greedy"), ("measure", "gini")],
)  # fmt: skip
def test_invalid_config_names_the_field(field: str, value: object) -> None:
    with pytest.raises(ValidationError, match=field):
        GateConfig.model_validate({field: value})


def test_make_gate_revalidates_a_copied_config() -> None:
    # model_copy(update=...) skips validation; the factory must not.
    with pytest.raises(ValidationError, match="step"):
        make_gate(GateConfig().model_copy(update={"step": 2.0}), seed=0)


# --- behind the budget, as the learner uses it --------------------------------------------


def _behind_budget(gate: Gate, budget: BudgetManager, n: int, seed: int) -> tuple[float, float]:
    """Realised query rate, and how much more uncertain the queried records were on average."""
    rng, seen, picked = random.Random(seed), [], []
    for t in range(n):
        u, novelty = rng.betavariate(2, 5), rng.betavariate(2, 8)
        reason = None
        if budget.may_query("k", "uncertainty", float(t), 0):
            reason = gate.decide(u, novelty)
        budget.record("k", reason, float(t))
        seen.append(u)
        if reason is not None:
            picked.append(u)
    return len(picked) / n, sum(picked) / max(1, len(picked)) - sum(seen) / n


@pytest.mark.parametrize("strategy", ["variable", "randomized", "hybrid"])
@pytest.mark.parametrize("fraction", [0.05, 0.2])
def test_adaptive_gate_behind_the_budget_spends_about_b_on_uncertain_records(
    strategy: Strategy, fraction: float
) -> None:
    budget = BudgetManager(BudgetConfig(fraction=fraction, window=500, audit_fraction=0.0))
    rate, lift = _behind_budget(make_gate(CONFIGS[strategy], seed=8), budget, 20_000, seed=15)
    assert rate == pytest.approx(fraction, rel=0.05)
    assert lift > 0.02  # not just any records: more uncertain than average (random: < 0.01)


def test_fixed_gate_behind_the_budget_spends_only_what_its_threshold_finds() -> None:
    # P(u ≥ 0.8) for u ~ Beta(2, 5) is under 1%: a fixed θ cannot track the budget.
    budget = BudgetManager(BudgetConfig(fraction=0.1, window=500, audit_fraction=0.0))
    rate, _ = _behind_budget(FixedGate(0.8), budget, 20_000, seed=15)
    assert rate < 0.01
