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


@pytest.mark.parametrize("template", ["logistic", "river_lr"])
def test_a_linear_model_names_the_feature_it_leans_on_first(template: str) -> None:
    late = [r for r in _requests(template, n=600, noise=12)[-150:] if r.influences]
    assert len(late) >= 140
    for request in late:
        assert request.influences is not None
        names = [i.feature for i in request.influences]
        assert len(names) <= MAX_INFLUENCES
        weights = [abs(i.weight) for i in request.influences]
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
            assert push > 0


@pytest.mark.parametrize("template", ["naive_bayes", "hoeffding_tree", "river_ht"])
def test_models_without_one_number_per_feature_send_none(template: str) -> None:
    assert all(r.influences is None for r in _requests(template, n=120))


def test_before_anything_is_learnt_a_request_has_no_influences() -> None:
    assert _requests("logistic", n=1)[0].influences is None
