"""Novelty scores: in [0, 1], computed before learning, higher for unusual records."""

from __future__ import annotations

import math
import pickle
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream_al.novelty import Features, NoveltyScorer

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
