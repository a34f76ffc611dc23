"""Uncertainty of a predicted class distribution, as one number in [0, 1] (DESIGN §4).

Every measure is a pure function ``measure(proba, n_classes=None) -> float`` where 0 means
certain (one-hot) and 1 means maximally uncertain (uniform). ``K = max(len(proba),
n_classes or 0)``: classes missing from ``proba`` count as probability 0, so a model that
has not yet seen a class still gets a comparable score.

Inputs are cleaned, never mutated: negative, NaN and infinite values count as 0, and the
rest is renormalised (River sometimes returns unnormalised scores). A proba with no
positive mass (empty, all zero) gives 1.0: the model knows nothing. With one class
(``K == 1``) there is nothing to doubt and every measure gives 0.0.

>>> round(least_confidence({"pass": 0.9, "fail": 0.1}), 3)
0.2
>>> margin({"pass": 0.5, "fail": 0.5})
1.0
>>> entropy({}, n_classes=3)
1.0
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import Any, Final

#: Class label → probability. Keys are any hashable label; typed ``Any`` rather than
#: ``Hashable`` because ``Mapping`` is invariant in its key type, so ``Mapping[Hashable,
#: float]`` would reject the ``dict[str, float]`` every caller actually has.
Proba = Mapping[Any, float]
Measure = Callable[[Proba, int | None], float]

_CERTAIN: Final = 0.0
_CLUELESS: Final = 1.0


def _clip01(value: float) -> float:
    # Rounding can land a hair outside [0, 1]; callers rely on the closed interval.
    return min(1.0, max(0.0, value))


def _measured(proba: Mapping[str, float], n_classes: int | None,
              score: Callable[[list[float], int], float]) -> float:
    """``score`` of the normalised distribution over ``k`` classes, clipped to [0, 1];
    a model that gives nothing usable is clueless, one class alone is certain."""
    p = _normalised(proba.values())
    k = _n_classes(proba, n_classes)
    if p is None:
        return _CLUELESS
    if k <= 1:
        return _CERTAIN
    return _clip01(score(p, k))


def _margin_of(p: list[float], k: int) -> float:
    top = sorted(p, reverse=True)[:2] + [0.0]
    return 1.0 - (top[0] - top[1])


def _normalised(values: Iterable[float]) -> list[float] | None:
    """Clean and renormalise ``values``; None when there is no positive mass."""
    # NaN fails both comparisons, so it is dropped along with negatives and infinities.
    cleaned = [p if 0.0 < p < math.inf else 0.0 for p in values]
    total = sum(cleaned)
    if total == math.inf:  # values near float max: rescale by the peak, then sum
        peak = max(cleaned)
        cleaned = [p / peak for p in cleaned]
        total = sum(cleaned)
    if not total > 0.0:
        return None
    return [p / total for p in cleaned]


def _n_classes(proba: Proba, n_classes: int | None) -> int:
    return max(len(proba), n_classes or 0)


def least_confidence(proba: Proba, n_classes: int | None = None) -> float:
    """``(1 − max p)·K/(K−1)``: how far the top class is from certainty.

    Parameters
    ----------
    proba
        Class → probability, e.g. River's ``predict_proba_one`` output.
    n_classes
        Number of classes the model knows of, when ``proba`` may omit some.

    Returns
    -------
    float
        0 for a one-hot distribution, 1 for a uniform one.

    Examples
    --------
    >>> least_confidence({"a": 1.0, "b": 0.0})
    0.0
    >>> round(least_confidence({"a": 0.5, "b": 0.5}, n_classes=4), 3)
    0.667
    """
    return _measured(proba, n_classes, lambda p, k: (1.0 - max(p)) * k / (k - 1))


def margin(proba: Proba, n_classes: int | None = None) -> float:
    """``1 − (p₁ − p₂)``: one minus the gap between the two most probable classes.

    Parameters
    ----------
    proba
        Class → probability.
    n_classes
        Number of classes the model knows of (a missing second class has p₂ = 0).

    Returns
    -------
    float
        0 for a one-hot distribution, 1 when the top two classes tie.

    Examples
    --------
    >>> margin({"a": 0.7, "b": 0.2, "c": 0.1})
    0.5
    >>> margin({"a": 1.0}, n_classes=2)
    0.0
    """
    return _measured(proba, n_classes, _margin_of)


def _entropy(p: Iterable[float]) -> float:
    return -sum(q * math.log(q) for q in p if q > 0.0)


def entropy(proba: Proba, n_classes: int | None = None) -> float:
    """Shannon entropy ``H(p)/log K``, normalised so a uniform distribution gives 1.

    Parameters
    ----------
    proba
        Class → probability.
    n_classes
        Number of classes the model knows of.

    Returns
    -------
    float
        0 for a one-hot distribution, 1 for a uniform one.

    Examples
    --------
    >>> round(entropy({"a": 0.9, "b": 0.1}), 3)
    0.469
    >>> round(entropy({"a": 0.5, "b": 0.5}, n_classes=4), 3)
    0.5
    """
    return _measured(proba, n_classes, lambda p, k: _entropy(p) / math.log(k))


def vote_entropy(votes: Sequence[Hashable], n_classes: int | None = None) -> float:
    """Entropy of a committee's votes, normalised by ``log min(K, M)``.

    ``M`` is the number of votes cast; a ``None`` vote (a member with no opinion yet) is an
    abstention. No votes at all gives 1.0; one voter or one class gives 0.0.

    Parameters
    ----------
    votes
        The class each committee member predicts (e.g. the trees of an ARF).
    n_classes
        Number of classes the model knows of.

    Returns
    -------
    float
        0 when unanimous, 1 when the votes are spread as evenly as they can be.

    Examples
    --------
    >>> vote_entropy(["pass", "pass", "pass"])
    0.0
    >>> vote_entropy(["pass", "fail"])
    1.0
    """
    counts = Counter(v for v in votes if v is not None)
    m = sum(counts.values())
    if m == 0:
        return _CLUELESS
    ceiling = min(max(len(counts), n_classes or 0), m)
    if ceiling <= 1:
        return _CERTAIN
    return _clip01(_entropy(c / m for c in counts.values()) / math.log(ceiling))


def _aligned(member_probas: Sequence[Proba]) -> tuple[list[Hashable], list[list[float]]]:
    """Classes seen by any member, and each usable member's normalised distribution."""
    classes = list(dict.fromkeys(c for proba in member_probas for c in proba))
    members = [_normalised(proba.get(c, 0.0) for c in classes) for proba in member_probas]
    return classes, [p for p in members if p is not None]


def _kl(p: Sequence[float], q: Sequence[float]) -> float:
    # qi ≥ pi/m > 0 in exact arithmetic (q is the mean); a qi of 0 is a subnormal pi
    # that underflowed, its term is 0 to within a double, so it is skipped.
    return math.fsum(pi * math.log(pi / qi) for pi, qi in zip(p, q, strict=True)
                     if pi > 0.0 and qi > 0.0)


def consensus_kl(member_probas: Sequence[Proba], n_classes: int | None = None) -> float:
    """Mean KL divergence of each member to the committee's mean distribution.

    Normalised by ``log min(K, M)`` (its maximum, reached when every member is certain of a
    different class) and clipped to [0, 1]. Members with no positive mass abstain.

    Parameters
    ----------
    member_probas
        Each committee member's ``predict_proba_one`` output.
    n_classes
        Number of classes the model knows of.

    Returns
    -------
    float
        0 when every member predicts the same distribution, 1 at maximal disagreement.

    Examples
    --------
    >>> consensus_kl([{"a": 0.8, "b": 0.2}, {"a": 0.8, "b": 0.2}])
    0.0
    >>> consensus_kl([{"a": 1.0}, {"b": 1.0}])
    1.0
    """
    classes, members = _aligned(member_probas)
    m = len(members)
    if m == 0:
        return _CLUELESS
    ceiling = min(max(len(classes), n_classes or 0), m)
    if ceiling <= 1:
        return _CERTAIN
    mean = [math.fsum(column) / m for column in zip(*members, strict=True)]
    spread = math.fsum(_kl(p, mean) for p in members) / m
    return _clip01(spread / math.log(ceiling))


#: Single-model measures by their configuration name.
MEASURES: Final[dict[str, Measure]] = {
    "least_confidence": least_confidence,
    "margin": margin,
    "entropy": entropy,
}
