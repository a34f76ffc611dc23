"""Gate configuration and the factory that turns it into a gate."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from stream_al.errors import ConfigError
from stream_al.gates.base import Gate
from stream_al.gates.fixed import FixedGate
from stream_al.gates.hybrid import HybridGate
from stream_al.gates.randomized import RandomizedUncertaintyGate
from stream_al.gates.ranked import RankedGate
from stream_al.gates.sampling import RandomGate
from stream_al.gates.variable import VariableUncertaintyGate
from stream_al.novelty import NoveltyName

Strategy = Literal["random", "fixed", "variable", "randomized", "hybrid"]
MeasureName = Literal["least_confidence", "margin", "entropy"]
Scale = Literal["rank", "raw"]

#: Adaptive gates start at the top of the range. θ falls one step on every affordable
#: record it lets pass, but rises only on a query, which the budget rations: from 1.0 it
#: reaches a typical θ* = 0.3 in ln(1/0.3)/s ≈ 120 affordable records, while from the
#: bottom (0.001) it would need ln(300)/s ≈ 570 queries, spent unselectively. Like the
#: paper's start (θ = 1 on the max posterior), it leaves a model that knows nothing
#: (u = 1) eligible.
ADAPTIVE_START = 1.0
#: Fixed θ: u ≥ 0.5 is max p ≤ 0.75 for two classes under least confidence.
FIXED_START = 0.5
#: On the rank scale θ is a share of recent uncertainties: adaptive gates start at the
#: median, where the scores are, rather than at the top, where they must first come down.
RANK_START = 0.5


class GateConfig(BaseModel):
    """How records are chosen for the oracle (DESIGN §4).

    >>> GateConfig(strategy="randomized", delta=0.5).step
    0.01
    >>> GateConfig(step=1.5)
    Traceback (most recent call last):
    ...
    pydantic_core._pydantic_core.ValidationError: 1 validation error for GateConfig
    step
      Input should be less than 1 [...]
    ...
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    strategy: Strategy = "randomized"
    scale: Scale = Field(
        "rank", description="what θ is compared with: rank (u's share among the model's "
        "recent uncertainties, so one rule fits every model's calibration) or raw (u itself)")
    rank_window: int = Field(500, ge=10, le=100_000,
                             description="rank scale: how many recent uncertainties a rank "
                             "is judged against")
    threshold: float | None = Field(
        None, ge=0.0, le=1.0,
        description="initial uncertainty threshold θ in [0, 1] (0 queries every record); "
        f"None picks the strategy's default ({RANK_START} for adaptive gates on the rank "
        f"scale, {ADAPTIVE_START} on the raw one, {FIXED_START} for fixed)",
    )
    step: float = Field(0.01, gt=0.0, lt=1.0,
                        description="relative threshold step s in (0, 1) (paper: 0.01)")
    delta: float = Field(1.0, ge=0.0,
                         description="randomized: std of the multiplier η, ≥ 0 (paper: 1.0)")
    novelty_threshold: float = Field(ADAPTIVE_START, ge=0.0, le=1.0,
                                     description="hybrid: initial threshold; novelty scores "
                                     "are in [0, 1]")
    novelty_rate: float = Field(
        0.05, gt=0, lt=1, description="hybrid: share of affordable records on which novelty "
        "alone may trigger a query (the rest of the budget follows uncertainty)")
    diversity: float = Field(
        0.0, ge=0.0, le=1.0, description="δ: the gate sees u × (1 − δ · nearness), nearness "
        "in (0, 1] saying how like the model's last queries a record is (stream_al/"
        "diversity.py); 0 ignores it")
    novelty: NoveltyName = Field(
        "principal", description="hybrid: the novelty detector: principal (distance along "
        "the principal axes of the measurements) or half_space (River's Half-Space Trees)")
    hybrid_inner: Literal["variable", "randomized"] = "variable"
    rate: float | None = Field(
        None, ge=0.0, le=1.0,
        description="random: query probability in [0, 1]; None uses the budget fraction",
    )
    measure: MeasureName = "entropy"


def make_gate(config: GateConfig, seed: int, budget_fraction: float | None = None) -> Gate:
    """A fresh gate for one model key.

    Parameters
    ----------
    config
        The gate settings (re-validated here: ``model_copy(update=…)`` skips validation).
    seed
        Seed of the gate's own random generator (derive one per model key).
    budget_fraction
        The budget fraction B, the random strategy's query probability when ``config.rate``
        is unset.

    Examples
    --------
    >>> gate = make_gate(GateConfig(strategy="hybrid"), seed=3)
    >>> gate.name, gate.threshold
    ('hybrid', 0.5)
    >>> make_gate(GateConfig(strategy="variable", scale="raw"), seed=3).threshold
    1.0
    >>> make_gate(GateConfig(strategy="random"), seed=3, budget_fraction=0.1).name
    'random'
    """
    config = GateConfig.model_validate(config.model_dump())
    gate = _unranked_gate(config, seed, budget_fraction)
    if config.scale == "rank" and config.strategy != "random":
        # Random ignores u, so it has nothing to rank.
        return RankedGate(gate, config.rank_window, seed ^ _RANK_SEED)
    return gate


#: Mixed into the model's seed so the tie-breaking draws are not the gate's own draws.
_RANK_SEED = 0x52414E4B


def _unranked_gate(config: GateConfig, seed: int, budget_fraction: float | None) -> Gate:
    if config.strategy == "random":
        return RandomGate(_random_rate(config, budget_fraction), seed)
    if config.strategy == "fixed":
        return FixedGate(_start(config, FIXED_START))
    inner = _uncertainty_gate(config, seed)
    if config.strategy == "hybrid":
        return HybridGate(inner, config.novelty_threshold, config.step, config.novelty_rate)
    return inner


def _start(config: GateConfig, default: float) -> float:
    return default if config.threshold is None else config.threshold


def _uncertainty_gate(
    config: GateConfig, seed: int
) -> VariableUncertaintyGate | RandomizedUncertaintyGate:
    theta = _start(config, RANK_START if config.scale == "rank" else ADAPTIVE_START)
    wants_jitter = config.strategy == "randomized" or (
        config.strategy == "hybrid" and config.hybrid_inner == "randomized"
    )
    if wants_jitter:
        return RandomizedUncertaintyGate(seed, theta, config.step, config.delta)
    return VariableUncertaintyGate(theta, config.step)


def _random_rate(config: GateConfig, budget_fraction: float | None) -> float:
    rate = config.rate if config.rate is not None else budget_fraction
    if rate is None:
        raise ConfigError(
            "gate.rate is unset and no budget fraction was given: the random strategy "
            "needs a query probability; set gate.rate, or call make_gate(..., "
            "budget_fraction=budget.fraction)"
        )
    return rate
