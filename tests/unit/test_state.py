"""Checkpoint blobs: round trip, and clear refusals of anything else."""

from __future__ import annotations

import pytest

from stream_al.errors import StateError
from stream_al.learner import Learner, LearnerConfig
from stream_al.state import Checkpoint, dumps, loads
from tests.factories import T0, parametric


def blob() -> bytes:
    learner = Learner(LearnerConfig())
    learner.decide(parametric(), T0)
    return dumps(Checkpoint(learner, {("ate.parametric", 2): 41}, T0))


def test_round_trip_keeps_offsets_and_learner() -> None:
    checkpoint = loads(blob())
    assert checkpoint.offsets == {("ate.parametric", 2): 41}
    assert checkpoint.taken_at == T0
    assert checkpoint.learner.registry.keys() == ["PMIC-A7"]


@pytest.mark.parametrize(("damage", "message"), [
    (lambda b: b[:10], "too short"),
    (lambda b: b"XXXXXXXX" + b[8:], "magic"),
    (lambda b: b[:8] + b"\x00\x09" + b[10:], "format 9"),
    (lambda b: b[:-5] + b"\x00\x00\x00\x00\x00", "checksum"),
    (lambda b: b[:-100], "checksum"),
])
def test_a_damaged_checkpoint_is_refused_with_the_reason(damage, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(StateError, match=message):
        loads(damage(blob()))
