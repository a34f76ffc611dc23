"""The simulated transaction feed: reproducible, about 5 % fraud from a learnable
non-linear rule, and a concept drift at the middle that defeats a model trained before."""

from __future__ import annotations

import copy
import json
import math
from typing import Any

import numpy as np
import pytest
from river import linear_model, preprocessing
from river.compose import Pipeline

from stream_al.codec import decode_record
from stream_al.records import TransactionRecord
from stream_al.simulate import SimulatedRecord, TransactionConfig, TransactionSimulator
from stream_al.simulate.transactions import CARDS, CHANNELS, COUNTRIES, MERCHANTS

RUN = 4000


@pytest.fixture(scope="module")
def run() -> list[SimulatedRecord]:
    return list(TransactionSimulator(seed=3, config=TransactionConfig(run_length=RUN)).stream(RUN))


def _features(record: dict[str, Any]) -> dict[str, float]:
    one_hot = {f"{k}={v}": 1.0 for k, v in record["categorical"].items()}
    return {**record["numeric"], **one_hot}


def _auc(fraud: list[bool], score: list[float]) -> float:
    """Probability that a fraud scores above an ok transaction (ties count half)."""
    y, s = np.array(fraud), np.array(score)
    above = (s[y][:, None] > s[~y][None, :]).mean()
    ties = (s[y][:, None] == s[~y][None, :]).mean()
    return float(above + 0.5 * ties)


def _logistic() -> Pipeline:
    return preprocessing.StandardScaler() | linear_model.LogisticRegression()


def test_a_seed_gives_the_same_stream_and_another_seed_a_different_one() -> None:
    first = list(TransactionSimulator(seed=1).stream(1500))
    assert first == list(TransactionSimulator(seed=1).stream(1500))
    assert [r.record["numeric"] for r in first] != [
        r.record["numeric"] for r in TransactionSimulator(seed=2).stream(1500)
    ]


def test_reading_in_chunks_continues_the_same_stream() -> None:
    whole = list(TransactionSimulator(seed=4).stream(2100))
    sim = TransactionSimulator(seed=4)
    partly = sim.stream(2000)
    head = [next(partly) for _ in range(100)]
    assert head + list(sim.stream(900)) + list(sim.stream(1100)) == whole


def test_every_record_is_a_valid_transaction_record_after_a_json_round_trip(
    run: list[SimulatedRecord],
) -> None:
    for sim in run:
        decoded = decode_record(json.dumps(sim.record, allow_nan=False).encode())
        assert isinstance(decoded, TransactionRecord)
        assert decoded.numeric == sim.record["numeric"]
        assert decoded.categorical == sim.record["categorical"]
        assert decoded.label is None and sim.hard_bin == 0


def test_fields_are_plausible_and_ids_unique_in_time_order(run: list[SimulatedRecord]) -> None:
    records = [r.record for r in run]
    assert [r["record_id"] for r in records[:2]] == ["txn-000001", "txn-000002"]
    assert len({r["record_id"] for r in records}) == len(records)
    assert [r["ts"] for r in records] == sorted(r["ts"] for r in records)
    numeric = [v for r in records for v in r["numeric"].values()]
    assert all(isinstance(v, float) and math.isfinite(v) for v in numeric)
    assert min(r["numeric"]["amount"] for r in records) > 0
    known = {"channel": CHANNELS, "country": COUNTRIES, "merchant": MERCHANTS,
             "card_type": CARDS}
    for name, values in known.items():
        seen = {r["categorical"][name] for r in records}
        assert seen == set(values)  # every category occurs, nothing else does


def test_about_five_percent_are_fraud_on_both_sides_of_the_drift(
    run: list[SimulatedRecord],
) -> None:
    for half in (run[: RUN // 2], run[RUN // 2 :]):
        assert 0.035 <= np.mean([r.truth == "fraud" for r in half]) <= 0.065
    assert {r.truth for r in run} == {"ok", "fraud"}


def test_the_drift_starts_where_configured(run: list[SimulatedRecord]) -> None:
    assert all(r.mode == "normal" for r in run[: RUN // 2])
    assert all(r.mode == "drifted" for r in run[RUN // 2 :])
    early = TransactionSimulator(config=TransactionConfig(run_length=1000, drift_at=0.1))
    assert early.drift_begins == 100 and next(early.stream(101)).mode == "normal"


def test_the_rule_is_learnable_and_changes_at_the_drift() -> None:
    sim = TransactionSimulator(seed=5, config=TransactionConfig(run_length=6000))
    model, frozen = _logistic(), _logistic()
    live: dict[str, tuple[list[bool], list[float]]] = {"before": ([], []), "after": ([], [])}
    stale: tuple[list[bool], list[float]] = ([], [])
    for i, sim_record in enumerate(sim.stream(6000)):
        x, fraud = _features(sim_record.record), sim_record.truth == "fraud"
        if i == sim.drift_begins:
            frozen = copy.deepcopy(model)
        if i >= 1500:  # after warm-up
            side = live["after" if sim_record.mode == "drifted" else "before"]
            side[0].append(fraud)
            side[1].append(model.predict_proba_one(x).get(True, 0.0))
        if sim_record.mode == "drifted":
            stale[0].append(fraud)
            stale[1].append(frozen.predict_proba_one(x).get(True, 0.0))
        model.learn_one(x, fraud)
    assert _auc(*live["before"]) > 0.75  # prequential: the fraud rule is learnable
    assert _auc(*stale) < _auc(*live["before"]) - 0.2  # the old model fails after the drift
    assert _auc(*live["after"]) > 0.7  # and a learning model recovers


def test_inline_labels_carry_the_truth_for_the_configured_share() -> None:
    config = TransactionConfig(inline_label_fraction=0.5)
    records = list(TransactionSimulator(seed=8, config=config).stream(2000))
    labelled = [r for r in records if r.record["label"] is not None]
    assert 0.45 < len(labelled) / len(records) < 0.55
    assert all(r.record["label"] == r.truth for r in labelled)
