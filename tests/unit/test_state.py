"""Checkpoint blobs: round trip under a key, and clear refusals of anything else, made
before a byte of an unauthenticated pickle is loaded."""

from __future__ import annotations

import hashlib
import pickle
import struct
from collections.abc import Callable
from pathlib import Path

import pytest

from stream_al.errors import StateError
from stream_al.learner import Learner, LearnerConfig
from stream_al.state import Checkpoint, dumps, key_id, loads
from tests.factories import T0, parametric

KEY = b"k" * 32


def blob(key: bytes = KEY) -> bytes:
    learner = Learner(LearnerConfig())
    learner.decide(parametric(), T0)
    return dumps(Checkpoint(learner, {("ate.parametric", 2): 41}, T0), key)


class PlantsMarker:
    """A pickle that, once loaded, creates a file: what a forger would make run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Callable[[Path], None], tuple[Path]]:
        return Path.touch, (self.marker,)


def forged(marker: Path, key: bytes = KEY) -> bytes:
    """A well-formed format-2 blob naming our key, around a hostile pickle, whose MAC the
    forger (who lacks the key) could only guess."""
    header = b"STREAMAL" + struct.pack(">H", 2) + bytes.fromhex(key_id(key))
    return header + bytes(32) + pickle.dumps(PlantsMarker(marker))


def format1(payload: bytes) -> bytes:
    """A checkpoint as stream-al wrote them before they were authenticated."""
    return struct.pack(">8sH32s", b"STREAMAL", 1, hashlib.sha256(payload).digest()) + payload


def test_round_trip_keeps_offsets_and_learner() -> None:
    checkpoint = loads(blob(), KEY)
    assert checkpoint.offsets == {("ate.parametric", 2): 41}
    assert checkpoint.taken_at == T0
    assert checkpoint.learner.registry.keys() == ["PMIC-A7"]


def test_without_a_key_a_blob_is_good_only_in_the_process_that_made_it() -> None:
    assert loads(dumps(Checkpoint(Learner(LearnerConfig())))).offsets == {}
    with pytest.raises(StateError, match="another key"):
        loads(blob())


def test_the_marker_pickle_does_run_code_when_loaded_unchecked(tmp_path: Path) -> None:
    # Proves the next test's marker would appear if anything unpickled the forgery.
    pickle.loads(pickle.dumps(PlantsMarker(tmp_path / "ran")))  # noqa: S301 - the point
    assert (tmp_path / "ran").exists()


def test_a_forged_checkpoint_is_refused_before_it_is_unpickled(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    with pytest.raises(StateError, match=r"fails authentication \(HMAC\).*not unpickled"):
        loads(forged(marker), KEY)
    assert not marker.exists()


def test_a_checkpoint_under_another_key_is_refused_naming_both_keys(tmp_path: Path) -> None:
    other = b"o" * 32
    with pytest.raises(StateError, match=f"key id {key_id(other)}.*{key_id(KEY)}"):
        loads(blob(other), KEY)
    marker = tmp_path / "ran"
    with pytest.raises(StateError, match="another key"):
        loads(forged(marker, other), KEY)
    assert not marker.exists()


def test_a_format1_checkpoint_is_refused_unloaded_saying_why(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    with pytest.raises(StateError, match="format 1 is refused: it is not authenticated"):
        loads(format1(pickle.dumps(PlantsMarker(marker))), KEY)
    assert not marker.exists()


def test_the_key_id_names_a_key_without_revealing_it() -> None:
    assert key_id(KEY) == key_id(b"k" * 32) != key_id(b"o" * 32)
    assert len(key_id(KEY)) == 16 and KEY.hex() not in key_id(KEY)


@pytest.mark.parametrize(("damage", "message"), [
    (lambda b: b[:9], "too short"),
    (lambda b: b[:40], "too short"),
    (lambda b: b"XXXXXXXX" + b[8:], "magic"),
    (lambda b: b[:8] + b"\x00\x09" + b[10:], "format 9 is not supported .written by a newer"),
    (lambda b: b[:-5] + b"\x00\x00\x00\x00\x00", "authentication"),
    (lambda b: b[:-100], "authentication"),
    (lambda b: b[:12] + bytes([b[12] ^ 1]) + b[13:], "another key"),  # the key id
    (lambda b: b[:30] + bytes([b[30] ^ 1]) + b[31:], "authentication"),  # the MAC
])
def test_a_damaged_checkpoint_is_refused_with_the_reason(
        damage: Callable[[bytes], bytes], message: str) -> None:
    with pytest.raises(StateError, match=message):
        loads(damage(blob()), KEY)
