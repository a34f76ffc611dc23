"""Novelty scores: in [0, 1], computed before learning, higher for unusual records."""

from __future__ import annotations

import math
import pickle
import random
import statistics

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream_al.evaluation import rank_auc
from stream_al.novelty import (
    Features,
    NoveltyScorer,
    PrincipalNovelty,
    chi2_rank,
    make_novelty,
    measured_only,
)

values = st.none() | st.floats(allow_nan=True, allow_infinity=True)
records = st.dictionaries(st.sampled_from(["vdd", "idd", "fmax", "leak"]), values, max_size=4)


def _small(seed: int = 1, window_size: int = 10) -> NoveltyScorer:
    return NoveltyScorer(seed=seed, n_trees=3, height=4, window_size=window_size)


def _gaussian_stream(n: int, seed: int = 0) -> list[Features]:
    rng = random.Random(seed)
    return [{"vdd": rng.gauss(0.9, 0.01), "leak": rng.gauss(0.4, 0.05)} for _ in range(n)]


def _trained(stream: list[Features], seed: int = 1) -> NoveltyScorer:
    scorer = NoveltyScorer(seed=seed, window_size=100)
    for x in stream:
        scorer.score_then_learn(x)
    return scorer


@pytest.fixture(scope="module")
def trained() -> NoveltyScorer:
    """Trained once: tests score copies of it, never it."""
    return _trained(_gaussian_stream(400))


def _score_alone(scorer: NoveltyScorer, x: Features) -> float:
    """Score one record on a copy, so records are compared against the same history."""
    copy: NoveltyScorer = pickle.loads(pickle.dumps(scorer))  # noqa: S301 (our own object)
    return copy.score_then_learn(x)


@settings(max_examples=50)
@given(stream=st.lists(records, max_size=40))
def test_any_record_scores_in_unit_interval_and_is_not_mutated(stream: list[Features]) -> None:
    scorer = _small()
    for x in stream:
        before = list(x.items())
        assert 0.0 <= scorer.score_then_learn(x) <= 1.0
        assert list(x.items()) == before


def test_each_record_is_scored_before_it_is_learnt() -> None:
    # HST has no reference window until window_size records are learnt: learning the
    # 10th record before scoring it would already give it a score.
    scorer = _small(window_size=10)
    scores = [scorer.score_then_learn(x) for x in _gaussian_stream(11)]
    assert scores[:10] == [0.0] * 10
    assert scores[10] > 0.0


def test_unusual_records_score_higher_than_usual_ones(trained: NoveltyScorer) -> None:
    scorer = trained
    usual = _score_alone(scorer, {"vdd": 0.9, "leak": 0.4})
    assert _score_alone(scorer, {"vdd": 0.96, "leak": 0.4}) > usual
    assert _score_alone(scorer, {"vdd": 0.9, "leak": 0.9}) > usual


def test_a_feature_missing_from_the_first_record_still_counts() -> None:
    stream = _gaussian_stream(400)
    stream[0] = {"vdd": 0.9, "leak": None}
    scorer = _trained(stream)
    usual = _score_alone(scorer, {"vdd": 0.9, "leak": 0.4})
    assert _score_alone(scorer, {"vdd": 0.9, "leak": 0.9}) > usual


@pytest.mark.parametrize("missing", [None, math.nan, math.inf])
def test_missing_values_are_tolerated_and_sent_the_usual_way(
    trained: NoveltyScorer, missing: float | None
) -> None:
    scorer = trained
    score = _score_alone(scorer, {"vdd": 0.9, "leak": missing})
    assert score <= _score_alone(scorer, {"vdd": 0.9, "leak": 0.9})


def test_an_empty_first_record_does_not_stop_learning() -> None:
    scorer = _small()
    scorer.score_then_learn({"vdd": None})
    scores = [scorer.score_then_learn(x) for x in _gaussian_stream(30)]
    assert scores[-1] > 0.0


def test_scores_are_deterministic_for_a_seed_and_use_it() -> None:
    stream = _gaussian_stream(60)
    a, b, c = _small(seed=4), _small(seed=4), _small(seed=5)
    scores_a = [a.score_then_learn(x) for x in stream]
    assert scores_a == [b.score_then_learn(x) for x in stream]
    assert scores_a != [c.score_then_learn(x) for x in stream]


def test_pickle_round_trip_continues_identically() -> None:
    stream = _gaussian_stream(80)
    scorer = _small()
    for x in stream[:40]:
        scorer.score_then_learn(x)
    restored: NoveltyScorer = pickle.loads(pickle.dumps(scorer))  # noqa: S301 (our own object)
    assert [restored.score_then_learn(x) for x in stream[40:]] == [
        scorer.score_then_learn(x) for x in stream[40:]
    ]


# -- PrincipalNovelty: distance along the principal axes ------------------------------


def _factor_device(rng: random.Random, speed: float, leak: float) -> dict[str, float]:
    """Three speed tests and three log-normal leakage tests, each driven by one factor."""
    fmax = {f"fmax{i}": 1 + 0.1 * speed + rng.gauss(0, 0.05) for i in range(3)}
    return fmax | {f"leak{i}": 0.4 * math.exp(0.5 * leak + rng.gauss(0, 0.3)) for i in range(3)}


def _population(rng: random.Random, n: int) -> list[dict[str, float]]:
    return [_factor_device(rng, rng.gauss(0, 1), rng.gauss(0, 1)) for _ in range(n)]


@pytest.fixture(scope="module")
def principal() -> PrincipalNovelty:
    """Trained once on 600 ordinary devices: tests score copies of it, never it."""
    scorer = PrincipalNovelty(warmup=50, refresh=10)
    for x in _population(random.Random(0), 600):
        scorer.score_then_learn(x)
    return scorer


def _alone(scorer: PrincipalNovelty, x: Features) -> float:
    copy: PrincipalNovelty = pickle.loads(pickle.dumps(scorer))  # noqa: S301 (our own object)
    return copy.score_then_learn(x)


@settings(max_examples=50)
@given(stream=st.lists(records, max_size=60))
def test_principal_scores_any_record_in_unit_interval_and_leaves_it_alone(
        stream: list[Features]) -> None:
    scorer = PrincipalNovelty(warmup=5, refresh=3)
    for x in stream:
        before = list(x.items())
        score = scorer.score_then_learn(x)
        assert 0.0 <= score <= 1.0 and math.isfinite(score)
        assert list(x.items()) == before


def test_principal_is_silent_until_its_warmup_is_learnt() -> None:
    scorer = PrincipalNovelty(warmup=40, refresh=10)
    scores = [scorer.score_then_learn(x) for x in _population(random.Random(1), 60)]
    assert scores[:40] == [0.0] * 40
    assert any(score > 0.0 for score in scores[40:])


def test_a_process_factor_where_the_population_rarely_goes_scores_high(
        principal: PrincipalNovelty) -> None:
    rng = random.Random(2)
    usual = [_alone(principal, _factor_device(rng, 0.0, 0.0)) for _ in range(20)]
    # Fast and low-leakage: every value inside the population's range, the factor not.
    odd = [_alone(principal, _factor_device(rng, 1.5, -2.5)) for _ in range(20)]
    assert max(usual) < min(odd)
    assert rank_auc(usual + odd, [False] * 20 + [True] * 20) == 1.0


def test_low_leakage_counts_as_much_as_high_leakage(principal: PrincipalNovelty) -> None:
    # Leakage is log-normal: on a linear scale the low end (0.4·e^-1.25 = 0.11) sits a
    # mere 0.3 below the typical 0.4, the high end (1.4) a whole 1.0 above. Compared as
    # log|x| the two are equally far, as the process factor is.
    rng = random.Random(3)
    low = statistics.mean(_alone(principal, _factor_device(rng, 0.0, -2.5)) for _ in range(30))
    high = statistics.mean(_alone(principal, _factor_device(rng, 0.0, 2.5)) for _ in range(30))
    assert low > 0.85 and high > 0.85
    assert low == pytest.approx(high, abs=0.05)


def test_a_constant_feature_changes_no_score() -> None:
    plain, padded = PrincipalNovelty(warmup=50, refresh=10), PrincipalNovelty(warmup=50,
                                                                               refresh=10)
    for x in _population(random.Random(4), 300):
        a = plain.score_then_learn(x)
        b = padded.score_then_learn(x | {"trim_code": 7.0})
        assert a == pytest.approx(b, abs=1e-9)


def test_one_wild_reading_does_not_take_the_statistics_over(
        principal: PrincipalNovelty) -> None:
    scorer: PrincipalNovelty = pickle.loads(pickle.dumps(principal))  # noqa: S301
    rng = random.Random(5)
    wild = _factor_device(rng, 0.0, 0.0) | {"fmax0": 1e200}
    assert scorer.score_then_learn(wild) > 0.99
    later = [scorer.score_then_learn(_factor_device(rng, 0.0, 0.0)) for _ in range(20)]
    assert max(later) < 0.9


def test_a_feature_that_changes_sign_is_compared_linearly_from_then_on() -> None:
    scorer = PrincipalNovelty(warmup=20, refresh=5)
    rng = random.Random(6)
    for x in _population(rng, 100):
        scorer.score_then_learn(x)
    for value in (0.0, -0.3):  # a zero, then the other sign: no log, no NaN
        score = scorer.score_then_learn(_factor_device(rng, 0, 0) | {"leak0": value})
        assert 0.0 <= score <= 1.0
    scores = [scorer.score_then_learn(x) for x in _population(rng, 100)]
    assert all(0.0 <= s <= 1.0 for s in scores) and max(scores) > 0.0


def test_features_beyond_the_cap_are_ignored() -> None:
    scorer = PrincipalNovelty(max_features=4, warmup=10, refresh=5)
    for x in _population(random.Random(7), 50):
        scorer.score_then_learn(x | {f"extra{i}": float(i) for i in range(100)})
    assert len(scorer._columns) == 4


def test_principal_pickle_round_trip_continues_identically() -> None:
    stream = _population(random.Random(8), 200)
    scorer = PrincipalNovelty(warmup=50, refresh=10)
    for x in stream[:100]:
        scorer.score_then_learn(x)
    restored: PrincipalNovelty = pickle.loads(pickle.dumps(scorer))  # noqa: S301
    assert [restored.score_then_learn(x) for x in stream[100:]] == [
        scorer.score_then_learn(x) for x in stream[100:]]


def test_the_configured_detector_is_the_one_made() -> None:
    assert isinstance(make_novelty("principal", seed=1), PrincipalNovelty)
    assert isinstance(make_novelty("half_space", seed=1), NoveltyScorer)


def test_only_measured_values_count_as_novel() -> None:
    assert measured_only({"vdd": 0.9, "@site=2": 1.0, "@tester=T-1": 1.0}) == {"vdd": 0.9}


@given(dof=st.integers(1, 400), distance=st.floats(0, 1e6))
def test_chi2_rank_is_a_probability_rising_with_distance(dof: int, distance: float) -> None:
    low, high = chi2_rank(distance, dof), chi2_rank(distance * 1.5 + 1, dof)
    assert 0.0 <= low <= high <= 1.0


@pytest.mark.parametrize(("dof", "distance", "cdf"), [(2, 5.991, 0.95), (8, 15.507, 0.95),
                                                       (30, 50.892, 0.99)])
def test_chi2_rank_matches_tabled_quantiles(dof: int, distance: float, cdf: float) -> None:
    assert chi2_rank(distance, dof) == pytest.approx(cdf, abs=0.006)


@pytest.mark.parametrize("reading", [1e300, -1e300, 1e-300])
def test_a_hostile_reading_scores_as_novel_and_leaves_later_scores_finite(
        principal: PrincipalNovelty, reading: float) -> None:
    scorer: PrincipalNovelty = pickle.loads(pickle.dumps(principal))  # noqa: S301
    rng = random.Random(9)
    assert scorer.score_then_learn(_factor_device(rng, 0, 0) | {"fmax1": reading}) > 0.99
    later = [scorer.score_then_learn(x) for x in _population(rng, 50)]
    assert all(math.isfinite(s) and 0.0 <= s <= 1.0 for s in later)
