"""Contract of every uncertainty measure: a number in [0, 1], 1 for uniform, 0 for one-hot."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Hashable, Sequence
from typing import get_args

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from stream_al.gates import MeasureName
from stream_al.learner import CommitteeMeasure
from stream_al.uncertainty import (
    MEASURES,
    Measure,
    Proba,
    consensus_kl,
    entropy,
    least_confidence,
    margin,
    vote_entropy,
)

Committee = Callable[[Sequence[Hashable], int | None], float]

any_float = st.floats(allow_nan=True, allow_infinity=True)
probabilities = st.floats(min_value=0.0, max_value=1.0)
probas = st.dictionaries(st.sampled_from("abcdefgh"), any_float, max_size=8)
clean_probas = st.dictionaries(st.sampled_from("abcdefgh"), probabilities, min_size=1, max_size=8)
n_classes = st.none() | st.integers(min_value=0, max_value=12)
#: Every measure a gate may be configured with (``gate.measure``): the Literal itself.
MEASURE_NAMES: tuple[MeasureName, ...] = get_args(MeasureName)
measures = pytest.mark.parametrize("measure", MEASURE_NAMES, indirect=True)


@pytest.fixture(scope="module")
def measure(request: pytest.FixtureRequest) -> Measure:
    """The measure the parameter names: one MEASURES lacks fails its cases here."""
    name: str = request.param
    assert name in MEASURES, f"{name!r} is a MeasureName but not in MEASURES"
    return MEASURES[name]


def _uniform(k: int) -> dict[Hashable, float]:
    return {f"c{i}": 1.0 / k for i in range(k)}


def _one_hot(k: int) -> dict[Hashable, float]:
    return {f"c{i}": float(i == 0) for i in range(k)}


def test_every_measure_has_a_contract_case() -> None:
    missing = set(MEASURE_NAMES) ^ set(MEASURES)
    assert not missing, f"MeasureName and MEASURES disagree on {missing}"


@measures
@given(proba=probas, k=n_classes)
def test_output_in_unit_interval_and_input_unmutated(
    measure: Measure, proba: dict[Hashable, float], k: int | None
) -> None:
    before = list(proba.items())
    assert 0.0 <= measure(proba, k) <= 1.0
    assert list(proba.items()) == before


@measures
@pytest.mark.parametrize("k", [2, 3, 7, 50])
def test_uniform_is_maximally_uncertain(measure: Measure, k: int) -> None:
    assert measure(_uniform(k), None) == pytest.approx(1.0)


@measures
@pytest.mark.parametrize("k", [1, 2, 3, 7])
def test_one_hot_is_certain(measure: Measure, k: int) -> None:
    assert measure(_one_hot(k), None) == 0.0


@measures
@pytest.mark.parametrize("proba", [{}, {"a": 0.0, "b": 0.0}, {"a": -1.0, "b": math.nan}])
def test_no_usable_mass_means_the_model_knows_nothing(measure: Measure, proba: Proba) -> None:
    assert measure(proba, 2) == 1.0


@measures
@given(proba=clean_probas, extra=st.integers(min_value=0, max_value=4))
def test_missing_classes_count_as_zero(
    measure: Measure, proba: dict[Hashable, float], extra: int
) -> None:
    padded = proba | {f"missing{i}": 0.0 for i in range(extra)}
    assert measure(proba, len(padded)) == pytest.approx(measure(padded, None))


@measures
@given(proba=clean_probas, scale=st.floats(min_value=1e-6, max_value=1e6))
def test_unnormalised_input_is_renormalised(
    measure: Measure, proba: dict[Hashable, float], scale: float
) -> None:
    scaled = {c: p * scale for c, p in proba.items()}
    # Below the smallest normal float, scaling loses the ratios (5e-324 * 0.5 is 0.0):
    # that is float arithmetic, not a measure failing to renormalise.
    assume(all(p == 0.0 or p >= sys.float_info.min for p in [*proba.values(), *scaled.values()]))
    assert measure(scaled, None) == pytest.approx(measure(proba, None), abs=1e-9)


@measures
@pytest.mark.parametrize("bad", [-0.3, math.nan, math.inf, -math.inf])
def test_invalid_values_count_as_zero(measure: Measure, bad: float) -> None:
    assert measure({"a": 0.7, "b": 0.3, "c": bad}, None) == measure(
        {"a": 0.7, "b": 0.3, "c": 0.0}, None
    )


@measures
@given(p=probabilities, q=probabilities)
def test_binary_uncertainty_grows_towards_the_boundary(
    measure: Measure, p: float, q: float
) -> None:
    nearer, farther = sorted([p, q], key=lambda x: abs(x - 0.5))
    assert (
        measure({"a": nearer, "b": 1 - nearer}, None)
        >= measure({"a": farther, "b": 1 - farther}, None) - 1e-12
    )


def test_each_measure_matches_its_formula() -> None:
    p = {"a": 0.6, "b": 0.3, "c": 0.1}
    assert least_confidence(p) == pytest.approx((1 - 0.6) * 3 / 2)
    assert margin(p) == pytest.approx(1 - (0.6 - 0.3))
    h = -sum(v * math.log(v) for v in p.values())
    assert entropy(p) == pytest.approx(h / math.log(3))


# --- committee measures -------------------------------------------------------------------


def _votes_as_probas(votes: Sequence[Hashable], k: int | None) -> float:
    return consensus_kl([{v: 1.0} for v in votes], k)


#: Every committee measure a learner may be configured with: the Literal itself.
COMMITTEE_NAMES: tuple[CommitteeMeasure, ...] = get_args(CommitteeMeasure)
#: Each committee measure as a function of the members' votes, by its configuration name.
COMMITTEES: dict[str, Committee] = {"vote_entropy": vote_entropy, "consensus_kl": _votes_as_probas}
committee_measures = pytest.mark.parametrize("committee", COMMITTEE_NAMES, indirect=True)


@pytest.fixture(scope="module")
def committee(request: pytest.FixtureRequest) -> Committee:
    """The committee measure the parameter names: one COMMITTEES lacks fails its cases here."""
    name: str = request.param
    assert name in COMMITTEES, f"{name!r} is a CommitteeMeasure with no case in COMMITTEES"
    return COMMITTEES[name]


def test_every_committee_measure_has_a_contract_case() -> None:
    missing = set(COMMITTEE_NAMES) ^ set(COMMITTEES)
    assert not missing, f"CommitteeMeasure and COMMITTEES disagree on {missing}"


@committee_measures
@pytest.mark.parametrize("members", [1, 2, 5])
def test_unanimous_committee_is_certain(committee: Committee, members: int) -> None:
    assert committee(["pass"] * members, 3) == 0.0


@committee_measures
@pytest.mark.parametrize(("votes", "k"), [("ab", None), ("abc", 5), ("aabb", None), ("abcabc", 3)])
def test_maximal_disagreement_is_maximally_uncertain(
    committee: Committee, votes: str, k: int | None
) -> None:
    assert committee(list(votes), k) == pytest.approx(1.0)


@given(votes=st.lists(st.sampled_from(["a", "b", "c", None]), max_size=20), k=n_classes)
def test_vote_entropy_in_unit_interval_and_input_unmutated(
    votes: list[str | None], k: int | None
) -> None:
    before = list(votes)
    assert 0.0 <= vote_entropy(votes, k) <= 1.0
    assert votes == before


def test_abstentions_do_not_count_as_votes() -> None:
    assert vote_entropy(["a", None, "a", None]) == 0.0
    assert vote_entropy([None, None]) == 1.0


@given(members=st.lists(probas, max_size=6), k=n_classes)
def test_consensus_kl_in_unit_interval_and_input_unmutated(
    members: list[dict[Hashable, float]], k: int | None
) -> None:
    before = [list(m.items()) for m in members]
    assert 0.0 <= consensus_kl(members, k) <= 1.0
    assert [list(m.items()) for m in members] == before


@given(member=clean_probas.filter(lambda p: sum(p.values()) > 0), size=st.integers(1, 5))
def test_consensus_kl_of_identical_members_is_zero(member: Proba, size: int) -> None:
    assert consensus_kl([member] * size) == pytest.approx(0.0, abs=1e-12)


def test_consensus_kl_lies_between_agreement_and_disagreement() -> None:
    partly = consensus_kl([{"a": 0.9, "b": 0.1}, {"a": 0.2, "b": 0.8}])
    assert 0.0 < partly < consensus_kl([{"a": 1.0}, {"b": 1.0}])


def test_consensus_kl_ignores_members_with_no_mass() -> None:
    assert consensus_kl([{"a": 1.0}, {}, {"a": 0.0, "b": 0.0}]) == 0.0
    assert consensus_kl([{}, {}]) == 1.0
