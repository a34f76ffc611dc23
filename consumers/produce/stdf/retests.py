"""Which parts of a run were already seen in another file: a retest, not a new part.

A retest insertion is usually written to a file of its own, with the same lot, wafer and
die (or PART_ID) as the first insertion and often the same place in the file, so the
part's record id would collide with the first one's. Testers that say so set the MIR's
RTST_COD or the PRR's PART_FLG bits; many do not, so the parts of every file published
in one run (or one ``--follow`` session) are remembered here too.

Files are told apart by their content hash, not by the order they were read: a file
read again (a retry after a lost broker, the same file named twice) is not a retest of
itself. Memory is bounded: past :data:`CAPACITY` parts the oldest are forgotten.
"""

from __future__ import annotations

from collections.abc import Hashable
from itertools import islice

#: Parts remembered at most (about 100 bytes each): a lot of 25 wafers of 8,000 dies.
CAPACITY = 200_000


class SeenParts:
    """Part keys (lot, sublot, wafer, die or PART_ID) → the file that held them first."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self._first_file: dict[int, str] = {}
        self._capacity = capacity

    def __len__(self) -> int:
        return len(self._first_file)

    def in_another_file(self, part: Hashable, file_tag: str) -> bool:
        """Whether a file other than ``file_tag`` held ``part``; remembers this one."""
        # A hash, not the tuple: a tenth of the memory, and a clash among 200,000 parts
        # is about 1e-9 (it would flag one part as a retest, nothing worse).
        key = hash(part)
        first = self._first_file.get(key)
        if first is None:
            if len(self._first_file) >= self._capacity:
                for old in list(islice(self._first_file, self._capacity // 4 or 1)):
                    del self._first_file[old]
            self._first_file[key] = file_tag
            return False
        return first != file_tag
