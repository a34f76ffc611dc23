"""Snapshots: the learner and the consumed offsets, as one blob written together.

A checkpoint holds the whole learner (models, gates, budgets, pending queries, random
generators) AND the offset of every consumed topic partition, so that a restart seeks
to exactly where the state was taken: no label is applied twice or lost. The edge
writes the blob atomically; this module only turns it into bytes and back.

The payload is a pickle (River models can be saved no other way), and unpickling runs
code. So the blob is authenticated, not merely checksummed: an HMAC-SHA256 under a
secret key covers the header and the payload, and ``loads`` checks it with a
constant-time comparison BEFORE it unpickles a single byte. Whoever lacks the key can
corrupt a checkpoint but cannot make the daemon run their code; whoever holds the key
can. The header also names the key (a short id derived from it), so a checkpoint
written under another key is refused as such rather than as "corrupt".

Layout (format 2): magic ``STREAMAL`` | format (u16) | key id (8 bytes) | HMAC (32) |
pickle. Format 1 (magic | format | sha256 | pickle) proved only that the bytes were
whole, not who wrote them; it is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import pickle
import secrets
import struct
from dataclasses import dataclass, field
from datetime import datetime

from stream_al import __version__
from stream_al.errors import StateError
from stream_al.learner import Learner

MAGIC = b"STREAMAL"
FORMAT = 2
#: The last format without authentication (stream-al before HMAC-signed checkpoints).
UNAUTHENTICATED_FORMAT = 1
_PREFIX = struct.Struct(">8sH")  # magic, format: the same in every format
_HEADER = struct.Struct(">8sH8s32s")  # magic, format, key id, HMAC-SHA256
_SIGNED_HEADER = _PREFIX.size + 8  # magic, format and key id: what the MAC covers too
_KEY_ID_CONTEXT = b"stream-al checkpoint key id\x00"
#: Without a key, blobs are good only inside this process (copies, tests): the default
#: key never leaves memory, so nothing read from elsewhere authenticates under it.
_PROCESS_KEY = secrets.token_bytes(32)

#: (topic, partition) → the next offset to read.
Offsets = dict[tuple[str, int], int]


@dataclass
class Checkpoint:
    """Everything needed to resume: the learner, where each input stood, and when."""

    learner: Learner
    offsets: Offsets = field(default_factory=dict)
    taken_at: datetime | None = None
    version: str = __version__


def key_id(key: bytes) -> str:
    """A short public name of ``key`` (hex), for messages and the header: a one-way hash
    of it, so it says which key wrote a file without helping anyone forge one."""
    return hashlib.sha256(_KEY_ID_CONTEXT + key).digest()[:8].hex()


def dumps(checkpoint: Checkpoint, key: bytes = _PROCESS_KEY) -> bytes:
    """Serialise and authenticate a checkpoint under ``key``."""
    payload = pickle.dumps(checkpoint, protocol=pickle.HIGHEST_PROTOCOL)
    prefix = _PREFIX.pack(MAGIC, FORMAT) + bytes.fromhex(key_id(key))
    return prefix + _mac(key, prefix, payload) + payload


def loads(blob: bytes, key: bytes = _PROCESS_KEY) -> Checkpoint:
    """Restore a checkpoint written by ``dumps`` under ``key``, or say clearly why not.

    Nothing is unpickled until the HMAC matches."""
    check_format(blob)
    _, _, written_id, mac = _HEADER.unpack_from(blob)
    if written_id.hex() != key_id(key):
        raise StateError(f"checkpoint was written under another key (key id {written_id.hex()}, "
                         f"this daemon's is {key_id(key)}): configure the key that wrote it "
                         "(checkpoint.key)")
    payload = blob[_HEADER.size:]
    if not hmac.compare_digest(mac, _mac(key, blob[:_SIGNED_HEADER], payload)):
        raise StateError("checkpoint fails authentication (HMAC): it is corrupt or was forged; "
                         "it was not unpickled")
    try:
        checkpoint = pickle.loads(payload)  # noqa: S301 - authenticated under our key just now
    except Exception as exc:  # a pickle from an incompatible build fails in many ways
        raise StateError(f"checkpoint could not be loaded ({exc!r}); was it written by a "
                         "different stream-al or river version?") from exc
    if not isinstance(checkpoint, Checkpoint):
        raise StateError("checkpoint holds something other than a stream-al checkpoint")
    return checkpoint


def check_format(blob: bytes) -> None:
    """Refuse, with the reason, a blob that is not a whole format-2 header; needs no key,
    so a checkpoint of the wrong format is named as such even when the key is missing."""
    if len(blob) < _PREFIX.size:
        raise StateError(f"checkpoint is {len(blob)} bytes, too short to be one (truncated?)")
    magic, fmt = _PREFIX.unpack_from(blob)
    if magic != MAGIC:
        raise StateError("not a stream-al checkpoint (bad magic bytes)")
    if fmt == UNAUTHENTICATED_FORMAT:
        raise StateError("checkpoint format 1 is refused: it is not authenticated (written "
                         "before stream-al signed its checkpoints), so nothing shows that this "
                         "daemon wrote it, and loading it would run whatever code it holds")
    if fmt != FORMAT:
        newer = " (written by a newer stream-al?)" if fmt > FORMAT else ""
        raise StateError(f"checkpoint format {fmt} is not supported{newer}; "
                         f"this build reads format {FORMAT}")
    if len(blob) < _HEADER.size:
        raise StateError(f"checkpoint is {len(blob)} bytes, too short to be one (truncated?)")


def _mac(key: bytes, header: bytes, payload: bytes) -> bytes:
    # The header is covered too: the format and key id cannot be swapped under the MAC.
    digest = hmac.new(key, header, hashlib.sha256)
    digest.update(payload)  # fed separately: no copy of a payload of many megabytes
    return digest.digest()
