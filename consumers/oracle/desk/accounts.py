"""Desk accounts: names and argon2id password hashes in one JSON file, mode 0600.

``stream-al desk users`` writes the file; the desk reads it and notices a changed file
at the next request, so adding or removing someone needs no restart (a removed
person's sessions stop at once, and so do all sessions of a changed password). The
format::

    {"version": 1, "users": {"ann": {"hash": "$argon2id$v=19$...", "created_at": "..."}}}
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import secrets
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from consumers.oracle.desk.private_files import write_private
from consumers.settings import Settings
from stream_al.errors import StreamAlError

log = logging.getLogger("stream_al.desk")
#: A person's name as it signs labels: no markup, no control characters, 1–64 long.
NAME: Final = re.compile(r"[\w.@+-][\w .@+-]{0,63}")
MIN_PASSWORD: Final = 8
_FORMAT: Final = 1


class AccountError(StreamAlError):
    """An account cannot be added or removed, or the file cannot be read; says why."""


def users_path(settings: Settings) -> Path:
    """Where the accounts live: ``desk.users_file``, else inside the state directory."""
    return settings.desk.users_file or settings.state_dir / "desk-users.json"


class Accounts:
    """The accounts file; safe to use from several threads."""

    def __init__(self, path: Path, hasher: PasswordHasher | None = None) -> None:
        self.path = path
        self._hasher = hasher or PasswordHasher()
        self._lock = threading.Lock()
        self._seen: tuple[int, int, int] | None = None  # inode, size, mtime of what we read
        self._hashes: dict[str, str] = {}
        self._decoy: str | None = None

    def check(self) -> None:
        """Raise AccountError if the file is there but unreadable (for a start-up check)."""
        self._read_file()

    def names(self) -> list[str]:
        return sorted(self._current())

    def stamp(self, name: str) -> str | None:
        """A fingerprint of ``name``'s current hash (None: no such account). Sessions carry
        it, so a new password, or removing and re-adding someone, ends their sessions."""
        stored = self._current().get(name)
        return None if stored is None else hashlib.sha256(stored.encode()).hexdigest()[:16]

    def verify(self, name: str, password: str) -> bool:
        """True for the right password; an unknown name costs the same work as a known
        one, so the time taken does not tell which names exist."""
        stored = self._current().get(name)
        try:
            return self._hasher.verify(stored or self._decoy_hash(), password)
        except (VerificationError, InvalidHashError):
            return False

    def add(self, name: str, password: str, *, replace: bool = False) -> None:
        """Add ``name`` (or, with ``replace``, set a new password); raises AccountError."""
        _check_name(name)
        if len(password) < MIN_PASSWORD:
            raise AccountError(f"a password needs at least {MIN_PASSWORD} characters")
        users = self._read_file()
        if name in users and not replace:
            raise AccountError(f"{name} already has an account (--replace sets a new password)")
        users[name] = {"hash": self._hasher.hash(password),
                       "created_at": datetime.now(UTC).isoformat(timespec="seconds")}
        self._write_file(users)

    def remove(self, name: str) -> None:
        users = self._read_file()
        if users.pop(name, None) is None:
            raise AccountError(f"{name} has no account")
        self._write_file(users)

    def _current(self) -> dict[str, str]:
        """The hashes, re-read when the file changed; a file that turned unreadable keeps
        the last good copy (logged), so a half-edited file does not lock everyone out."""
        with self._lock:
            seen = _signature(self.path)
            if seen != self._seen:
                self._seen = seen
                self._reload()
            return self._hashes

    def _reload(self) -> None:
        try:
            users = self._read_file()
        except AccountError as error:
            log.error("desk accounts: %s; keeping the accounts read before", error)
            return
        self._hashes = {name: entry["hash"] for name, entry in users.items()}

    def _read_file(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as error:
            raise AccountError(f"cannot read {self.path}: {error}") from None
        if not (isinstance(data, dict) and data.get("version") == _FORMAT
                and _well_formed(data.get("users"))):
            raise AccountError(f"{self.path} is not a desk accounts file (version {_FORMAT})")
        users: dict[str, Any] = data["users"]
        return users

    def _write_file(self, users: dict[str, Any]) -> None:
        text = json.dumps({"version": _FORMAT, "users": users}, indent=2, sort_keys=True)
        write_private(self.path, text + "\n")

    def _decoy_hash(self) -> str:
        if self._decoy is None:  # made on first need: hashing takes a noticeable moment
            self._decoy = self._hasher.hash(secrets.token_urlsafe(16))
        return self._decoy


def _check_name(name: str) -> None:
    if not NAME.fullmatch(name):
        raise AccountError(f"{name!r} is not a desk name: 1–64 letters, digits, spaces "
                           "or . @ + - _, not starting with a space")


def _well_formed(users: object) -> bool:
    return isinstance(users, dict) and all(
        isinstance(entry, dict) and isinstance(entry.get("hash"), str)
        for entry in users.values())


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return stat.st_ino, stat.st_size, stat.st_mtime_ns
