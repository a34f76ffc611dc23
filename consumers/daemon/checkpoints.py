"""Checkpoint files: written atomically (temp file, fsync, rename, fsync the folder)
and read back only from the configured state directory, owner-only (0600)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from stream_al.errors import StateError
from stream_al.state import Checkpoint, dumps, loads

FILE_NAME = "checkpoint.bin"


class CheckpointStore:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.path = state_dir / FILE_NAME

    def prepare(self) -> None:
        """Create the state directory (0700) or fail naming the fix."""
        try:
            self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as error:
            raise StateError(f"cannot create state directory {self.state_dir}: "
                             f"{error.strerror}; set STREAM_AL_STATE_DIR to a writable "
                             "folder") from error

    def save(self, checkpoint: Checkpoint) -> int:
        """Write the checkpoint so that a crash at any instant leaves the old or the new
        one whole, never a torn file. Returns the size in bytes."""
        blob = dumps(checkpoint)
        temporary = self.path.with_suffix(".tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            view = memoryview(blob)
            while view:
                view = view[os.write(descriptor, view):]
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        os.replace(temporary, self.path)
        directory = os.open(self.state_dir, os.O_RDONLY)
        try:
            os.fsync(directory)  # the rename itself must survive a power cut
        finally:
            os.close(directory)
        return len(blob)

    def load(self) -> Checkpoint | None:
        """The last checkpoint, or None on a first start."""
        if not self.path.exists():
            return None
        mode = self.path.stat().st_mode
        if mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise StateError(f"{self.path} is writable by others (mode {oct(mode & 0o777)}); "
                             "a checkpoint is code to Python's pickle: chmod 600 it")
        return loads(self.path.read_bytes())
