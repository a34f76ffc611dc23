"""A minimal STDF V4 writer, used only by the tests, so they write their own files.

It writes the handful of records a wafer-sort or final-test file needs (FAR, MIR, PMR,
WIR, PIR, PTR, MPR, FTR, PRR, WRR, MRR), each with a 4-byte header (REC_LEN, REC_TYP,
REC_SUB) and its fields packed with ``struct``. Trailing optional fields are left out,
which STDF allows: a PTR or MPR without ``limits`` stops before OPT_FLAG, as testers
write every PTR of a test but the first. ``offset`` tells a test where the next record
will start, so it can assert positions.
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
#: TEST_FLG bit 6: no pass/fail indication; bit 7: the test failed.
NO_PASS_FAIL = 0x40
TEST_FAILED = 0x80
#: OPT_FLAG as real testers write it (bits 1-3: reserved, no low/high spec limit), and
#: the bits saying a limit is not in this record (4, 5) or the test has none (6, 7).
OPT_FLAG_LIMITS = 0x0E
LO_NOT_HERE, HI_NOT_HERE, NO_LO_LIMIT, NO_HI_LIMIT = 0x10, 0x20, 0x40, 0x80
#: PRR PART_FLG bit 1: this part supersedes an earlier one with the same X/Y.
RETEST_OF_DIE = 0x02

#: (LO_LIMIT, HI_LIMIT, UNITS); None: the test has no such limit.
Limits = tuple[float | None, float | None, str]


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
        *,
        tstr_typ: str = "TST",
        rtst_cod: str = " ",
        sblot_id: str | None = None,
    ) -> None:
        codes = b"P" + rtst_cod.encode("ascii") + b" "  # MODE_COD, RTST_COD, PROT_COD
        fixed = self._pack("IIB", start_t - 60, start_t, 1) + codes + self._pack("H", 65535)
        names = [lot_id, part_typ, node_nam, tstr_typ, job_nam, job_rev]
        names += [sblot_id] if sblot_id is not None else []
        self._record(1, 10, fixed + b" " + b"".join(self._cn(n) for n in names))

    def pmr(
        self, index: int, log_nam: str = "", phy_nam: str = "", chan_nam: str = "",
        head: int = 1, site: int = 0,
    ) -> None:
        names = self._cn(chan_nam) + self._cn(phy_nam) + self._cn(log_nam)
        self._record(1, 60, self._pack("HH", index, 0) + names + self._pack("BB", head, site))

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
        limits: Limits | None = None,
        opt_flag: int | None = None,
    ) -> None:
        """``limits`` (or ``opt_flag`` alone) writes OPT_FLAG, the limits and UNITS."""
        body = self._pack("IBBBBf", test_num, head, site, test_flg, 0, result)
        body += self._cn(text) + self._cn("")
        if limits is not None or opt_flag is not None:
            lo, hi, units = limits or (None, None, "")
            flags = self._opt_flag(lo, hi) if opt_flag is None else opt_flag
            body += self._pack("Bbbbff", flags, 0, 0, 0, lo or 0.0, hi or 0.0) + self._cn(units)
        self._record(15, 10, body)

    @staticmethod
    def _opt_flag(lo: float | None, hi: float | None) -> int:
        return OPT_FLAG_LIMITS | (NO_LO_LIMIT if lo is None else 0) | (
            NO_HI_LIMIT if hi is None else 0)

    def mpr(
        self,
        test_num: int,
        results: list[float],
        text: str = "",
        head: int = 1,
        site: int = 0,
        test_flg: int = 0,
        pins: list[int] | None = None,
        limits: Limits | None = None,
    ) -> None:
        """One result per pin; ``pins`` (PMR indexes) and ``limits`` as a first MPR
        writes them, left out as later ones do (OPT_FLAG then says "not here")."""
        indexes = pins or []
        body = self._pack("IBBBBHH", test_num, head, site, test_flg, 0, len(indexes), len(results))
        body += bytes((len(indexes) + 1) // 2)  # RTN_STAT: one nibble per pin
        body += self._pack(f"{len(results)}f", *results) + self._cn(text) + self._cn("")
        if limits is not None or indexes:
            lo, hi, units = limits or (None, None, "")
            not_here = OPT_FLAG_LIMITS | LO_NOT_HERE | HI_NOT_HERE
            flags = self._opt_flag(lo, hi) if limits else not_here
            body += self._pack("Bbbbffff", flags, 0, 0, 0, lo or 0.0, hi or 0.0, 0.0, 0.0)
            body += self._pack(f"{len(indexes)}H", *indexes) + self._cn(units)
        self._record(15, 15, body)

    def ftr(
        self, test_num: int, text: str = "", head: int = 1, site: int = 0, test_flg: int = 0
    ) -> None:
        body = self._pack("IBBBB", test_num, head, site, test_flg, 0xFF)
        body += self._pack("IIIIiihHH", 0, 0, 0, 0, 0, 0, 0, 0, 0)  # cycles … PGM_ICNT
        body += self._pack("H", 0)  # FAIL_PIN: no bits
        body += self._cn("") + self._cn("") + self._cn("") + self._cn(text)  # … TEST_TXT
        self._record(15, 20, body)

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
