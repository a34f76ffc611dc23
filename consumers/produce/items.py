"""What a file source yields: records with their position, and problems with theirs.

Both the STDF and the tabular sources speak this vocabulary so that ``stream-al produce``
counts, reports and publishes them the same way. A problem always names the file and
a position a person can open the file at; nothing a source cannot turn into a record
disappears without one.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, cast


@dataclass(frozen=True)
class Parsed:
    """A record dict (DESIGN §2) read from ``file`` at ``position``, not yet validated."""

    record: dict[str, Any]
    file: str
    position: str


@dataclass(frozen=True)
class Problem:
    """Something in ``file`` at ``position`` that could not become a valid record.

    ``kind`` is a short, bounded category (the summary groups by it); ``reason`` is a
    sentence a person can act on; ``records`` how many parts or rows it stands for.
    """

    file: str
    position: str
    kind: str
    reason: str
    records: int = 1

    def __str__(self) -> str:
        return f"{self.file}: {self.position}: {self.reason}"


Item = Parsed | Problem


def is_gzip(path: Path) -> bool:
    """True when the file starts with the gzip magic bytes, whatever its name says."""
    with path.open("rb") as raw:
        return raw.read(2) == b"\x1f\x8b"


class CountingFile:
    """A binary file, transparently gunzipped, that knows how many raw bytes it read.

    Progress bars show raw (on-disk) bytes, which is what the file size is measured in.
    """

    def __init__(self, path: Path) -> None:
        self.compressed = is_gzip(path)
        self._raw = path.open("rb")
        self.stream: BinaryIO = (
            cast(BinaryIO, gzip.GzipFile(fileobj=self._raw, mode="rb"))
            if self.compressed
            else self._raw
        )

    @property
    def raw_bytes_read(self) -> int:
        return self._raw.tell()

    def close(self) -> None:
        if self.stream is not self._raw:
            self.stream.close()
        self._raw.close()

    def __enter__(self) -> CountingFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
