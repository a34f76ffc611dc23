"""The simulated oracle: delay, capacity, noise, unknown truth."""

from __future__ import annotations

from datetime import timedelta

import pytest

from stream_al.oracle import SimulatedOracle, truth_from_record
from tests.factories import T0, parametric, request


def test_answers_after_the_delay_with_the_truth() -> None:
    oracle = SimulatedOracle(lambda r: "fail", delay=timedelta(seconds=30))
    asked = request()
    assert oracle.offer(asked, T0)
    assert oracle.due(T0 + timedelta(seconds=29)) == []
    [answer] = oracle.due(T0 + timedelta(seconds=30))
    assert (answer.query_id, answer.label, answer.labeler) == (asked.query_id, "fail",
                                                               "simulator")
    assert answer.labeled_at == T0 + timedelta(seconds=30)


def test_capacity_limits_answers_per_minute() -> None:
    oracle = SimulatedOracle(lambda r: "pass", per_minute=2)
    for i in range(5):
        oracle.offer(request(f"r-{i}"), T0)
    assert len(oracle.due(T0)) == 2
    assert oracle.due(T0 + timedelta(seconds=59)) == []
    assert len(oracle.due(T0 + timedelta(seconds=61))) == 2
    assert len(oracle) == 1


def test_noise_flips_about_the_configured_share_to_another_seen_class() -> None:
    truths = {f"r-{i}": ("pass" if i % 2 else "fail") for i in range(2000)}
    oracle = SimulatedOracle(lambda r: truths[r.record_id], noise=0.2, seed=4)
    for record_id in truths:
        oracle.offer(request(record_id), T0)
    answers = oracle.due(T0)  # due at the same instant: answered in the order offered
    wrong = sum(a.label != truths[r] for a, r in zip(answers, truths, strict=True))
    assert 0.15 < wrong / len(answers) < 0.25
    assert {a.label for a in answers} == {"pass", "fail"}


def test_unknown_truth_is_counted_not_answered() -> None:
    oracle = SimulatedOracle(truth_from_record)
    assert not oracle.offer(request(), T0)
    labelled = request(record=parametric(label="bin7"))
    assert oracle.offer(labelled, T0)
    assert [a.label for a in oracle.due(T0)] == ["bin7"]
    assert oracle.unanswerable == 1


def test_noise_outside_the_unit_interval_is_refused() -> None:
    with pytest.raises(ValueError, match="noise"):
        SimulatedOracle(truth_from_record, noise=1.5)
