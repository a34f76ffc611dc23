"""A checkpoint holds the learner settings it was written with; the daemon runs with the
config file's. At restore the file's win, and a checkpoint from before a setting
existed still loads."""

from __future__ import annotations

import logging
import pickle
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import pytest

from consumers.daemon.connection import Connection
from stream_al.budget import BudgetManager
from stream_al.learner import Learner, LearnerConfig
from stream_al.records import OracleLabel, ParametricRecord
from stream_al.simulate.floor import FloorConfig, FloorSimulator
from tests.unit.test_checkpoints_daemon import FakeConnection, daemon_in

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _taught(config: LearnerConfig, n: int = 400) -> Learner:
    """A learner that has decided ``n`` floor records and learnt every query's truth."""
    learner = Learner(config)
    simulator = FloorSimulator(FloorConfig(run_length=n), seed=4)
    for index, part in enumerate(simulator.stream(n)):
        now = T0 + timedelta(seconds=index)
        decision = learner.decide(ParametricRecord.model_validate(part.record), now)
        if decision.request is not None:
            learner.apply(OracleLabel(query_id=decision.request.query_id, label=part.truth,
                                      labeled_at=now))
    return learner


def test_a_checkpoint_from_before_a_setting_existed_loads_with_its_default() -> None:
    learner = _taught(LearnerConfig())
    # As a release before rare_class_replay pickled its settings: the field is absent.
    del learner.config.__dict__["rare_class_replay"]
    restored = cast(Learner, pickle.loads(pickle.dumps(learner)))  # noqa: S301 (our own)
    assert restored.config.rare_class_replay == 0.0
    record = ParametricRecord.model_validate(
        next(FloorSimulator(FloorConfig(), seed=9).stream(1)).record)
    label = restored.decide(record, T0 + timedelta(hours=1))
    assert label.prediction.predicted is not None


def test_adopt_takes_the_new_settings_and_keeps_what_was_learnt() -> None:
    old = LearnerConfig.model_validate({"budget": {"fraction": 0.1, "audit_fraction": 0.0}})
    learner = _taught(old)
    versions = {key: learner.registry.get(key).version for key in learner.registry.keys()}
    open_queries = len(learner.pending)
    gates = {key: policy.gate for key, policy in learner.policies.items()}
    new = LearnerConfig.model_validate({
        "budget": {"fraction": 0.2, "audit_fraction": 0.0}, "prior_correction": 0.0,
        "gate": {"strategy": "fixed"}})
    changed = learner.adopt(new)
    assert changed == ["budget.fraction", "gate.strategy", "prior_correction"]
    assert learner.config is new and learner.budget.config.fraction == 0.2
    assert {key: learner.registry.get(key).version for key in learner.registry.keys()} \
        == versions and all(versions.values())
    assert len(learner.pending) == open_queries
    for key, policy in learner.policies.items():
        assert policy.gate is not gates[key]
        assert (gates[key].name, policy.gate.name) == ("randomized", "fixed")


def test_adopting_the_same_settings_changes_nothing() -> None:
    config = LearnerConfig()
    learner = _taught(config)
    gates = {key: policy.gate for key, policy in learner.policies.items()}
    budget = learner.budget
    assert learner.adopt(LearnerConfig()) == []
    assert learner.budget is budget
    assert all(learner.policies[key].gate is gate for key, gate in gates.items())
    assert isinstance(learner.budget, BudgetManager)


def test_the_daemon_restores_with_the_config_files_settings(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    state = tmp_path / "state"
    first = daemon_in(state, learner={"budget": {"fraction": 0.1}})
    first._save(cast(Connection, FakeConnection()))
    with caplog.at_level(logging.INFO, logger="stream_al.daemon"):
        second = daemon_in(state, learner={"budget": {"fraction": 0.3},
                                           "prior_correction": 0.0})
        second._restore(announce=True)
    assert second.pipeline is not None
    learner = second.pipeline.learner
    assert learner.config.budget.fraction == 0.3 and learner.config.prior_correction == 0.0
    assert learner.budget.config.fraction == 0.3
    assert "learner settings changed since that checkpoint" in caplog.text
    assert "budget.fraction, prior_correction" in caplog.text
