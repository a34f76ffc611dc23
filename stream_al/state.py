"""Snapshots: the learner and the consumed offsets, as one blob written together.

A checkpoint holds the whole learner (models, gates, budgets, pending queries, random
generators) AND the offset of every consumed topic partition, so that a restart seeks
to exactly where the state was taken: no label is applied twice or lost. The edge
writes the blob atomically; this module only turns it into bytes and back.

The payload is a pickle, which runs code when loaded: the edge only ever reads it from
the configured state directory, written 0600, never from the network.
"""

from __future__ import annotations

import hashlib
import pickle
import struct
from dataclasses import dataclass, field
from datetime import datetime

from stream_al import __version__
from stream_al.errors import StateError
from stream_al.learner import Learner

MAGIC = b"STREAMAL"
FORMAT = 1
_HEADER = struct.Struct(">8sH32s")  # magic, format, sha256 of the payload

#: (topic, partition) → the next offset to read.
Offsets = dict[tuple[str, int], int]


@dataclass
class Checkpoint:
    """Everything needed to resume: the learner, where each input stood, and when."""

    learner: Learner
    offsets: Offsets = field(default_factory=dict)
    taken_at: datetime | None = None
    version: str = __version__


def dumps(checkpoint: Checkpoint) -> bytes:
    """Serialise a checkpoint; the digest lets ``loads`` refuse a torn or altered file."""
    payload = pickle.dumps(checkpoint, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(MAGIC, FORMAT, hashlib.sha256(payload).digest()) + payload


def loads(blob: bytes) -> Checkpoint:
    """Restore a checkpoint written by ``dumps``, or say clearly why not."""
    if len(blob) < _HEADER.size:
        raise StateError(f"checkpoint is {len(blob)} bytes, too short to be one (truncated?)")
    magic, fmt, digest = _HEADER.unpack_from(blob)
    if magic != MAGIC:
        raise StateError("not a stream-al checkpoint (bad magic bytes)")
    if fmt != FORMAT:
        raise StateError(f"checkpoint format {fmt} is not supported (this build reads {FORMAT})")
    payload = blob[_HEADER.size:]
    if hashlib.sha256(payload).digest() != digest:
        raise StateError("checkpoint is corrupt: its checksum does not match its contents")
    try:
        checkpoint = pickle.loads(payload)  # noqa: S301 - our own file, checksummed, 0600
    except Exception as exc:  # a pickle from an incompatible build fails in many ways
        raise StateError(f"checkpoint could not be loaded ({exc!r}); was it written by a "
                         "different stream-al or river version?") from exc
    if not isinstance(checkpoint, Checkpoint):
        raise StateError("checkpoint holds something other than a stream-al checkpoint")
    return checkpoint
