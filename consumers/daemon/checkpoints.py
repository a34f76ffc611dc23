"""Checkpoint files: who may have written them, and how they are written so that a
crash, a full disk or a planted link never costs the last good one.

A checkpoint is a pickle, so loading one runs code. It is loaded only when

- the state directory belongs to the daemon's user and nobody else may write in it;
- the file belongs to the daemon's user with mode 0600: any other owner or mode means
  something other than this daemon put it there (the daemon writes 0600);
- its HMAC matches under the checkpoint key (``stream_al.state``), checked before a
  byte is unpickled.

The key is ``checkpoint.key`` from the settings or, when that is unset, one generated on
the first save into ``checkpoint.key`` in the state directory (0600, never replaced).
Replicas given the same key can read each other's checkpoints; whoever can read the key
can forge a checkpoint that the daemon will run.

A save writes a new file under a fresh random name (``O_EXCL | O_NOFOLLOW``: never an
existing file, never through a link), fsyncs it, renames the current checkpoint to
``checkpoint.prev``, renames the new file to ``checkpoint.bin`` and fsyncs the directory.
A load falls back to ``checkpoint.prev`` when ``checkpoint.bin`` is missing (a crash
between the two renames) or refused as corrupt or unauthenticated.
"""

from __future__ import annotations

import errno
import logging
import os
import secrets
import stat
from pathlib import Path
from typing import NoReturn

from pydantic import SecretStr

from stream_al.errors import ConfigError, StateDirError, StateError
from stream_al.state import Checkpoint, check_format, dumps, loads

FILE_NAME = "checkpoint.bin"
PREVIOUS_NAME = "checkpoint.prev"
#: Where a checkpoint.bin refused at load goes at the next save, for a post-mortem.
REFUSED_NAME = "checkpoint.refused"
KEY_NAME = "checkpoint.key"
KEY_MIN_CHARS = 32
_TEMP_PREFIX, _TEMP_SUFFIX = ".checkpoint-", ".tmp"
#: The fixed temporary name of the format-1 writer, cleaned up like ours.
_LEGACY_TEMP = "checkpoint.tmp"

log = logging.getLogger("stream_al.daemon")


class CheckpointStore:
    def __init__(self, state_dir: Path, key: SecretStr | None = None) -> None:
        if key is not None and len(key.get_secret_value()) < KEY_MIN_CHARS:
            # Checked here rather than in the settings: a settings error echoes the value.
            raise ConfigError(f"checkpoint.key has {len(key.get_secret_value())} characters; "
                              f"use at least {KEY_MIN_CHARS} (e.g. `openssl rand -hex 32`)")
        self.state_dir = state_dir
        self.path = state_dir / FILE_NAME
        self.previous_path = state_dir / PREVIOUS_NAME
        self.refused_path = state_dir / REFUSED_NAME
        self.key_path = state_dir / KEY_NAME
        self.configured_key = key
        self._key = key.get_secret_value().encode() if key is not None else None
        #: Why the last save failed, until one succeeds (for /readyz).
        self.write_error: str | None = None
        #: The file the last ``load`` restored.
        self.loaded_from: Path | None = None
        self._newest_refused = False

    # -- directory -------------------------------------------------------------------

    def prepare(self) -> None:
        """Create the state directory (0700) if missing, refuse one that others may write
        in, and clear the temporary files of a crashed write."""
        try:
            self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as error:
            raise StateDirError(f"state dir {self.state_dir} not writable: cannot create it "
                                f"({_reason(error)}); set STREAM_AL_STATE_DIR to a writable "
                                "folder") from error
        self._check_dir()
        self._remove_stale_temporaries()

    def _check_dir(self) -> bool:
        """False if the directory does not exist yet; StateError if another user owns it
        or may write in it (they could replace the checkpoint)."""
        try:
            info = os.stat(self.state_dir)
        except FileNotFoundError:
            return False
        except OSError as error:
            raise StateDirError(f"state dir {self.state_dir} not readable: "
                                f"{_reason(error)}") from error
        if not stat.S_ISDIR(info.st_mode):
            raise StateError(f"state dir {self.state_dir} is not a directory; set "
                             "STREAM_AL_STATE_DIR to a folder")
        euid = os.geteuid()
        if info.st_uid != euid or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise StateError(
                f"refusing state dir {self.state_dir}: owned by uid {info.st_uid} with mode "
                f"{_mode(info)}, but it must belong to the daemon's user (uid {euid}) and be "
                "writable by nobody else, as whoever can write in it can replace the "
                f"checkpoint: chown {euid} {self.state_dir} && chmod 700 {self.state_dir}")
        return True

    def _remove_stale_temporaries(self) -> None:
        """Remove what a crash mid-write left, but only regular files of ours: a link or
        another user's file under such a name is left alone (and named), never followed."""
        try:
            with os.scandir(self.state_dir) as entries:
                stale = [entry for entry in entries if _is_temporary(entry.name)]
        except OSError as error:
            log.warning("could not list %s for stale temporary files: %s", self.state_dir,
                        _reason(error))
            return
        for entry in stale:
            try:
                info = entry.stat(follow_symlinks=False)
                if stat.S_ISREG(info.st_mode) and info.st_uid == os.geteuid():
                    os.unlink(entry.path)
                else:
                    log.warning("left %s alone: not a regular file of this user (mode %s, "
                                "uid %d)", entry.path, _mode(info), info.st_uid)
            except OSError as error:  # a read-only dir: the stale file costs only space
                log.warning("could not remove the stale temporary file %s: %s", entry.path,
                            _reason(error))

    # -- save ------------------------------------------------------------------------

    def save(self, checkpoint: Checkpoint) -> int:
        """Write the checkpoint so that a crash at any instant leaves a whole one (the new
        one, or the old as checkpoint.prev). Returns its size in bytes. A directory that
        cannot be written raises StateDirError and leaves the old checkpoint as it was."""
        try:
            blob = dumps(checkpoint, self._key_for_writing())
            self._rotate(self._write_temporary(blob))
            self._sync_dir()
        except OSError as error:
            self.write_error = f"state dir {self.state_dir} not writable: {_reason(error)}"
            raise StateDirError(self.write_error) from error
        self.write_error = None
        return len(blob)

    def _write_temporary(self, data: bytes) -> Path:
        """A new 0600 file under a fresh name. O_EXCL never opens an existing file and
        O_NOFOLLOW never goes through a link: a name planted in advance fails the write
        instead of redirecting it onto another file."""
        path = self._temporary_path()
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            with open(descriptor, "wb") as file:  # closes the descriptor
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
        except BaseException:
            _remove_quietly(path)  # a half-written file on a full disk only makes it fuller
            raise
        return path

    def _temporary_path(self) -> Path:
        return self.state_dir / f"{_TEMP_PREFIX}{secrets.token_hex(8)}{_TEMP_SUFFIX}"

    def _rotate(self, temporary: Path) -> None:
        """Current → previous generation, new → current; each rename is atomic."""
        # A checkpoint.bin refused at load must not push out the good checkpoint.prev.
        target = self.refused_path if self._newest_refused else self.previous_path
        try:
            try:
                os.replace(self.path, target)
            except FileNotFoundError:
                pass  # the first save, or the first after a crash between these renames
            os.replace(temporary, self.path)
        except BaseException:
            _remove_quietly(temporary)
            raise
        self._newest_refused = False

    def _sync_dir(self) -> None:
        descriptor = os.open(self.state_dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(descriptor)  # the renames themselves must survive a power cut
        finally:
            os.close(descriptor)

    # -- key -------------------------------------------------------------------------

    def _key_for_reading(self) -> bytes | None:
        if self._key is None:
            self._key = self._read_key_file()
        return self._key

    def _key_for_writing(self) -> bytes:
        if self._key is None:
            self._key = self._read_key_file() or self._create_key_file()
        return self._key

    def _read_key_file(self) -> bytes | None:
        text = self._read_private(self.key_path, "checkpoint key")
        if text is None:
            return None
        key = text.strip()
        if len(key) < KEY_MIN_CHARS:
            raise StateError(f"refusing checkpoint key {self.key_path}: {len(key)} characters, "
                             f"fewer than the {KEY_MIN_CHARS} stream-al writes; restore the "
                             "right file or set checkpoint.key")
        return key

    def _create_key_file(self) -> bytes:
        key = secrets.token_hex(32).encode()
        temporary = self._write_temporary(key + b"\n")
        try:
            # A link, not a rename: it never replaces a key that may have signed checkpoints.
            os.link(temporary, self.key_path, follow_symlinks=False)
        except FileExistsError:
            existing = self._read_key_file()  # made meanwhile by a process on this dir
            if existing is None:
                raise
            return existing
        finally:
            _remove_quietly(temporary)
        self._sync_dir()
        log.info("generated the checkpoint key %s: keep it private, as whoever can read it "
                 "can forge checkpoints", self.key_path)
        return key

    # -- load ------------------------------------------------------------------------

    def load(self) -> Checkpoint | None:
        """The newest checkpoint that passes every check, or None on a first start.

        A directory or file that another user owns or may write is refused outright. A
        checkpoint.bin that is corrupt, unauthenticated or unreadable by this build is
        refused in favour of checkpoint.prev, and the log says so."""
        self.loaded_from, self._newest_refused = None, False
        if not self._check_dir():
            return None
        key = self._key_for_reading()
        newest = self._read_private(self.path, "checkpoint")
        if newest is None:
            return self._previous(key, f"{self.path} is missing")
        if key is None:
            self._refuse_without_key(newest, self.path)  # alike for every generation
        try:
            return self._decode(newest, key, self.path)
        except StateError as error:
            refused = f"{self.path}: {error}"
        checkpoint = self._previous(key, refused)
        if checkpoint is None:
            raise StateError(f"{refused}. {_start_fresh(self.path)}")
        self._newest_refused = True
        return checkpoint

    def _previous(self, key: bytes | None, why: str) -> Checkpoint | None:
        blob = self._read_private(self.previous_path, "checkpoint")
        if blob is None:
            return None
        if key is None:
            self._refuse_without_key(blob, self.previous_path)
        try:
            checkpoint = self._decode(blob, key, self.previous_path)
        except StateError as error:
            present = [p for p in (self.path, self.previous_path) if os.path.lexists(p)]
            raise StateError(f"no checkpoint can be restored: {why}; {self.previous_path}: "
                             f"{error}. {_start_fresh(*present)}") from error
        log.warning("%s; restored the previous checkpoint %s (of %s) instead", why,
                    self.previous_path, checkpoint.taken_at)
        return checkpoint

    def _decode(self, blob: bytes, key: bytes, path: Path) -> Checkpoint:
        checkpoint = loads(blob, key)
        self.loaded_from = path
        return checkpoint

    def _refuse_without_key(self, blob: bytes, path: Path) -> NoReturn:
        try:
            check_format(blob)  # an old or foreign file is named as such first
        except StateError as error:
            raise StateError(f"{path}: {error}. {_start_fresh(path)}") from error
        raise StateError(f"{path}: there is no key to authenticate it: {self.key_path} is "
                         "missing and checkpoint.key is not set; set the key that wrote it or "
                         f"put its key file back. {_start_fresh(path)}")

    def _read_private(self, path: Path, what: str) -> bytes | None:
        """The bytes of ``path`` if it is a regular file of ours, mode 0600 or stricter;
        None if it does not exist. The checks are made on the open file, so the file
        checked is the file read."""
        try:
            # O_NOFOLLOW: a link is refused; O_NONBLOCK: a planted FIFO cannot hang us.
            descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except FileNotFoundError:
            return None
        except OSError as error:
            if error.errno == errno.ELOOP:
                raise StateError(f"refusing {what} {path}: it is a symbolic link, and only a "
                                 "file the daemon wrote itself is trusted; remove the link"
                                 ) from error
            raise StateDirError(f"state dir {self.state_dir} not readable: "
                                f"{_reason(error)}") from error
        with open(descriptor, "rb") as file:  # closes the descriptor
            _check_private(path, os.fstat(file.fileno()), what)
            return file.read()


def _check_private(path: Path, info: os.stat_result, what: str) -> None:
    euid = os.geteuid()
    if not stat.S_ISREG(info.st_mode):
        raise StateError(f"refusing {what} {path}: not a regular file; move it away")
    if info.st_uid != euid or info.st_mode & 0o077:
        raise StateError(
            f"refusing {what} {path}: owned by uid {info.st_uid} with mode {_mode(info)}, but "
            f"only a file of the daemon's user (uid {euid}) with mode 0600 is trusted, as "
            "anything else may not be the daemon's own. If you put it there yourself (a "
            f"restored backup): chown {euid} {path} && chmod 600 {path}; otherwise move it away")


def _start_fresh(*paths: Path) -> str:
    moves = " && ".join(f"mv {path} {path}.old" for path in paths)
    them = "them" if len(paths) > 1 else "it"
    return (f"To start fresh, move {them} away ({moves}) and restart: the daemon rebuilds "
            "its models by replaying the label log")


def _is_temporary(name: str) -> bool:
    return name == _LEGACY_TEMP or (name.startswith(_TEMP_PREFIX) and name.endswith(_TEMP_SUFFIX))


def _remove_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass  # already renamed into place, or the directory refuses even this


def _mode(info: os.stat_result) -> str:
    return f"{stat.S_IMODE(info.st_mode):04o}"


def _reason(error: OSError) -> str:
    code = errno.errorcode.get(error.errno or 0)
    text = error.strerror or str(error) or type(error).__name__
    return f"{text} ({code})" if code else text
