"""The logistic template's prediction in one pass over the record.

Between two labels nothing in the ``logistic`` pipeline moves: the imputer's fill values
and presence rates, the scaler's means and variances and each class's weights only change
in ``learn_one``. Folded together they are one coefficient per feature and class, so a
prediction is a single loop over the record's values instead of three dictionaries built
and walked in turn (the imputer's output, the scaler's, then one dot product per class).
It was the largest single stage of the in-memory pipeline (14 % of its CPU, cProfile).

The distribution is River's to the last few bits (the sums run in another order):
``tests/unit/test_linear_scorer.py`` holds it to 1e-9 of the pipeline it folds, on
records with missing, left-out, unknown and extreme values. Whatever it does not
handle exactly as the pipeline would (another template, a value that is not finite, a
feature named like the imputer's own) it declines, and the pipeline answers.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from river import compose, linear_model, multiclass, optim, preprocessing

from stream_al.models import IMPUTED, Features, MeanImputer

#: River's sigmoid saturates to exactly 0 and 1 beyond this logit.
_SATURATED = 30.0


class LinearScorer:
    """One model's ``predict_proba_one`` at one state, precomputed.

    For class c, the pipeline's logit is b_c + Σ_i w_ci · s_i, where s_i is feature i
    after imputing and scaling. A kept feature the record lacks is filled, so its term is
    a constant; one it has adds a_ci · (x_i − fill_i) to that constant, with
    a_ci = w_ci / σ_i. ``@imputed`` comes from the presence rates of the values held.
    """

    def __init__(self, labels: list[Any], base: list[float],
                 coefficients: dict[Hashable, tuple[float, float, tuple[float, ...]]],
                 expected: float,
                 imputed: tuple[float, float, tuple[float, ...]]) -> None:
        self.labels = labels
        #: Per class: intercept plus every kept feature's term at its fill value.
        self.base = base
        #: Kept feature → (presence rate, fill value, a_ci per class).
        self.coefficients = coefficients
        self.expected = expected
        #: ``@imputed``'s scaler mean, 1/σ (0 when σ is 0) and weight per class.
        self.imputed = imputed
        #: Two classes: the same as ``coefficients``, flat (rate, fill, a_0, a_1).
        self.pairs = {name: (rate, fill, *per_class)
                      for name, (rate, fill, per_class) in coefficients.items()
                      } if len(labels) == 2 else None

    @classmethod
    def compile(cls, model: compose.Pipeline) -> LinearScorer | None:
        """The scorer of ``model`` as it is now; None when it is not the logistic
        template's shape (the pipeline then predicts as usual)."""
        steps = list(model.steps.values())
        if len(steps) != 3 or getattr(compose.Pipeline, "_LEARN_UNSUPERVISED_DURING_PREDICT",
                                      False):
            return None
        imputer, scaler, final = steps
        if not (type(imputer) is MeanImputer and type(scaler) is preprocessing.StandardScaler
                and type(final) is multiclass.OneVsRestClassifier):
            return None
        if not scaler.with_std or scaler.window_size is not None or IMPUTED in imputer.means:
            return None
        members: list[tuple[Any, Any]] = list(final.classifiers.items())
        if not members or not all(type(member) is linear_model.LogisticRegression
                                  and type(member.loss) is optim.losses.Log
                                  for _, member in members):
            return None
        weights = [member.weights for _, member in members]
        means, variances = scaler.means, scaler.vars

        def scale(name: Hashable) -> tuple[float, float]:
            # ``get``: reading River's defaultdicts must not add the name to them.
            variance = variances.get(name, 0.0)
            return means.get(name, 0.0), (1.0 / variance**0.5 if variance else 0.0)

        plan = imputer.fill_plan()
        base = [float(member.intercept) for _, member in members]
        coefficients: dict[Hashable, tuple[float, float, tuple[float, ...]]] = {}
        for name, rate, fill in plan.kept:
            mean, inverse_sd = scale(name)
            per_class = tuple(w.get(name, 0.0) * inverse_sd for w in weights)
            for c, a in enumerate(per_class):
                base[c] += a * (fill - mean)
            coefficients[name] = (rate, fill, per_class)
        mean, inverse_sd = scale(IMPUTED)
        imputed = (mean, inverse_sd, tuple(w.get(IMPUTED, 0.0) for w in weights))
        return cls([label for label, _ in members], base, coefficients,
                   plan.expected, imputed)

    def predict_proba(self, x: Features) -> dict[Any, float] | None:
        """The distribution over the classes learnt, or None where the pipeline must
        answer (a value that is not finite, a feature named ``@imputed``)."""
        if IMPUTED in x:  # the imputer overwrites it: the pipeline's way, not ours
            return None
        logits = self._two_logits(x) if self.pairs is not None else self._logits(x)
        votes = [_sigmoid(z) for z in logits]
        if not all(math.isfinite(v) for v in votes):
            return None
        total = sum(votes)
        if total:
            return {label: v / total for label, v in zip(self.labels, votes, strict=True)}
        return {label: 1 / len(votes) for label in self.labels}

    def predict_proba_rows(self, columns: Sequence[Hashable | None],
                           values: npt.NDArray[np.float64], has: npt.NDArray[np.bool_],
                           extras: Sequence[Features]) -> list[dict[Any, float] | None]:
        """``predict_proba`` for a run of records at once: row i's features are
        ``columns[j]`` → ``values[i, j]`` where ``has[i, j]`` (None: not a feature),
        then ``extras[i]``. The same distribution as one record at a time but for the
        order of its sums (held to 1e-12 in the tests); None where a row would be None."""
        rows = len(extras)
        declined = np.zeros(rows, dtype=bool)
        # The extras (spatial, site, tester flags) are a few names per record: columns
        # of their own, so every term is summed by the same matrix product.
        extra_index: dict[Hashable, int] = {}
        cells: list[tuple[int, int, float]] = []
        for i, extra in enumerate(extras):
            if IMPUTED in extra:
                declined[i] = True
            for name, value in extra.items():
                if value is not None:
                    j = extra_index.setdefault(name, len(extra_index))
                    cells.append((i, j, value))
        if extra_index:
            more = np.full((rows, len(extra_index)), np.nan)
            at_row, at_column, cell_values = zip(*cells, strict=True)
            more[at_row, at_column] = cell_values
            columns = [*columns, *extra_index]
            values = np.hstack([values, more])
            has = np.hstack([has, more == more])
        k, width = len(self.labels), len(columns)
        fills, rates = np.zeros(width), np.zeros(width)
        slopes = np.zeros((width, k))
        coefficients = self.coefficients
        for j, column in enumerate(columns):
            known = coefficients.get(column) if column is not None else None
            if known is not None:
                rates[j], fills[j], slopes[j] = known
        logits = np.where(has, values - fills, 0.0) @ slopes + np.asarray(self.base)
        held = has @ rates
        mean, inverse_sd, weights = self.imputed
        share = (1.0 - np.minimum(1.0, held / self.expected) if self.expected
                 else np.zeros(rows))
        logits += np.outer((share - mean) * inverse_sd, weights)
        with np.errstate(over="ignore", invalid="ignore"):
            votes = np.where(logits < -_SATURATED, 0.0, np.where(
                logits > _SATURATED, 1.0, 1.0 / (1.0 + np.exp(-logits))))
            votes[np.isnan(logits)] = np.nan
            totals = votes.sum(axis=1)
            proba = np.where(totals[:, None] > 0, votes / totals[:, None], 1.0 / k)
        declined |= ~np.isfinite(votes).all(axis=1)
        labels = self.labels
        return [None if no else dict(zip(labels, row, strict=True))
                for no, row in zip(declined.tolist(), proba.tolist(), strict=True)]

    def _logits(self, x: Features) -> list[float]:
        logits = list(self.base)
        coefficients, held, classes = self.coefficients, 0.0, range(len(logits))
        for name, value in x.items():
            # A name never learnt with a value (scaled to 0) or left out as mostly
            # missing has no term.
            if value is None or (known := coefficients.get(name)) is None:
                continue
            rate, fill, per_class = known
            held += rate
            shift = value - fill
            for c in classes:
                logits[c] += per_class[c] * shift
        scaled = self._imputed_scaled(held)
        return [z + w * scaled for z, w in zip(logits, self.imputed[2], strict=True)]

    def _two_logits(self, x: Features) -> list[float]:
        # The pass/fail floor's case, unrolled: twice as fast as the loop over classes.
        pairs, held = self.pairs, 0.0
        assert pairs is not None
        z0, z1 = self.base
        for name, value in x.items():
            if value is None or (known := pairs.get(name)) is None:
                continue
            rate, fill, a0, a1 = known
            held += rate
            shift = value - fill
            z0 += a0 * shift
            z1 += a1 * shift
        scaled = self._imputed_scaled(held)
        w0, w1 = self.imputed[2]
        return [z0 + w0 * scaled, z1 + w1 * scaled]

    def _imputed_scaled(self, held: float) -> float:
        """``@imputed`` after scaling, from the presence rates of the values held."""
        mean, inverse_sd, _ = self.imputed
        # With no kept feature the imputer writes 0.0.
        share = 1.0 - min(1.0, held / self.expected) if self.expected else 0.0
        return (share - mean) * inverse_sd


def _sigmoid(z: float) -> float:
    if z != z:  # NaN: let the pipeline say so
        return z
    if z < -_SATURATED:
        return 0.0
    if z > _SATURATED:
        return 1.0
    return 1.0 / (1.0 + math.exp(-z))

