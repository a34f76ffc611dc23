"""Requests name the features that pushed their prediction, where the model can say."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from stream_al.budget import BudgetConfig
from stream_al.learner import Learner, LearnerConfig
from stream_al.models import ModelConfig
from stream_al.records import MAX_INFLUENCES, OracleLabel, OracleRequest, ParametricRecord

START = datetime(2026, 1, 1, tzinfo=UTC)


def _requests(template: str, n: int = 300, noise: int = 0) -> list[OracleRequest]:
    """Every record asked for (B = 1) and answered at once: the label follows ``vdd``."""
    learner = Learner(LearnerConfig(model=ModelConfig(template=template),
                                    budget=BudgetConfig(fraction=1.0, audit_fraction=0.0)))
    rng, asked = random.Random(3), []
    for i in range(n):
        vdd = rng.gauss(0.0, 1.0)
        measurements = {"vdd": vdd, "idd": rng.gauss(0.0, 0.1),
                        **{f"n{k}": rng.gauss(0.0, 0.1) for k in range(noise)}}
        now = START + timedelta(seconds=i)
        record = ParametricRecord(record_id=f"r{i}", ts=now, product="P",
                                  measurements=measurements)
        request = learner.decide(record, now).request
        if request is not None:
            asked.append(request)
            learner.apply(OracleLabel(query_id=request.query_id,
                                      label="pass" if vdd > 0 else "fail", labeled_at=now))
    return asked


@pytest.mark.parametrize("template", ["logistic", "river_lr", "softmax"])
def test_a_linear_model_names_the_feature_it_leans_on_first(template: str) -> None:
    late = [r for r in _requests(template, n=600, noise=12)[-150:] if r.influences]
    assert len(late) >= 140
    for request in late:
        assert request.influences is not None
        names = [i.feature for i in request.influences]
        assert len(names) <= MAX_INFLUENCES
        weights = [abs(i.weight or 0.0) for i in request.influences]
        assert weights == sorted(weights, reverse=True)
        assert set(names) <= set(request.record.measurements)  # type: ignore[union-attr]
    # The label is a function of vdd: away from the boundary (where the scaled noise
    # features are as large as vdd) it is the strongest push.
    clear = [r for r in late if abs(r.record.measurements["vdd"]) > 0.5]  # type: ignore
    assert len(clear) >= 20
    assert sum(r.influences[0].feature == "vdd" for r in clear  # type: ignore[index]
               ) >= 0.9 * len(clear)


def test_a_push_for_the_predicted_class_is_positive() -> None:
    for request in _requests("logistic")[-40:]:
        assert request.influences is not None
        vdd = request.record.measurements["vdd"]  # type: ignore[union-attr]
        assert vdd is not None
        push = next(i.weight for i in request.influences if i.feature == "vdd")
        # Far from the boundary, vdd pushes towards the class it predicts.
        if abs(vdd) > 1.0 and request.predicted == ("pass" if vdd > 0 else "fail"):
            assert push is not None and push > 0


@pytest.mark.parametrize("template", ["logistic", "softmax"])
def test_a_push_for_the_predicted_class_is_positive_whatever_the_linear_model(
        template: str) -> None:
    pushes = []
    for request in _requests(template)[-60:]:
        vdd = request.record.measurements["vdd"]  # type: ignore[union-attr]
        assert vdd is not None and request.influences is not None
        if abs(vdd) > 1.0 and request.predicted == ("pass" if vdd > 0 else "fail"):
            pushes.append(next(i.weight for i in request.influences if i.feature == "vdd"))
    assert pushes and all(push is not None and push > 0 for push in pushes)
    # Softmax's intercept is no feature of the record.
    assert all(i.feature != "__intercept__" for r in _requests("softmax", n=50)
               for i in r.influences or [])


@pytest.mark.parametrize("template", ["hoeffding_tree", "river_ht"])
def test_a_tree_sends_the_tests_on_the_records_path_in_its_units(template: str) -> None:
    late = [r for r in _requests(template, n=600)[-150:] if r.influences]
    assert len(late) >= 50  # the tree has split by then
    for request in late:
        assert request.influences is not None
        measured = request.record.measurements  # type: ignore[union-attr]
        assert request.influences[0].feature == "vdd"  # the label is a function of vdd
        for step in request.influences:
            value = step.weight
            assert step.test is not None and value is not None
            assert value == measured[step.feature]
            op, threshold = step.test.split(" ")
            # The branch the record's own value takes, the threshold in volts (to 4 digits).
            slack = 1e-3 * max(1.0, abs(float(threshold)))
            if op == "≤":
                assert value <= float(threshold) + slack, step
            else:
                assert op == ">" and value > float(threshold) - slack, step


def test_naive_bayes_sends_none() -> None:
    assert all(r.influences is None for r in _requests("naive_bayes", n=120))


def test_before_anything_is_learnt_a_request_has_no_influences() -> None:
    assert _requests("logistic", n=1)[0].influences is None
