"""The budget holds whatever the caller asks: per window, per hour, per pending query."""

from __future__ import annotations

import math
import pickle
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import get_args

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from pydantic import ValidationError

from stream_al.budget import BudgetConfig, BudgetManager, BudgetWindow, TokenBucket
from stream_al.gates.config import Strategy
from stream_al.reasons import REASONS, Reason

HOUR = 3600.0
KEY = "PMIC-A7"


@dataclass(frozen=True)
class Step:
    """One record: the reason the caller would like to query it for, and its time."""

    wanted: Reason | None
    dt: float


steps = st.lists(
    st.builds(Step, st.none() | st.sampled_from(REASONS), st.floats(0.0, 600.0)), max_size=400
)


@st.composite
def configs(draw: st.DrawFn, hourly: bool = False, pending: bool = False) -> BudgetConfig:
    window = draw(st.integers(2, 60))
    fraction = draw(st.floats(1.0 / window, 1.0))
    audit = draw(st.just(0.0) | st.floats(1.0 / window, fraction))
    try:
        return BudgetConfig(
            fraction=fraction, window=window, audit_fraction=audit,
            queries_per_hour=draw(st.floats(0.5, 200.0)) if hourly else None,
            max_pending=draw(st.integers(1, 20)) if pending else None,
        )  # fmt: skip
    except ValidationError:
        assume(False)
        raise


def _replay(budget: BudgetManager, plan: Sequence[Step], pending: int = 0) -> list[Reason | None]:
    """The learner's loop: ask, then record once per record."""
    now, taken = 0.0, []
    for step in plan:
        now += step.dt
        allowed = step.wanted is not None and budget.may_query(KEY, step.wanted, now, pending)
        reason = step.wanted if allowed else None
        budget.record(KEY, reason, now)
        taken.append(reason)
    return taken


def _max_in_any_window(flags: Sequence[bool], w: int) -> int:
    return max((sum(flags[i : i + w]) for i in range(max(1, len(flags) - w + 1))), default=0)


# --- the window: B overall, A for audits -------------------------------------------------


@given(config=configs(), plan=steps)
def test_queries_in_any_window_stay_within_the_budget(
    config: BudgetConfig, plan: list[Step]
) -> None:
    taken = _replay(BudgetManager(config), plan)
    w = config.window
    assert _max_in_any_window([r is not None for r in taken], w) <= config.fraction * w + 1e-9
    audits = [r == "audit" for r in taken]
    assert _max_in_any_window(audits, w) <= config.audit_fraction * w + 1e-9


@given(config=configs(hourly=True), plan=steps, seed=st.integers(0, 2**16))
def test_audits_are_never_starved_by_other_queries(
    config: BudgetConfig, plan: list[Step], seed: int
) -> None:
    # The same audit requests, with and without other queries competing: same answers,
    # including under an hourly limit (audits have their own share of it).
    rng = random.Random(seed)
    audits_only = [Step("audit" if s.wanted == "audit" else None, s.dt) for s in plan]
    busy = [Step(s.wanted or rng.choice([None, "uncertainty"]), s.dt) for s in plan]
    alone = _replay(BudgetManager(config), audits_only)
    crowded = _replay(BudgetManager(config), busy)
    assert [r == "audit" for r in crowded] == [r == "audit" for r in alone]


def test_other_reasons_share_what_is_left_after_audits() -> None:
    config = BudgetConfig(fraction=0.1, window=100, audit_fraction=0.03)
    plan = [Step("uncertainty", 1.0)] * 5000
    taken = _replay(BudgetManager(config), plan)
    assert sum(r is not None for r in taken) / len(taken) == pytest.approx(0.07, abs=0.003)


def test_both_shares_together_use_the_whole_budget() -> None:
    config = BudgetConfig(fraction=0.1, window=200, audit_fraction=0.02)
    rng = random.Random(1)
    plan = [Step("audit" if rng.random() < 0.5 else "novelty", 1.0) for _ in range(20_000)]
    taken = _replay(BudgetManager(config), plan)
    assert taken.count("audit") / len(taken) == pytest.approx(0.02, abs=0.002)
    assert sum(r is not None for r in taken) / len(taken) == pytest.approx(0.1, abs=0.005)


def test_budget_is_kept_per_model_key() -> None:
    budget = BudgetManager(BudgetConfig(fraction=0.5, window=2, audit_fraction=0.0))
    budget.record("a", "uncertainty", 0.0)
    assert not budget.may_query("a", "uncertainty", 0.0, 0)
    assert budget.may_query("b", "uncertainty", 0.0, 0)


def test_spent_ratio_is_the_papers_forgetting_estimate() -> None:
    w, pattern = 50, [True, False, False, True, False] * 30
    budget = BudgetManager(BudgetConfig(fraction=1.0, window=w, audit_fraction=0.0))
    for t, queried in enumerate(pattern):
        budget.record(KEY, "uncertainty" if queried else None, float(t))
    lam = (w - 1) / w
    expected = sum(q * lam ** (len(pattern) - 1 - i) for i, q in enumerate(pattern)) / w
    assert budget.spent_ratio(KEY) == pytest.approx(expected)
    assert budget.spent_ratio("never-seen") == 0.0


@given(decisions=st.lists(st.booleans(), max_size=200), w=st.integers(1, 30))
def test_window_counts_exactly_the_last_w_minus_one_decisions(
    decisions: list[bool], w: int
) -> None:
    window = BudgetWindow(1.0, w)
    for queried in decisions:
        window.record(queried)
    assert window.recent_queries == sum(
        decisions[max(0, len(decisions) - (w - 1)) :] if w > 1 else []
    )


# --- the oracle's capacity: hourly tokens and pending queries ------------------------------


@given(config=configs(hourly=True), plan=steps)
def test_queries_per_hour_never_exceed_the_allowance(
    config: BudgetConfig, plan: list[Step]
) -> None:
    budget = BudgetManager(config)
    times, now = [], 0.0
    for step, reason in zip(plan, _replay(budget, plan), strict=True):
        now += step.dt
        if reason is not None:
            times.append(now)
    allowance = budget.max_queries_in(HOUR)
    assert allowance is not None
    start = 0
    for end, t in enumerate(times):
        while times[start] <= t - HOUR:  # the queries in (t − 1 h, t]
            start += 1
        assert end - start + 1 <= allowance + 1e-9


def test_hourly_limit_paces_a_saturated_oracle() -> None:
    config = BudgetConfig(fraction=1.0, audit_fraction=0.0, queries_per_hour=120)
    budget = BudgetManager(config)
    taken = _replay(budget, [Step("uncertainty", 1.0)] * int(5 * HOUR))
    # 5 h at 120/h, plus the initial burst of one minute's allowance.
    assert sum(r is not None for r in taken) == pytest.approx(5 * 120 + 2, abs=1)


@given(config=configs(pending=True), plan=steps, seed=st.integers(0, 2**16))
def test_pending_never_exceeds_the_limit(config: BudgetConfig, plan: list[Step], seed: int) -> None:
    budget, rng, pending, now = BudgetManager(config), random.Random(seed), 0, 0.0
    assert config.max_pending is not None
    for step in plan:
        now += step.dt
        pending -= sum(rng.random() < 0.1 for _ in range(pending))  # some labels come back
        queried = step.wanted is not None and budget.may_query(KEY, step.wanted, now, pending)
        budget.record(KEY, step.wanted if queried else None, now)
        pending += queried
        assert pending <= config.max_pending


def test_token_bucket_refills_with_the_callers_clock() -> None:
    bucket = TokenBucket(per_hour=3600)  # one token a second, a burst of 60
    for _ in range(60):
        bucket.take(0.0)
    assert not bucket.allows(0.5)
    assert bucket.allows(1.0)
    assert bucket.available(10_000.0) == bucket.capacity == 60


def test_token_bucket_ignores_a_clock_going_backwards() -> None:
    bucket = TokenBucket(per_hour=3600)
    for _ in range(60):
        bucket.take(100.0)
    assert not bucket.allows(50.0)
    assert bucket.available(50.0) == pytest.approx(0.0)


def test_a_take_without_a_token_is_owed() -> None:
    bucket = TokenBucket(per_hour=3600)
    for _ in range(61):
        bucket.take(0.0)
    assert not bucket.allows(1.0)
    assert bucket.allows(2.0)


# --- state and configuration ------------------------------------------------------------


def test_pickle_round_trip_continues_identically() -> None:
    config = BudgetConfig(fraction=0.1, window=50, queries_per_hour=30, max_pending=5)
    rng = random.Random(3)
    plan = [Step(rng.choice([None, *REASONS]), rng.uniform(0, 60)) for _ in range(2000)]
    budget = BudgetManager(config)
    _replay(budget, plan[:1000])
    restored = pickle.loads(pickle.dumps(budget))  # noqa: S301 (our own object, in memory)
    assert _replay(restored, plan[1000:]) == _replay(budget, plan[1000:])
    assert restored.spent_ratio(KEY) == budget.spent_ratio(KEY)


@pytest.mark.parametrize(
    ("fraction", "window", "audit"),
    [(0.2, 1000, 0.01), (0.05, 1000, 0.005), (0.01, 1000, 0.001), (0.005, 1000, 0.0)],
)
def test_default_audit_share_is_small_and_fits_the_window(
    fraction: float, window: int, audit: float
) -> None:
    assert BudgetConfig(fraction=fraction, window=window).audit_fraction == pytest.approx(audit)


@pytest.mark.parametrize(
    ("fields", "names"),
    [
        ({"fraction": 0.0}, "fraction"),
        ({"fraction": 1.5}, "fraction"),
        ({"window": 0}, "window"),
        ({"fraction": 0.0005, "window": 1000}, "raise window"),
        ({"fraction": 0.1, "audit_fraction": 0.1}, "audit_fraction"),
        ({"fraction": 0.1, "window": 100, "audit_fraction": 0.005}, "audit_fraction"),
        ({"fraction": 0.029, "window": 100, "audit_fraction": 0.02}, "audit_fraction"),
        ({"queries_per_hour": 0}, "queries_per_hour"),
        ({"max_pending": 0}, "max_pending"),
        ({"budget": 0.1}, "budget"),
    ],
)
def test_invalid_config_names_the_field_and_the_fix(fields: dict[str, object], names: str) -> None:
    with pytest.raises(ValidationError, match=names):
        BudgetConfig.model_validate(fields)


def test_manager_revalidates_a_copied_config() -> None:
    # model_copy(update=...) skips validation; an audit share above B must not slip in.
    with pytest.raises(ValidationError, match="audit_fraction"):
        BudgetManager(BudgetConfig().model_copy(update={"fraction": 0.005}))


@given(config=configs(hourly=False), plan=steps)
def test_queries_never_exceed_the_running_budget_from_the_first_record(
    config: BudgetConfig, plan: list[Step]
) -> None:
    # MOA holds labels/instances under B at every step; a window of w records alone let a
    # stream shorter than w spend up to ⌊B·w⌋ up front.
    budget, queried = BudgetManager(config), 0
    for n, step in enumerate(plan, start=1):
        t = float(n)
        reason = step.wanted if step.wanted and budget.may_query("k", step.wanted, t, 0) \
            else None
        budget.record("k", reason, t)
        queried += reason is not None
        assert queried <= math.ceil(config.fraction * n - 1e-9) + 1, (n, queried)


@pytest.mark.parametrize("strategy", get_args(Strategy))
def test_every_strategy_holds_the_running_budget_warm_up_included(strategy: str) -> None:
    from datetime import UTC, datetime, timedelta

    from stream_al.learner import Learner, LearnerConfig
    from stream_al.records import OracleLabel, ParametricRecord
    from stream_al.simulate.floor import FloorConfig, FloorSimulator

    config = LearnerConfig.model_validate({"gate": {"strategy": strategy},
                                           "budget": {"fraction": 0.1}})
    learner, asked = Learner(config), 0
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    stream = FloorSimulator(FloorConfig(products=("P",)), seed=2).stream(1250)
    for n, simulated in enumerate(stream, start=1):
        now = t0 + timedelta(seconds=n)
        decision = learner.decide(ParametricRecord.model_validate(simulated.record), now)
        if decision.request is not None:
            asked += 1
            learner.apply(OracleLabel(query_id=decision.request.query_id,
                                      label=simulated.truth, labeled_at=now))
        if n >= 10:  # past the first ⌈1/B⌉ records
            assert asked <= math.ceil(0.1 * n - 1e-9) + 1, (n, asked)
    assert asked >= 0.09 * 1250  # and the budget is spent, not starved
