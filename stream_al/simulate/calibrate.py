"""Spec limits and the functional threshold, set so a floor fails the configured share.

Real limits come from a design; here they come from a pilot population so that the
fail rate of the simulated floor is what the scenario asks for, whatever the number of
tests or the size of the offsets.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stream_al.simulate.base import BoolArray, FloatArray
from stream_al.simulate.catalogue import Factor, Side, TestProgram

_BISECTIONS = 30  # 8 sigmas / 2**30: far finer than the pilot's noise


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
    program: TestProgram, u_key: FloatArray, also_failing: BoolArray, fail_rate: float,
    jitter: FloatArray,
) -> Limits:
    """Limits at ``k·jitter`` pilot sigmas, ``k`` found so the pilot fails ``fail_rate``.

    ``u_key`` holds the pilot's results on the key tests only (``program.key`` columns).
    ``also_failing`` marks pilot devices that fail for other reasons (functional), so the
    limits make up only the rest of the fail rate.
    """
    sides = [s for s in program.side if s is not None]
    centre, spread = u_key.mean(axis=0), u_key.std(axis=0) * jitter
    low, high = 0.5, 8.0  # sigmas: fail rate falls as k grows
    for _ in range(_BISECTIONS):
        k = 0.5 * (low + high)
        failing = _at(sides, centre, spread * k).outside(u_key).any(axis=1) | also_failing
        low, high = (k, high) if failing.mean() > fail_rate else (low, k)
    key_limits = _at(sides, centre, spread * high)
    lo, hi = np.full(len(program.tests), -np.inf), np.full(len(program.tests), np.inf)
    lo[program.key], hi[program.key] = key_limits.lo, key_limits.hi
    return Limits(lo, hi)


def _at(sides: list[Side], centre: FloatArray, width: FloatArray) -> Limits:
    has_lo = np.array([s in ("lo", "both") for s in sides])
    has_hi = np.array([s in ("hi", "both") for s in sides])
    lo = np.where(has_lo, centre - width, -np.inf)
    return Limits(lo, np.where(has_hi, centre + width, np.inf))
