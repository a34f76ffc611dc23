"""Files only the desk's own user may read: the accounts and the session key.

Both are written whole under a temporary name and then moved into place, so a reader
(the desk, while ``stream-al desk users`` writes) sees the old file or the new, never
half of one; and both are 0600 from the moment they exist, not chmod-ed afterwards.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def write_private(path: Path, text: str, *, replace: bool = True) -> bool:
    """Write ``text`` to ``path`` (0600, its directory 0700 if new); with ``replace``
    False an existing file is kept and False returned."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        return _move(temporary, path, replace)
    finally:
        temporary.unlink(missing_ok=True)


def _move(temporary: Path, path: Path, replace: bool) -> bool:
    if replace:
        os.replace(temporary, path)
        return True
    try:
        os.link(temporary, path)  # fails if the file exists: two desks keep one key
    except FileExistsError:
        return False
    return True
