"""A minimal STDF V4 writer, used only by the tests, so they write their own files.

It writes the handful of records a wafer-sort or final-test file needs (FAR, MIR, WIR,
PIR, PTR, PRR, WRR, MRR), each with a 4-byte header (REC_LEN, REC_TYP, REC_SUB) and its
fields packed with ``struct``. Trailing optional fields are left out, which STDF allows.
``offset`` tells a test where the next record will start, so it can assert positions.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

MISSING_COORD = -32768
#: PRR PART_FLG bit 3: the part failed.
PART_FAILED = 0x08
#: PTR TEST_FLG bit 1: RESULT is not valid.
RESULT_INVALID = 0x02
#: PTR TEST_FLG bit 4: the test was not executed.
NOT_EXECUTED = 0x10


class StdfWriter:
    """Builds an STDF V4 byte stream record by record (CPU_TYPE 2: little-endian)."""

    def __init__(self, cpu_type: int = 2) -> None:
        self._endian = "<" if cpu_type == 2 else ">"
        self._data = bytearray()
        self._record(0, 10, self._pack("BB", cpu_type, 4))

    @property
    def offset(self) -> int:
        return len(self._data)

    def _pack(self, fmt: str, *values: object) -> bytes:
        return struct.pack(self._endian + fmt, *values)

    @staticmethod
    def _cn(text: str | bytes) -> bytes:
        encoded = text if isinstance(text, bytes) else text.encode("ascii")
        return bytes([len(encoded)]) + encoded

    def _record(self, typ: int, sub: int, body: bytes) -> None:
        self._data += self._pack("HBB", len(body), typ, sub) + body

    def raw(self, data: bytes) -> None:
        """Append bytes as they are (to build corrupt files)."""
        self._data += data

    def mir(
        self,
        lot_id: str = "LOT1",
        part_typ: str = "PMIC-A7",
        node_nam: str = "T-093",
        job_nam: str = "FT",
        job_rev: str = "3.2",
        start_t: int = 1_700_000_000,
    ) -> None:
        fixed = self._pack("IIB", start_t - 60, start_t, 1) + b"P  " + self._pack("H", 65535)
        names = (lot_id, part_typ, node_nam, "TST", job_nam, job_rev)
        self._record(1, 10, fixed + b" " + b"".join(self._cn(n) for n in names))

    def wir(self, wafer_id: str = "W01", head: int = 1, start_t: int = 1_700_000_100) -> None:
        self._record(2, 10, self._pack("BBI", head, 255, start_t) + self._cn(wafer_id))

    def pir(self, head: int = 1, site: int = 0) -> None:
        self._record(5, 10, self._pack("BB", head, site))

    def ptr(
        self,
        test_num: int,
        result: float,
        text: str | bytes = "",
        head: int = 1,
        site: int = 0,
        test_flg: int = 0,
    ) -> None:
        body = self._pack("IBBBBf", test_num, head, site, test_flg, 0, result)
        self._record(15, 10, body + self._cn(text) + self._cn(""))

    def prr(
        self,
        head: int = 1,
        site: int = 0,
        part_flg: int = 0,
        hard_bin: int = 1,
        soft_bin: int = 1,
        x: int = MISSING_COORD,
        y: int = MISSING_COORD,
        part_id: str = "",
        num_test: int = 0,
    ) -> None:
        body = self._pack("BBBHHHhhI", head, site, part_flg, num_test, hard_bin, soft_bin, x, y, 0)
        self._record(5, 20, body + self._cn(part_id) + self._cn("") + b"\x00")

    def part(
        self,
        results: dict[int, float],
        texts: dict[int, str] | None = None,
        **prr: int | str,
    ) -> None:
        """PIR, one PTR per result, PRR: one single-site part."""
        head, site = int(prr.get("head", 1)), int(prr.get("site", 0))
        self.pir(head, site)
        for test_num, value in results.items():
            self.ptr(test_num, value, (texts or {}).get(test_num, ""), head, site)
        self.prr(num_test=len(results), **prr)  # type: ignore[arg-type]

    def wrr(self, wafer_id: str = "W01", head: int = 1, parts: int = 0) -> None:
        counts = self._pack("BBIIIIII", head, 255, 1_700_000_900, parts, 0, 0, 0, 0)
        self._record(2, 20, counts + self._cn(wafer_id))

    def mrr(self) -> None:
        self._record(1, 20, self._pack("I", 1_700_001_000) + b" " + self._cn("") + self._cn(""))

    def to_bytes(self) -> bytes:
        return bytes(self._data)

    def write(self, path: Path) -> Path:
        """Write the stream to ``path``, gzipped when the name ends in ``.gz``."""
        data = self.to_bytes()
        path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
        return path
