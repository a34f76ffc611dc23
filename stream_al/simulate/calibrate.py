"""Spec limits and the functional threshold, set so a floor fails the configured share.

Real limits come from a design; here they come from a pilot population so that the
fail rate of the simulated floor is what the scenario asks for, whatever the number of
tests or the size of the offsets.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stream_al.simulate.base import BoolArray, FloatArray
from stream_al.simulate.catalogue import Factor, TestProgram

_BISECTIONS = 40


@dataclass(frozen=True, slots=True, eq=False)
class Limits:
    """Spec limits of a program in standardised units (±inf where a test has none)."""

    lo: FloatArray
    hi: FloatArray

    def outside(self, u: FloatArray) -> BoolArray:
        """Which results (devices × tests) break a limit."""
        result: BoolArray = (u < self.lo) | (u > self.hi)
        return result


def functional_threshold(latent: FloatArray, rate: float) -> float:
    """The interaction threshold at which a share ``rate`` of the pilot fails functional.

    Examples
    --------
    >>> from stream_al.simulate.process import functional_fails
    >>> z = np.random.default_rng(0).normal(size=(20_000, 3))
    >>> t = functional_threshold(z, 0.03)
    >>> round(float(functional_fails(z, t).mean()), 3)
    0.03
    """
    speed, leak = latent[:, Factor.SPEED], latent[:, Factor.LEAK]
    score = np.where(speed > 0, speed * leak, -np.inf)
    return float(np.quantile(score, 1.0 - rate))


def spec_limits(
    program: TestProgram, u: FloatArray, also_failing: BoolArray, fail_rate: float,
    jitter: FloatArray,
) -> Limits:
    """Limits at ``k·jitter`` pilot sigmas, ``k`` found so the pilot fails ``fail_rate``.

    ``also_failing`` marks pilot devices that fail for other reasons (functional), so the
    limits make up only the rest of the fail rate.
    """
    centre, spread = u.mean(axis=0), u.std(axis=0)
    low, high = 0.5, 8.0  # sigmas: fail rate falls as k grows
    for _ in range(_BISECTIONS):
        k = 0.5 * (low + high)
        limits = _at(program, centre, spread * jitter * k)
        failing = limits.outside(u).any(axis=1) | also_failing
        low, high = (k, high) if failing.mean() > fail_rate else (low, k)
    return _at(program, centre, spread * jitter * high)


def _at(program: TestProgram, centre: FloatArray, width: FloatArray) -> Limits:
    side = program.side
    has_lo = np.array([s in ("lo", "both") for s in side])
    has_hi = np.array([s in ("hi", "both") for s in side])
    lo = np.where(has_lo, centre - width, -np.inf)
    hi = np.where(has_hi, centre + width, np.inf)
    return Limits(lo, hi)
