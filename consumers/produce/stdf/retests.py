"""Which parts were already seen in another file: a retest, not a new part.

A retest insertion is usually written to a file of its own, with the same lot, wafer and
die (or PART_ID) as the first insertion and often the same place in the file, so the
part's record id would collide with the first one's. Testers that say so set the MIR's
RTST_COD or the PRR's PART_FLG bits; many do not, so the parts of every file published
are remembered here too, and kept in the state directory (``produce-parts.jsonl``), so a
retest published by a later ``stream-al produce`` (or after a ``--follow`` restart) is
still known as one.

Files are told apart by their content hash, not by the order they were read: a file
read again (a retry after a lost broker, the same file named twice, the same file
published by a later run) is not a retest of itself, and gets the ids it got the first
time. Memory and the file are bounded: past :data:`CAPACITY` parts the oldest are
forgotten.

The file is JSON lines, one per file that brought new parts: ``{"file": <the file's
content tag>, "parts": [<16 hex digits of BLAKE2b of the part key>, …]}``, appended
(``O_APPEND``, never through a link, mode 0600) and fsynced after each file, as the
follow ledger is. A last line cut short by a crash is ignored (those parts are simply
not known as seen). When the file holds a quarter more than :data:`CAPACITY` parts it
is rewritten from memory under a fresh name, fsynced and renamed over the old one.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections.abc import Hashable, Iterable
from itertools import islice
from pathlib import Path

#: Parts remembered at most (about 100 bytes each in memory, 20 on disk): a lot of 25
#: wafers of 8,000 dies.
CAPACITY = 200_000
FILE_NAME = "produce-parts.jsonl"


def part_hash(part: Hashable) -> str:
    """A part key as 16 hex digits, the same in every process (unlike ``hash``).

    A clash among 200,000 parts is about 1e-9: it would flag one part as a retest.

    >>> part_hash(("L7", "", "W1", "die", 0, 0)) == part_hash(("L7", "", "W1", "die", 0, 0))
    True
    """
    text = json.dumps(list(part) if isinstance(part, tuple) else part, default=str)
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


class SeenParts:
    """Part keys (lot, sublot, wafer, die or PART_ID) → the file that held them first.

    With ``state_dir`` the parts of earlier runs are loaded, and :meth:`save` keeps the
    new ones there; without it they live as long as this object. ``read_only`` loads
    them but never saves (a dry run: what it prints was not sent, so no later file is a
    retest of it).
    """

    def __init__(self, capacity: int = CAPACITY, state_dir: Path | None = None,
                 read_only: bool = False) -> None:
        self.read_only = read_only
        self._first_file: dict[str, str] = {}
        self._capacity = capacity
        self._new: list[tuple[str, str]] = []  # (part, file) not yet saved
        self.path = None if state_dir is None else state_dir / FILE_NAME
        self._on_disk = 0  # parts the file holds, superseded ones included
        self._torn = False
        if self.path is not None:
            self._load(self.path)

    def __len__(self) -> int:
        return len(self._first_file)

    def in_another_file(self, part: Hashable, file_tag: str) -> bool:
        """Whether a file other than ``file_tag`` held ``part``; remembers this one."""
        key = part_hash(part)
        first = self._first_file.get(key)
        if first is None:
            self._remember(key, file_tag)
            self._new.append((key, file_tag))
            return False
        return first != file_tag

    def _remember(self, key: str, file_tag: str) -> None:
        if len(self._first_file) >= self._capacity:
            for old in list(islice(self._first_file, self._capacity // 4 or 1)):
                del self._first_file[old]
        self._first_file[key] = file_tag

    # -- the file in the state directory ----------------------------------------------

    def _load(self, path: Path) -> None:
        try:
            data = _read_regular(path)
        except FileNotFoundError:
            return
        self._torn = bool(data) and not data.endswith(b"\n")
        for line in data.splitlines():
            entry = _parse(line)
            if entry is None:
                continue
            tag, parts = entry
            for key in parts:
                if key not in self._first_file:  # the first file stays the first
                    self._remember(key, tag)
            self._on_disk += len(parts)

    def save(self) -> None:
        """Keep the parts first seen since the last save; on disk before this returns.
        OSError when the state directory cannot be written (the parts stay in memory)."""
        if self.path is None or not self._new or self.read_only:
            return
        by_file: dict[str, list[str]] = {}
        for key, tag in self._new:
            by_file.setdefault(tag, []).append(key)
        if self._on_disk + len(self._new) > self._capacity + self._capacity // 4:
            self._rewrite(self.path)
        else:
            self._append(self.path, by_file.items())
            self._on_disk += len(self._new)
        self._new = []

    def _append(self, path: Path, entries: Iterable[tuple[str, list[str]]]) -> None:
        text = "".join(json.dumps({"file": tag, "parts": parts}) + "\n"
                       for tag, parts in entries)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            # After a torn last line, a fresh line: glued to it this one would be lost.
            os.write(fd, (("\n" if self._torn else "") + text).encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        self._torn = False

    def _rewrite(self, path: Path) -> None:
        """What memory holds (bounded), oldest first, in place of the file."""
        by_file: dict[str, list[str]] = {}
        for key, tag in self._first_file.items():
            by_file.setdefault(tag, []).append(key)
        temporary = path.with_name(f".{FILE_NAME}-{secrets.token_hex(8)}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            with open(fd, "w", encoding="utf-8") as file:  # closes the descriptor
                for tag, parts in by_file.items():
                    file.write(json.dumps({"file": tag, "parts": parts}) + "\n")
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, path)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(directory)  # the rename itself must survive a power cut
        finally:
            os.close(directory)
        self._on_disk, self._torn = len(self._first_file), False


def _read_regular(path: Path) -> bytes:
    """The file's bytes; never through a link (OSError), like every file of the state."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with open(fd, "rb") as file:
        return file.read()


def _parse(line: bytes) -> tuple[str, list[str]] | None:
    try:
        entry = json.loads(line)
    except ValueError:  # a torn line, also one cut inside a character
        return None
    if not isinstance(entry, dict):
        return None
    tag, parts = entry.get("file"), entry.get("parts")
    if not isinstance(tag, str) or not isinstance(parts, list):
        return None
    return tag, [p for p in parts if isinstance(p, str)]
