"""Watch a folder for tester output files and publish each complete file once.

Only regular files directly in the folder are read. A symbolic link (to a file or a
folder, inside the folder or out) and anything else that is not a regular file (a FIFO,
a device, a socket) is skipped with one warning naming it, and never opened: a link can
point anywhere (``/etc/passwd``), and opening a FIFO blocks until someone writes to it.
Files are opened with ``O_NOFOLLOW`` and their type is checked on the open descriptor,
so a file swapped for a link after the listing is refused too. Subfolders are not
watched; hidden names and names testers use while writing (``.tmp``, ``.part`` …) are
ignored.

A file counts as complete when its size and modification time stayed the same over polls
spanning at least the settle time: testers write files in place, and one still being
written must not be published part first, then whole.

Published files are remembered in a ledger, a JSON-lines file in the state directory, by
the SHA-256 of their whole content, so neither a restart nor a rename nor a copy of a
published file publishes it again. A file is entered in the ledger only after the broker
acknowledged it; one interrupted half-way is published again, whole, after a restart,
with the same record ids (they come from the content): consumers treat them as re-sends.
Ledger lines from before the content hash (path, size, mtime and the SHA-256 of the first
MiB) are still understood: a file one of them names, unchanged, is not published again,
and a content-hash line is appended for it, so a later rename is recognised as well.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from consumers.produce.items import open_regular, sha256_and_size

LEDGER_NAME = "produce-ledger.jsonl"
#: Names testers and copy tools use while a file is still being written.
PARTIAL_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload")
#: Seconds a file's size and mtime must stay unchanged before it is published.
DEFAULT_SETTLE_S = 5.0
#: The fields of a ledger line written before the content hash, and how much of the
#: file its ``head_sha256`` covers.
LEGACY_FIELDS = ("path", "size", "mtime_ns", "head_sha256")
LEGACY_HEAD_BYTES = 1 << 20


@dataclass(frozen=True)
class FileIdentity:
    """What the ledger knows a published file by: its whole content."""

    sha256: str
    size: int

    @classmethod
    def of(cls, path: Path) -> FileIdentity:
        """Hash the file; OSError for a symbolic link or anything not a regular file."""
        return cls(*sha256_and_size(path, follow_symlinks=False))


@dataclass(frozen=True)
class Seen:
    """A regular file in the folder as one poll saw it."""

    path: Path
    size: int
    mtime_ns: int

    @property
    def signature(self) -> tuple[int, int]:
        return self.size, self.mtime_ns


def _parse(line: bytes) -> dict[str, Any] | None:
    try:
        entry = json.loads(line)
    except ValueError:  # also UnicodeDecodeError: a line cut inside a character
        return None
    return entry if isinstance(entry, dict) else None


def _is_legacy(entry: dict[str, Any]) -> bool:
    return all(k in entry for k in LEGACY_FIELDS)


def _head_sha256(path: Path) -> str:
    with open_regular(path, follow_symlinks=False) as f:
        return hashlib.sha256(f.read(LEGACY_HEAD_BYTES)).hexdigest()


class Ledger:
    """The files already published, kept in ``state_dir / produce-ledger.jsonl``.

    Append-only: each line is one published file. A last line cut short by a crash is
    ignored (that file is published again), and the next line starts on a fresh line.
    """

    def __init__(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        self.path = state_dir / LEDGER_NAME
        self._published: dict[str, str] = {}  # content SHA-256 → path it was published from
        self._legacy: dict[tuple[str, int, int], dict[str, Any]] = {}
        self._torn = False
        self._load()

    def _load(self) -> None:
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        self._torn = bool(data) and not data.endswith(b"\n")
        for line in data.splitlines():
            entry = _parse(line)
            if entry is not None and isinstance(entry.get("sha256"), str):
                self._published[entry["sha256"]] = str(entry.get("path", ""))
            elif entry is not None and _is_legacy(entry):
                key = (str(entry["path"]), entry["size"], entry["mtime_ns"])
                self._legacy[key] = entry

    def __contains__(self, identity: object) -> bool:
        return isinstance(identity, FileIdentity) and identity.sha256 in self._published

    def published_as(self, identity: FileIdentity) -> str | None:
        """The path a file with this content was published from, if it was."""
        return self._published.get(identity.sha256)

    def add(self, identity: FileIdentity, path: Path, **summary: object) -> None:
        """Record a published file; the line is on disk (fsync) before this returns."""
        where = str(path.resolve())
        entry = {"sha256": identity.sha256, "size": identity.size, "path": where}
        self._append(entry | {"published_at": datetime.now(UTC).isoformat()} | summary)
        self._published[identity.sha256] = where

    def _append(self, entry: Mapping[str, object]) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as f:
            # After a torn last line, a fresh line: glued to it this entry would be lost.
            f.write(("\n" if self._torn else "") + json.dumps(entry) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self._torn = False

    def migrate_legacy(self, seen: Seen, identity: FileIdentity) -> bool:
        """True when a line from before the content hash names this very file, unchanged;
        a content-hash line (with the old line's summary) is then appended for it."""
        old = self._legacy.get((str(seen.path.resolve()), seen.size, seen.mtime_ns))
        if old is None or _head_sha256(seen.path) != old["head_sha256"]:
            return False
        summary = {k: v for k, v in old.items() if k not in (*LEGACY_FIELDS, "sha256")}
        self.add(identity, seen.path, **summary, migrated_from=list(LEGACY_FIELDS))
        return True


def _link_target(path: Path) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return "?"


def refusal(path: Path, mode: int, real_folder: Path) -> str | None:
    """Why the entry ``path`` (lstat mode ``mode``) must not be read; None if it may be.

    Plain subfolders are not watched and not worth a warning either.
    """
    if stat.S_ISLNK(mode):
        return f"a symbolic link (to {_link_target(path)}): links are never followed"
    if stat.S_ISDIR(mode):
        return None
    if stat.S_ISFIFO(mode):
        return "a FIFO, not a regular file"
    if not stat.S_ISREG(mode):
        return "a device or socket, not a regular file"
    # Cheap insurance: a regular file listed in the folder resolves into it, unless the
    # folder's own path goes through a link that was changed since it was resolved.
    if path.resolve().parent != real_folder:
        return "its real location is outside the folder"
    return None


def scan(folder: Path, accepts: Callable[[Path], bool]) -> tuple[list[Seen], dict[str, str]]:
    """The readable files ``accepts`` takes, oldest first; and the refused, name → why.

    Nothing is opened: every entry is judged by ``lstat``, which never follows a link.
    """
    real_folder = folder.resolve()
    files: list[Seen] = []
    refused: dict[str, str] = {}
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.startswith(".") or entry.name.endswith(PARTIAL_SUFFIXES):
                continue
            path = Path(entry.path)
            try:
                info = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue  # gone since the listing
            if (why := refusal(path, info.st_mode, real_folder)) is not None:
                refused[entry.name] = why
            elif stat.S_ISREG(info.st_mode) and accepts(path):
                files.append(Seen(path, info.st_size, info.st_mtime_ns))
    files.sort(key=lambda s: (s.mtime_ns, s.path.name))
    return files, refused


@dataclass(frozen=True)
class _Sighting:
    signature: tuple[int, int]
    since: float  # clock time of the first poll that saw this signature
    polls: int  # how many polls in a row saw it


Publish = Callable[[Path, FileIdentity], Mapping[str, object] | None]


class FolderWatcher:
    """Polls ``folder``; hands each new, settled file to ``publish`` once.

    ``publish(path, identity)`` returns a summary (records, problems …) when the file was
    fully handled, which enters the ledger with it, or None to try the file again on a
    later poll (e.g. the broker was away). ``say`` gets the warnings and notes, one line
    each; ``clock`` (seconds, monotonic) times the settling, so tests can drive it.
    """

    def __init__(
        self,
        folder: Path,
        ledger: Ledger,
        accepts: Callable[[Path], bool],
        publish: Publish,
        *,
        settle_s: float = DEFAULT_SETTLE_S,
        clock: Callable[[], float] = time.monotonic,
        say: Callable[[str], None] = lambda text: None,
    ) -> None:
        self.folder, self.ledger, self.settle_s = folder, ledger, settle_s
        self._accepts, self._publish, self._clock, self._say = accepts, publish, clock, say
        self._sightings: dict[Path, _Sighting] = {}
        # Files settled and handled in this run: no need to hash them again each poll.
        self._handled: set[tuple[Path, int, int]] = set()
        self._warned: dict[str, str] = {}  # name → the refusal already warned about

    def poll(self, stop: threading.Event) -> None:
        """One look at the folder: publish every file that has settled since last time."""
        now = self._clock()
        files, refused = scan(self.folder, self._accepts)
        sightings: dict[Path, _Sighting] = {}
        for seen in files:
            if stop.is_set():
                break
            sightings[seen.path] = sighting = self._sighting(seen, now)
            if self._settled(seen, sighting, now):
                self._try_publish(seen, refused)
        self._sightings = sightings
        # Only files still there are worth remembering: memory follows the folder's size.
        self._handled = {key for key in self._handled if key[0] in sightings}
        self._warn_once(refused)

    def _sighting(self, seen: Seen, now: float) -> _Sighting:
        last = self._sightings.get(seen.path)
        if last is None or last.signature != seen.signature:
            return _Sighting(seen.signature, now, 1)  # new, or changed: settling starts over
        return _Sighting(last.signature, last.since, last.polls + 1)

    def _settled(self, seen: Seen, sighting: _Sighting, now: float) -> bool:
        # Two polls at least, whatever the settle time: one look proves nothing.
        return seen.size > 0 and sighting.polls >= 2 and now - sighting.since >= self.settle_s

    def _try_publish(self, seen: Seen, refused: dict[str, str]) -> None:
        key = (seen.path, *seen.signature)
        if key in self._handled:
            return
        try:
            done = self._publish_new(seen)
        except FileNotFoundError:
            return  # renamed or moved away meanwhile: a later poll sees its new name
        except OSError as error:  # swapped for a link or a FIFO, or unreadable: not opened
            refused[seen.path.name] = f"cannot be read ({error.strerror or error})"
            return
        if done:
            self._handled.add(key)

    def _publish_new(self, seen: Seen) -> bool:
        """Publish ``seen`` unless its content is in the ledger; False to try again later."""
        identity = FileIdentity.of(seen.path)
        if identity.size != seen.size:
            return False  # written to since the listing: it has not settled after all
        earlier = self.ledger.published_as(identity)
        if earlier is None and self.ledger.migrate_legacy(seen, identity):
            earlier = str(seen.path.resolve())
        if earlier is not None:
            if earlier != str(seen.path.resolve()):  # a rename or a copy: say why it is left
                self._say(f"note: {seen.path}: not published: same content as {earlier}")
            return True
        summary = self._publish(seen.path, identity)
        if summary is None:
            return False
        self.ledger.add(identity, seen.path, **summary)
        return True

    def _warn_once(self, refused: dict[str, str]) -> None:
        for name, why in refused.items():
            if self._warned.get(name) != why:
                self._say(f"warning: {self.folder / name}: skipped: {why}")
        self._warned = refused  # a name gone and back later is warned about again

    def run(self, stop: threading.Event, interval_s: float, polls: int | None = None) -> None:
        """Poll every ``interval_s`` until ``stop`` is set (or ``polls`` polls are done)."""
        done = 0
        while not stop.is_set() and (polls is None or done < polls):
            self.poll(stop)
            done += 1
            if polls is None or done < polls:
                stop.wait(interval_s)
