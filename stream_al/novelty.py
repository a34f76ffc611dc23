"""Novelty: how unlike the recent stream a record is, for the hybrid gate (DESIGN §4).

Two detectors, each learnt on every record, labelled or not: ``PrincipalNovelty`` (the
default: distance along the principal axes of the measurements) and ``NoveltyScorer``
(River's Half-Space Trees on min-max scaled features). On the simulated floor's rare
failure mode they separate it with AUC 0.976 and 0.600 (``stream-al bench novelty``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt
from river import anomaly, preprocessing

Features = Mapping[str, float | None]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


#: The detectors ``GateConfig.novelty`` may name.
NoveltyName = Literal["principal", "half_space"]


class Novelty(Protocol):
    """A detector the hybrid gate can use: score a record, then learn it."""

    def score_then_learn(self, x: Features) -> float: ...


def measured_only(x: Features) -> Features:
    """The measured values only: derived flags (``@site=2``, ``@tester=…``) make a rare
    but ordinary site or tester look novel; on the simulated floor they took the Half-Space
    Trees' separation of the rare failure mode from AUC 0.63 to 0.47."""
    return {name: value for name, value in x.items() if not name.startswith("@")}


def make_novelty(name: NoveltyName, seed: int) -> Novelty:
    """The detector ``GateConfig.novelty`` names (``seed`` seeds the random trees)."""
    if name == "half_space":
        return NoveltyScorer(seed=seed)
    return PrincipalNovelty()

#: Value given to a feature missing from the very first record, in scaled units.
_MIDDLE = 0.5


def _finite(x: Features) -> dict[str, float]:
    # Missing, NaN and infinite values are dropped: HST sends a missing feature down the
    # branch most records took, a data-driven imputation.
    return {k: float(v) for k, v in x.items() if v is not None and math.isfinite(v)}


class NoveltyScorer:
    """Anomaly score in [0, 1] of each record against the recent stream, then learn it.

    Parameters
    ----------
    seed
        Seed of the trees' random splits.
    n_trees, height, window_size
        Half-Space Trees settings (River's defaults). Scores are 0.0 during the first
        ``window_size`` records, while there is no reference window yet.

    Examples
    --------
    >>> import random
    >>> rng, scorer = random.Random(0), NoveltyScorer(seed=1, window_size=100)
    >>> for _ in range(300):
    ...     _ = scorer.score_then_learn({"vdd": rng.gauss(0.9, 0.01), "leak": None})
    >>> usual = scorer.score_then_learn({"vdd": 0.9})
    >>> odd = scorer.score_then_learn({"vdd": 0.95, "leak": 3.2})
    >>> 0.0 <= usual < odd <= 1.0
    True

    Scores are relative, not calibrated probabilities (typical records score around 0.8
    here): the hybrid gate's adaptive novelty threshold finds the level.
    """

    def __init__(
        self, seed: int, n_trees: int = 10, height: int = 8, window_size: int = 250
    ) -> None:
        self._scaler = preprocessing.MinMaxScaler()
        self._trees = anomaly.HalfSpaceTrees(
            n_trees=n_trees, height=height, window_size=window_size, seed=seed
        )
        self._planted = False  # River builds the trees on the first learn_one

    def score_then_learn(self, x: Features) -> float:
        """The anomaly score of ``x`` before learning it (None/NaN values allowed)."""
        present = _finite(x)
        score = float(self._trees.score_one(self._scaled(present)))
        self._learn(present, x.keys())
        return min(1.0, max(0.0, score))

    def _scaled(self, present: dict[str, float]) -> dict[str, float]:
        # A feature the scaler has never seen scales to NaN; drop it like a missing one.
        return _finite(self._scaler.transform_one(present))

    def _learn(self, present: dict[str, float], names: Iterable[str]) -> None:
        self._scaler.learn_one(present)
        scaled = self._scaled(present)
        if not self._planted:
            # The trees split only on the features of the first record they learn: give
            # them every feature it names, even those missing a value this once.
            scaled = dict.fromkeys(names, _MIDDLE) | scaled
            if not scaled:
                return
            self._planted = True
        self._trees.learn_one(scaled)


class PrincipalNovelty:
    """Tail probability in [0, 1] of a record's distance from the recent population,
    measured along the few axes on which the measurements move together.

    A test floor's measurements are driven by a handful of process factors (speed,
    leakage, threshold voltage): dozens of tests are a few factors plus per-test noise.
    A failure mode that takes a factor where the population rarely goes, while every
    test stays inside its limits, is clearer in the factor than in any one test: the
    principal axes average the per-test noise away. Detectors that look at features one
    at a time or at their ranges (Half-Space Trees) miss it, and the full Mahalanobis
    distance dilutes it in the noise of every other test. The minor axes (one test off
    on its own) are not scored: that is what a test's limits are for.

    The scorer keeps an exponentially weighted mean and covariance, finds the principal
    axes of the correlation matrix (Kaiser's rule: eigenvalues above 1) and scores the
    Mahalanobis distance along them as a χ² probability (``chi2_rank``). Features of
    one sign are compared as ``log|x|``: leakage currents are log-normal, and their low
    end sits squeezed against zero on a linear scale; a feature that shows a zero or
    both signs is compared linearly from then on. Constant features and features seen
    fewer than ``warmup`` times take no part. Learning clips deviations at ``clip_sd``
    standard deviations, so one wild reading (1e200) cannot take the statistics over.

    Parameters
    ----------
    window
        Horizon of the exponential weights, in records: the population is the recent one.
    max_features
        Features beyond the first ``max_features`` seen are ignored (cost is quadratic).
    max_components
        At most this many principal axes are scored.
    refresh
        Records between re-computations of the axes.
    warmup
        Scores are 0.0 until this many records are learnt.
    clip_sd
        Deviations beyond this many standard deviations are learnt as this many.

    Examples
    --------
    Three speed tests and three leakage tests, driven by two process factors:

    >>> import random
    >>> rng, scorer = random.Random(0), PrincipalNovelty(warmup=50, refresh=10)
    >>> def device(speed, leak):
    ...     fmax = {f"fmax{i}": 1 + 0.1 * speed + rng.gauss(0, 0.05) for i in range(3)}
    ...     return fmax | {f"leak{i}": 0.4 * math.exp(0.5 * leak + rng.gauss(0, 0.3))
    ...                    for i in range(3)}
    >>> for _ in range(400):
    ...     _ = scorer.score_then_learn(device(rng.gauss(0, 1), rng.gauss(0, 1)))
    >>> usual = scorer.score_then_learn(device(0.0, 0.0))
    >>> fast_and_tight = scorer.score_then_learn(device(1.5, -2.5))
    >>> 0.0 <= usual < 0.5 < 0.9 < fast_and_tight <= 1.0
    True
    """

    def __init__(self, window: int = 1000, max_features: int = 128, max_components: int = 8,
                 refresh: int = 25, warmup: int = 100, clip_sd: float = 6.0) -> None:
        self.window, self.max_features, self.max_components = window, max_features, max_components
        self.refresh, self.warmup, self.clip_sd = refresh, warmup, clip_sd
        self._columns: dict[str, int] = {}
        self._sign = np.zeros(0)  # +1/-1: compared as log|x|; 0: linearly
        self._seen = np.zeros(0)
        self._stale = np.zeros(0, dtype=bool)  # learnt in other units than the axes were
        self._mean = np.zeros(0)
        self._cov = np.zeros((0, 0))
        self._learnt = 0
        # The scoring basis, from the last refresh: which columns, their sds, the axes.
        self._active = np.zeros(0, dtype=np.intp)
        self._sd = np.zeros(0)
        self._axes = np.zeros((0, 0))
        self._variances = np.zeros(0)

    def score_then_learn(self, x: Features) -> float:
        """The novelty of ``x`` before learning it (None/NaN/inf values allowed)."""
        values, unheard_of = self._vector(x)
        present = ~np.isnan(values)
        deviation = np.where(present, values - self._mean, 0.0)
        score = 1.0 if unheard_of and self._learnt >= self.warmup else self._score(deviation)
        self._learn(deviation, present)
        return score

    # -- internals -------------------------------------------------------------------

    def _vector(self, x: Features) -> tuple[FloatArray, bool]:
        """``x`` in the scorer's columns and units (NaN where missing), and whether it
        broke the sign a feature had kept for ``warmup`` records or more (never seen)."""
        columns = self._columns
        for name, value in x.items():
            if name not in columns and len(columns) < self.max_features \
                    and value is not None and math.isfinite(value):
                self._add_column(name, value)
        raw = np.full(len(columns), np.nan)
        for name, value in x.items():
            column = columns.get(name)
            if column is not None and value is not None:
                raw[column] = value
        raw[~np.isfinite(raw)] = np.nan
        broken = (self._sign != 0) & (raw * self._sign <= 0)  # NaN compares False
        unheard_of = bool(np.any(broken & (self._seen >= self.warmup)))
        for broken_column in np.flatnonzero(broken).tolist():
            self._go_linear(broken_column, float(raw[broken_column]))
        logged = self._sign != 0
        values = raw.copy()
        with np.errstate(invalid="ignore"):
            values[logged] = np.log(np.abs(raw[logged]))
        # No measurement is beyond 1e100; a hostile one is bounded so squares stay finite.
        return np.clip(values, -_HUGE, _HUGE), unheard_of

    def _add_column(self, name: str, value: float) -> None:
        column = len(self._columns)
        self._columns[name] = column
        sign = 0.0 if value == 0.0 else math.copysign(1.0, value)
        self._sign = np.append(self._sign, sign)
        self._seen = np.append(self._seen, 0.0)
        self._stale = np.append(self._stale, False)
        first = math.log(abs(value)) if sign else min(max(value, -_HUGE), _HUGE)
        self._mean = np.append(self._mean, first)
        grown = np.zeros((column + 1, column + 1))
        grown[:column, :column] = self._cov
        self._cov = grown

    def _go_linear(self, column: int, value: float) -> None:
        """The feature broke its sign: forget what was learnt of it in log units."""
        self._sign[column] = 0.0
        self._seen[column] = 0.0
        self._mean[column] = min(max(value, -_HUGE), _HUGE)
        self._cov[column, :] = 0.0
        self._cov[:, column] = 0.0
        self._stale[column] = True  # left out of scores until the next refresh

    def _score(self, deviation: FloatArray) -> float:
        if not len(self._variances) or self._learnt < self.warmup:
            return 0.0
        active = self._active
        deviation = np.where(self._stale, 0.0, deviation)
        with np.errstate(over="ignore"):  # a hostile 1e300 is infinitely novel: score 1.0
            z = deviation[active] / self._sd
            projected = z @ self._axes
            distance = float(np.sum(projected * projected / self._variances))
        if math.isnan(distance):
            return 1.0
        return chi2_rank(distance, len(self._variances))

    def _learn(self, deviation: FloatArray, present: BoolArray) -> None:
        self._learnt += 1
        self._seen += present
        rate = 1.0 / min(self._learnt, self.window)
        if self._learnt > self.warmup:
            sd = np.sqrt(np.maximum(np.diag(self._cov), 0.0))
            limit = self.clip_sd * sd
            deviation = np.where(sd > 0, np.clip(deviation, -limit, limit), deviation)
        self._mean += rate * deviation
        # West's exponentially weighted covariance: C ← (1 − a)(C + a·d·dᵀ).
        self._cov += rate * np.outer(deviation, deviation)
        self._cov *= 1.0 - rate
        if self._learnt % self.refresh == 0:
            self._find_axes()

    def _find_axes(self) -> None:
        """The principal axes of the correlation matrix of the usable columns.

        Correlation, not covariance: units differ by orders of magnitude (mA beside V),
        and the axes of a covariance would follow whichever test has the largest unit."""
        variance = np.diag(self._cov)
        usable = (self._seen >= self.warmup) & (variance > _CONSTANT * (1.0 + self._mean ** 2))
        active = np.flatnonzero(usable)
        if len(active) < 2:
            self._variances = np.zeros(0)
            return
        sd = np.sqrt(variance[active])
        correlation = self._cov[np.ix_(active, active)] / np.outer(sd, sd)
        eigenvalues, eigenvectors = np.linalg.eigh(correlation)  # ascending
        kept = max(1, min(self.max_components, int(np.sum(eigenvalues > 1.0))))
        self._active, self._sd = active, sd
        self._stale[:] = False
        self._axes = eigenvectors[:, ::-1][:, :kept].copy()
        self._variances = eigenvalues[::-1][:kept].copy()


#: Largest deviation learnt, in the feature's units (its square stays finite).
_HUGE = 1e100
#: Relative variance below which a feature is taken as constant (a fixed trim code).
_CONSTANT = 1e-12


def chi2_rank(distance: float, dof: int) -> float:
    """P(χ²_dof ≤ distance), by Wilson–Hilferty's normal approximation (|error| < 0.01
    for dof ≥ 2; exact enough to rank records, and no SciPy).

    >>> round(chi2_rank(2.0, 2), 2), round(chi2_rank(13.8, 2), 3)
    (0.63, 0.999)
    """
    ratio = max(distance, 0.0) / dof
    spread = 2.0 / (9.0 * dof)
    z = (ratio ** (1.0 / 3.0) - (1.0 - spread)) / math.sqrt(spread)
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))
