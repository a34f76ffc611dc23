"""Watch a folder for tester output files and publish each complete file once.

A file counts as complete when its size and modification time have not changed between
two polls (testers write files in place). Published files are remembered in a ledger, a
JSON-lines file in the state directory, by path, size, mtime and the SHA-256 of their
first MiB, so a restart does not publish them again. A file is entered in the ledger
only after the broker acknowledged it; one interrupted half-way is published again,
whole, after a restart (the same record ids: consumers treat them as re-sends).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

LEDGER_NAME = "produce-ledger.jsonl"
HEAD_BYTES = 1 << 20
#: Names testers and copy tools use while a file is still being written.
PARTIAL_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload")


@dataclass(frozen=True)
class FileIdentity:
    """Enough to recognise a file already published, without reading it all."""

    path: str
    size: int
    mtime_ns: int
    head_sha256: str

    @classmethod
    def of(cls, path: Path) -> FileIdentity:
        stat = path.stat()
        with path.open("rb") as f:
            head = hashlib.sha256(f.read(HEAD_BYTES)).hexdigest()
        return cls(str(path.resolve()), stat.st_size, stat.st_mtime_ns, head)


class Ledger:
    """The files already published, kept in ``state_dir / produce-ledger.jsonl``."""

    def __init__(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        self.path = state_dir / LEDGER_NAME
        self._known: set[FileIdentity] = set(self._load())

    def _load(self) -> Iterator[FileIdentity]:
        if not self.path.exists():
            return
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
                yield FileIdentity(**{k: entry[k] for k in FileIdentity.__dataclass_fields__})
            except (ValueError, KeyError, TypeError):
                continue  # a line cut short by a crash: that file is published again

    def __contains__(self, identity: FileIdentity) -> bool:
        return identity in self._known

    def add(self, identity: FileIdentity, **summary: object) -> None:
        """Record a published file; the line is on disk (fsync) before this returns."""
        entry = asdict(identity) | {"published_at": datetime.now(UTC).isoformat()} | summary
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self._known.add(identity)


def candidates(folder: Path, accepts: Callable[[Path], bool]) -> list[Path]:
    """Files in ``folder`` (not hidden, not partial) that ``accepts`` takes, oldest first."""
    found = [
        p
        for p in folder.iterdir()
        if p.is_file()
        and not p.name.startswith(".")
        and not p.name.endswith(PARTIAL_SUFFIXES)
        and accepts(p)
    ]
    return sorted(found, key=lambda p: (p.stat().st_mtime_ns, p.name))


class FolderWatcher:
    """Polls ``folder``; hands each new, settled file to ``publish`` once.

    ``publish(path)`` returns a summary (records, problems …) when the file was fully
    handled, which enters the ledger with it, or None to try the file again on a later
    poll (e.g. the broker was away).
    """

    def __init__(
        self,
        folder: Path,
        ledger: Ledger,
        accepts: Callable[[Path], bool],
        publish: Callable[[Path], Mapping[str, object] | None],
    ) -> None:
        self.folder, self.ledger = folder, ledger
        self._accepts, self._publish = accepts, publish
        self._last_seen: dict[Path, tuple[int, int]] = {}
        # Files settled and handled in this run: no need to hash them again each poll.
        self._handled: set[tuple[Path, int, int]] = set()

    def poll(self, stop: threading.Event) -> None:
        """One look at the folder: publish every file that has settled since last time."""
        seen: dict[Path, tuple[int, int]] = {}
        for path in candidates(self.folder, self._accepts):
            if stop.is_set():
                return
            try:
                stat = path.stat()
                seen[path] = (stat.st_size, stat.st_mtime_ns)
                if self._last_seen.get(path) == seen[path] and stat.st_size > 0:
                    self._publish_once(path, seen[path])
            except FileNotFoundError:
                continue  # moved away between listing and reading: nothing to publish
        self._last_seen = seen

    def _publish_once(self, path: Path, size_mtime: tuple[int, int]) -> None:
        if (path, *size_mtime) in self._handled:
            return
        identity = FileIdentity.of(path)
        if identity not in self.ledger:
            summary = self._publish(path)
            if summary is None:
                return
            self.ledger.add(identity, **summary)
        self._handled.add((path, *size_mtime))

    def run(self, stop: threading.Event, interval_s: float, polls: int | None = None) -> None:
        """Poll every ``interval_s`` until ``stop`` is set (or ``polls`` polls are done)."""
        done = 0
        while not stop.is_set() and (polls is None or done < polls):
            self.poll(stop)
            done += 1
            if polls is None or done < polls:
                stop.wait(interval_s)
