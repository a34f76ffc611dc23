"""Stream an STDF V4 file (plain or gzip) into DESIGN §2 parametric records, one per part.

A part is everything between a PIR and the PRR of the same (head, site): multi-site
testers interleave the records of several parts. The record carries the PTR results as
measurements, MPR results (per pin, or min/max/mean per test) and FTR verdicts (1.0
pass, 0.0 fail) too, each test's limits and units, the tests it failed, die X/Y, site
and bins from the PRR, lot, product, tester and test program from the MIR, and the wafer
from the WIR. Only the open parts and one name and one set of limits per test number are
held in memory, so memory stays flat whatever the file size.

Empty (or blank) MIR and WIR strings mean "absent". The product is the MIR's PART_TYP;
without one, ``--product``, else the stem of the MIR's JOB_NAM (the test program, e.g.
``XYZ_WS_2_0_25C.tpg``), else the file name's stem, with one warning per file saying
which was used.

Every part that cannot become a record comes out as a :class:`Problem` with the file, the
part's index and byte offset (of the uncompressed stream), and the reason.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np

from consumers.produce.items import CountingFile, Item, Parsed, Problem
from consumers.produce.stdf.records import BadRecord, StdfReadError, StdfRecord, StdfRecordReader
from consumers.produce.stdf.retests import SeenParts
from stream_al.records import MAX_ABS_VALUE, MAX_FAILED_TESTS

LabelFrom = Literal["none", "pass_fail", "hard_bin", "soft_bin"]
LABEL_FROM: tuple[LabelFrom, ...] = ("none", "pass_fail", "hard_bin", "soft_bin")
MprMode = Literal["none", "pins", "summary"]
MPR_MODES: tuple[MprMode, ...] = ("none", "pins", "summary")
FtrMode = Literal["none", "pass_fail"]
FTR_MODES: tuple[FtrMode, ...] = ("none", "pass_fail")
#: What ``--mpr summary`` makes of one MPR's pin results.
MPR_SUMMARY = ("min", "max", "mean")

#: TEST_FLG bits (PTR, MPR, FTR) meaning there is no usable result: invalid, timeout,
#: not executed, aborted.
NO_RESULT_FLAGS = 0x02 | 0x08 | 0x10 | 0x20
#: TEST_FLG bits meaning there is no pass/fail verdict: bit 6 says so, bit 4 "not run".
NO_VERDICT_FLAGS = 0x40 | 0x10
TEST_FAILED = 0x80  # TEST_FLG bit 7
#: OPT_FLAG bits (PTR, MPR) saying the low (high) limit is not in this record (4, 5) or
#: the test has none (6, 7).
NO_LO_LIMIT = 0x10 | 0x40
NO_HI_LIMIT = 0x20 | 0x80
PART_RETESTED = 0x01 | 0x02  # PRR PART_FLG bits 0, 1: supersedes an earlier PART_ID / X,Y
PART_FAILED = 0x08  # PRR PART_FLG bit 3
NO_PASS_FAIL = 0x10  # PRR PART_FLG bit 4
#: MIR RTST_COD: "Y" (a retest) or how many times the lot was tested before.
RETESTED_LOT = frozenset("Y123456789")
MISSING_COORD = -32768
MISSING_BIN = 65535
#: After this many unknown records the stream has most likely lost its framing.
MAX_UNKNOWN_RECORDS = 10
#: Longest product name (the record's limit) and unit or pin name kept.
MAX_NAME = 256
MAX_UNITS = 64
#: Hex digits of the file's SHA-256 that a retest's record id ends with.
RETEST_TAG_DIGITS = 8
STDF_SUFFIXES = (".stdf", ".std")


def measurement_name(test_text: str, test_num: int) -> str:
    """A measurement name: a slug of TEST_TXT made unique with the test number.

    >>> measurement_name("IDD1 @ 1.25MHz <> curr", 220)
    'idd1_1_25mhz_curr_t220'
    >>> measurement_name("", 7)
    't7'
    """
    slug = re.sub(r"[^a-z0-9]+", "_", test_text.lower()).strip("_")
    return f"{slug}_t{test_num}" if slug else f"t{test_num}"


def _id_part(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._]+", "_", text).strip("_")


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _real(value: float | None) -> float | None:
    """A 4-byte float as float32's shortest digits (not float64 noise); None if not finite.

    A result too large to be a reading is kept, and the codec refuses its record by name.
    """
    if value is None or not math.isfinite(value):
        return None
    return float(str(np.float32(value)))


def _limit(value: float | None) -> float | None:
    # Some testers write a huge number (1e30) for "no limit": no limit it is.
    real = _real(value)
    return real if real is not None and abs(real) <= MAX_ABS_VALUE else None


def _result(fields: dict[str, Any]) -> float | None:
    if (fields.get("TEST_FLG") or 0) & NO_RESULT_FLAGS:
        return None
    return _real(fields.get("RESULT"))


def _stem(name: str) -> str:
    """A program or file name without its folder and extension.

    >>> _stem("progs/XYZ_WS_2_0_25C.tpg"), _stem("lot7.stdf.gz"), _stem("mobile-05")
    ('XYZ_WS_2_0_25C', 'lot7', 'mobile-05')
    """
    base = re.split(r"[/\\]", name.strip())[-1]  # a Windows path, too
    base = base[:-3] if base.lower().endswith(".gz") else base
    for suffix in STDF_SUFFIXES:
        if base.lower().endswith(suffix):
            return base[: -len(suffix)]
    head, dot, _ = base.rpartition(".")
    return head if dot and head else base


def choose_product(
    part_typ: str, given: str | None, job_nam: str, path: Path
) -> tuple[str | None, str]:
    """The product, in the documented order, and a warning saying why when not PART_TYP.

    >>> choose_product("", None, "XYZ_WS_2_0_25C.tpg", Path("w.stdf"))[0]
    'XYZ_WS_2_0_25C'
    """
    if part_typ:
        return part_typ, ""
    if given:
        return given, f"the MIR has no PART_TYP: product {given!r} from --product"
    fix = "pass --product to name it"
    if job := _stem(job_nam)[:MAX_NAME]:
        return job, f"the MIR has no PART_TYP: product {job!r} from JOB_NAM {job_nam!r} ({fix})"
    name = _stem(path.name)[:MAX_NAME]
    reason = f"the MIR has no PART_TYP nor JOB_NAM: product {name!r} from the file name ({fix})"
    return name or None, reason


def _label(prr: dict[str, Any], label_from: LabelFrom) -> str | None:
    if label_from == "pass_fail":
        flags = prr.get("PART_FLG") or 0
        return None if flags & NO_PASS_FAIL else ("fail" if flags & PART_FAILED else "pass")
    if label_from in ("hard_bin", "soft_bin"):
        number = prr.get("HARD_BIN" if label_from == "hard_bin" else "SOFT_BIN")
        return None if number in (None, MISSING_BIN) else str(number)
    return None


def _coord(value: Any) -> int | None:
    return None if value in (None, MISSING_COORD) else int(value)


@dataclass
class _Part:
    index: int
    offset: int
    measurements: dict[str, float | None] = field(default_factory=dict)
    limits: dict[str, dict[str, Any]] = field(default_factory=dict)
    failed: dict[str, None] = field(default_factory=dict)  # ordered, once per test
    verdicts: int = 0  # tests that gave a pass/fail verdict
    parametric: bool = False  # a PTR or MPR gave a value
    damaged: str = ""

    def measure(self, name: str, value: float | None, limits: dict[str, Any] | None) -> None:
        self.measurements[name] = value
        if limits is not None:
            self.limits[name] = limits

    def verdict(self, test: str, flags: int) -> None:
        if not flags & NO_VERDICT_FLAGS:
            self.verdicts += 1
            if flags & TEST_FAILED and len(self.failed) < MAX_FAILED_TESTS:
                self.failed[test] = None


@dataclass
class _Context:
    """What the MIR and WIRs say about every part that follows."""

    lot_id: str = ""
    sublot_id: str = ""
    product: str = ""
    job_nam: str = ""
    tester_id: str = ""
    test_program: str = ""
    lot_retested: bool = False
    start_t: int = 0
    wafers: dict[int, tuple[str, int]] = field(default_factory=dict)

    def read_mir(self, mir: dict[str, Any]) -> None:
        self.lot_id, self.product = _text(mir.get("LOT_ID")), _text(mir.get("PART_TYP"))
        self.sublot_id = _text(mir.get("SBLOT_ID"))
        tester_type = _text(mir.get("TSTR_TYP"))
        station = f"{tester_type}-{mir.get('STAT_NUM')}" if tester_type else ""
        self.tester_id = _text(mir.get("NODE_NAM")) or station
        self.job_nam, rev = _text(mir.get("JOB_NAM")), _text(mir.get("JOB_REV"))
        job = self.job_nam
        self.test_program = f"{job}_v{rev}" if job and rev else job
        self.lot_retested = _text(mir.get("RTST_COD")).upper() in RETESTED_LOT
        self.start_t = mir.get("START_T") or mir.get("SETUP_T") or 0

    def wafer(self, head: int) -> tuple[str, int]:
        # Some testers write the WIR for head 255 (all heads): fall back to the latest.
        return self.wafers.get(head) or next(reversed(self.wafers.values()), ("", 0))


class _TestNames:
    """TEST_TXT is often written only on a test number's first PTR: remember it.

    One per record type (PTR, MPR, FTR): each remembers its own first records.
    """

    def __init__(self) -> None:
        self._by_number: dict[int, tuple[str, str]] = {}

    def name(self, test_num: int, test_text: Any) -> str:
        text = _text(test_text)
        known = self._by_number.get(test_num)
        if known is not None and (not text or text == known[0]):
            return known[1]
        self._by_number[test_num] = (text, measurement_name(text, test_num))
        return self._by_number[test_num][1]


class _Limits:
    """Each test's limits and units, from its first PTR (or MPR) that has OPT_FLAG.

    Later records of a test usually leave them out (STDF: they default to the first
    record's); OPT_FLAG bits say which of the first record's limits are valid.
    """

    def __init__(self) -> None:
        self._by_test: dict[tuple[str, int], dict[str, Any] | None] = {}

    def wanted(self, kind: str, test_num: int) -> bool:
        return (kind, test_num) not in self._by_test

    def of(self, kind: str, test_num: int, fields: dict[str, Any]) -> dict[str, Any] | None:
        """The test's limits, learning them from ``fields`` when they are the first."""
        key = (kind, test_num)
        if key in self._by_test:
            return self._by_test[key]
        flags = fields.get("OPT_FLAG")
        if flags is None:  # the record stops before its limits: a later one may have them
            return None
        lo = None if flags & NO_LO_LIMIT else _limit(fields.get("LO_LIMIT"))
        hi = None if flags & NO_HI_LIMIT else _limit(fields.get("HI_LIMIT"))
        units = _text(fields.get("UNITS"))[:MAX_UNITS] or None
        limits = None if lo is None and hi is None and units is None else {
            "lo": lo, "hi": hi, "units": units}
        self._by_test[key] = limits
        return limits


class _Pins:
    """Pin names from the PMRs, and each MPR test's pin list (given on its first MPR)."""

    def __init__(self) -> None:
        self._names: dict[int, str] = {}
        self._first: dict[int, list[int]] = {}

    def read_pmr(self, pmr: dict[str, Any]) -> None:
        names = (_text(pmr.get(f)) for f in ("LOG_NAM", "PHY_NAM", "CHAN_NAM"))
        if (index := pmr.get("PMR_INDX")) is not None and (name := next(filter(None, names), "")):
            self._names[index] = re.sub(r"\s+", "_", name)[:MAX_UNITS]

    def of(self, test_num: int, mpr: dict[str, Any], results: int) -> list[str]:
        """One name per result: the PMR's, else its PMR index, else its position."""
        indexes = list(mpr.get("RTN_INDX") or [])
        if indexes:
            self._first.setdefault(test_num, indexes)
        else:  # later MPRs of a test may leave the list out: it is the first one's
            indexes = self._first.get(test_num, [])
        return [self._names.get(indexes[i]) or str(indexes[i]) if i < len(indexes) else str(i)
                for i in range(results)]


class StdfSource:
    """Iterate one STDF file as :class:`Parsed` records and :class:`Problem` reports.

    ``parts_read`` counts the PIRs seen; ``raw_bytes_read`` the on-disk bytes consumed.
    ``product`` names the product when the MIR's PART_TYP is empty (:func:`choose_product`);
    ``warn`` is told, once, which product was used then (``warnings`` keeps it too).
    ``mpr`` and ``ftr`` choose what MPRs and FTRs become (:data:`MPR_MODES`,
    :data:`FTR_MODES`). ``fallback_ts`` (seconds, default the file's mtime) stamps parts
    when the file gives no start time. ``content_sha256`` is the file's hash when the
    caller has it (else computed if an id needs it); ``follow_symlinks=False`` refuses to
    open a symbolic link. ``seen`` remembers the parts of the other files of this run, so
    a part one of them held is a retest.

    Record ids: ``LOT-WAFER-P<PART_ID>-<index>``, or ``…-X<x>-Y<y>-S<site>-<index>`` when
    the PRR has no PART_ID; ``index`` is the part's place in the file. All of it comes
    from the file's content; when the MIR has no LOT_ID, a prefix of the file's SHA-256
    stands in for the lot, so a renamed or copied file keeps its ids. A retest (the MIR's
    RTST_COD or the PRR's PART_FLG says so, or another file of the run held the part)
    gets ``-R<first 8 hex digits of the file's SHA-256>``: each insertion its own id.
    """

    def __init__(
        self,
        path: Path,
        label_from: LabelFrom = "none",
        product: str | None = None,
        fallback_ts: float | None = None,
        *,
        mpr: MprMode = "summary",
        ftr: FtrMode = "pass_fail",
        warn: Callable[[str], None] | None = None,
        seen: SeenParts | None = None,
        content_sha256: str | None = None,
        follow_symlinks: bool = True,
    ) -> None:
        self.path, self.label_from, self.parts_read = path, label_from, 0
        self.mpr, self.ftr, self.warnings = mpr, ftr, list[str]()
        self._product, self._chosen_product = product, ""
        self._warn, self._seen = warn, seen
        self._fallback_ts = path.stat().st_mtime if fallback_ts is None else fallback_ts
        self._follow_symlinks = follow_symlinks
        self._sha256 = content_sha256
        self._file: CountingFile | None = None
        self._context = _Context()
        self._ptr_names, self._mpr_names, self._ftr_names = _TestNames(), _TestNames(), _TestNames()
        self._limits, self._pins = _Limits(), _Pins()
        self._open: dict[tuple[int, int], _Part] = {}
        self._unknown = 0
        self._gz = ""

    @property
    def raw_bytes_read(self) -> int:
        return self._file.raw_bytes_read if self._file else 0

    def _content_tag(self) -> str:
        assert self._file is not None, "ids are only made while the file is read"
        return self._file.content_tag()

    def __iter__(self) -> Iterator[Item]:
        with CountingFile(
            self.path, follow_symlinks=self._follow_symlinks, sha256=self._sha256
        ) as self._file:
            self._gz = " (uncompressed)" if self._file.compressed else ""
            reader = StdfRecordReader(
                self._file.stream, lambda test_num: self._limits.wanted("PTR", test_num)
            )
            try:
                for record in reader:
                    yield from self._on_record(record)
            except StdfReadError as error:
                yield self._problem(f"byte {error.offset}{self._gz}", error.kind, error.reason)
            yield from self._unfinished_parts()

    def _problem(self, position: str, kind: str, reason: str) -> Problem:
        return Problem(str(self.path), position, kind, reason)

    def _where(self, part: _Part) -> str:
        return f"part {part.index} at byte {part.offset}{self._gz}"

    def _on_record(self, record: StdfRecord | BadRecord) -> Iterator[Item]:
        if isinstance(record, BadRecord):
            yield from self._on_bad_record(record)
            return
        handler = getattr(self, f"_on_{record.name.lower()}")
        yield from handler(record.fields, record.offset)

    def _on_bad_record(self, bad: BadRecord) -> Iterator[Problem]:
        where = f"byte {bad.offset}{self._gz}"
        if bad.name.startswith("type"):
            yield self._problem(where, "unknown record", f"{bad.reason}; skipped")
            self._unknown += 1
            if self._unknown >= MAX_UNKNOWN_RECORDS:
                reason = f"{self._unknown} records of no STDF type: the file is corrupt"
                raise StdfReadError(bad.offset, "corrupt", reason)
            return
        if bad.name in ("PIR", "PTR", "MPR", "FTR", "PRR"):
            # Which site it belonged to is unreadable: every open part may be affected.
            for part in self._open.values():
                part.damaged = f"its {bad.name} at {where} is unreadable: {bad.reason}"
        yield self._problem(where, "undecodable record", f"{bad.name}: {bad.reason}; skipped")

    def _on_far(self, far: dict[str, Any], offset: int) -> Iterator[Item]:
        if far.get("STDF_VER") != 4:
            reason = f"STDF version {far.get('STDF_VER')} is not supported (only V4)"
            raise StdfReadError(offset, "not stdf", reason)
        yield from ()

    def _on_mir(self, mir: dict[str, Any], offset: int) -> Iterator[Item]:
        self._context.read_mir(mir)
        yield from ()

    def _on_pmr(self, pmr: dict[str, Any], offset: int) -> Iterator[Item]:
        self._pins.read_pmr(pmr)
        yield from ()

    def _on_wir(self, wir: dict[str, Any], offset: int) -> Iterator[Item]:
        wafer = (_text(wir.get("WAFER_ID")), wir.get("START_T") or 0)
        self._context.wafers[wir.get("HEAD_NUM") or 0] = wafer
        yield from ()

    def _on_pir(self, pir: dict[str, Any], offset: int) -> Iterator[Item]:
        site = (pir.get("HEAD_NUM") or 0, pir.get("SITE_NUM") or 0)
        if (left := self._open.pop(site, None)) is not None:
            reason = f"no PRR before the next PIR of head {site[0]} site {site[1]}"
            yield self._problem(self._where(left), "part without PRR", reason)
        self.parts_read += 1
        self._open[site] = _Part(self.parts_read, offset)

    def _outside(self, kind: str, fields: dict[str, Any], name: str, offset: int) -> Problem:
        head, site = fields.get("HEAD_NUM") or 0, fields.get("SITE_NUM") or 0
        reason = f"{kind} {name} of head {head} site {site} outside any part; skipped"
        return self._problem(f"byte {offset}{self._gz}", "result outside a part", reason)

    def _part_of(self, fields: dict[str, Any]) -> _Part | None:
        return self._open.get((fields.get("HEAD_NUM") or 0, fields.get("SITE_NUM") or 0))

    def _on_ptr(self, ptr: dict[str, Any], offset: int) -> Iterator[Item]:
        # The commonest record by far (50,000 in a small lot): kept to the plain steps.
        test_num = ptr.get("TEST_NUM") or 0
        name = self._ptr_names.name(test_num, ptr.get("TEST_TXT"))
        limits = self._limits.of("PTR", test_num, ptr)
        part = self._open.get((ptr.get("HEAD_NUM") or 0, ptr.get("SITE_NUM") or 0))
        if part is None:
            yield self._outside("PTR", ptr, name, offset)
            return
        part.measurements[name] = value = _result(ptr)
        if limits is not None:
            part.limits[name] = limits
        if value is not None:
            part.parametric = True
        part.verdict(name, ptr.get("TEST_FLG") or 0)

    def _on_mpr(self, mpr: dict[str, Any], offset: int) -> Iterator[Item]:
        test_num, flags = mpr.get("TEST_NUM") or 0, mpr.get("TEST_FLG") or 0
        test = self._mpr_names.name(test_num, mpr.get("TEST_TXT"))
        limits = self._limits.of("MPR", test_num, mpr)
        if (part := self._part_of(mpr)) is None:
            yield self._outside("MPR", mpr, test, offset)
            return
        part.verdict(test, flags)
        results = mpr.get("RTN_RSLT") or []
        if self.mpr == "none" or not results:
            return
        values = [None if flags & NO_RESULT_FLAGS else _real(v) for v in results]
        present = [v for v in values if v is not None]
        part.parametric |= bool(present)
        if self.mpr == "pins":
            for pin, value in zip(self._pins.of(test_num, mpr, len(values)), values, strict=True):
                part.measure(f"{test}@{pin}", value, limits)
            return
        stats = (min(present), max(present), _real(sum(present) / len(present))) if present \
            else (None, None, None)
        for stat, value in zip(MPR_SUMMARY, stats, strict=True):
            part.measure(f"{test}@{stat}", value, limits)

    def _on_ftr(self, ftr: dict[str, Any], offset: int) -> Iterator[Item]:
        test_num, flags = ftr.get("TEST_NUM") or 0, ftr.get("TEST_FLG") or 0
        name = self._ftr_names.name(test_num, ftr.get("TEST_TXT"))
        if (part := self._part_of(ftr)) is None:
            yield self._outside("FTR", ftr, name, offset)
            return
        part.verdict(name, flags)
        if self.ftr == "pass_fail":
            verdict = None if flags & NO_VERDICT_FLAGS else 0.0 if flags & TEST_FAILED else 1.0
            part.measure(name, verdict, None)

    def _on_prr(self, prr: dict[str, Any], offset: int) -> Iterator[Item]:
        site = (prr.get("HEAD_NUM") or 0, prr.get("SITE_NUM") or 0)
        part = self._open.pop(site, None)
        if part is None:
            reason = f"PRR of head {site[0]} site {site[1]} without a PIR; skipped"
            yield self._problem(f"byte {offset}{self._gz}", "part without PIR", reason)
        elif part.damaged:
            yield self._problem(self._where(part), "undecodable record", part.damaged)
        else:
            yield Parsed(self._record(part, prr), str(self.path), self._where(part))

    def _unfinished_parts(self) -> Iterator[Problem]:
        for (head, site), part in sorted(self._open.items(), key=lambda kv: kv[1].index):
            reason = f"head {head} site {site} has no PRR: the file ends before the part does"
            yield self._problem(self._where(part), "truncated", reason)
        self._open.clear()

    def _product_name(self) -> str | None:
        """Chosen at the first part (the MIR comes before it), with its one warning."""
        if not self._chosen_product:
            context = self._context
            product, warning = choose_product(
                context.product, self._product, context.job_nam, self.path
            )
            self._chosen_product = product or ""
            if warning:
                self.warnings.append(warning)
                if self._warn is not None:
                    self._warn(warning)
        return self._chosen_product or None

    def _part_key(self, prr: dict[str, Any], wafer_id: str) -> Hashable | None:
        """What makes two parts of one lot the same device: the die, else the PART_ID."""
        context = self._context
        if not context.lot_id:
            return None  # the ids carry the file's own hash: they cannot collide
        x, y = _coord(prr.get("X_COORD")), _coord(prr.get("Y_COORD"))
        if x is not None and y is not None:
            return (context.lot_id, context.sublot_id, wafer_id, "die", x, y)
        part_id = _text(prr.get("PART_ID"))
        return (context.lot_id, context.sublot_id, wafer_id, "id", part_id) if part_id else None

    def _is_retest(self, prr: dict[str, Any], wafer_id: str) -> bool:
        key = self._part_key(prr, wafer_id)
        elsewhere = (
            self._seen is not None
            and key is not None
            and self._seen.in_another_file(key, self._content_tag())
        )
        flagged = bool((prr.get("PART_FLG") or 0) & PART_RETESTED)
        return elsewhere or flagged or self._context.lot_retested

    def _record_id(self, part: _Part, prr: dict[str, Any], wafer_id: str, retest: bool) -> str:
        part_id = _id_part(_text(prr.get("PART_ID")))
        die = f"X{prr.get('X_COORD')}-Y{prr.get('Y_COORD')}-S{prr.get('SITE_NUM')}"
        # Not the file name: a renamed or copied file must give the same ids.
        lot = _id_part(self._context.lot_id) or self._content_tag()
        pieces = (lot, _id_part(wafer_id), f"P{part_id}" if part_id else die)
        # The part's index in the file keeps ids unique (PART_ID may repeat) and stable.
        record_id = "-".join(p for p in pieces if p) + f"-{part.index:05d}"
        # The insertion, by its file's content: the first insertion's id never changes.
        return f"{record_id}-R{self._content_tag()[:RETEST_TAG_DIGITS]}" if retest else record_id

    def _record(self, part: _Part, prr: dict[str, Any]) -> dict[str, Any]:
        context = self._context
        wafer_id, wafer_start = context.wafer(prr.get("HEAD_NUM") or 0)
        hard, soft = prr.get("HARD_BIN"), prr.get("SOFT_BIN")
        retest = self._is_retest(prr, wafer_id)
        return {
            "schema_version": 1,
            "kind": "parametric",
            "record_id": self._record_id(part, prr, wafer_id, retest),
            "ts": _iso(wafer_start or context.start_t or self._fallback_ts),
            "product": self._product_name(),
            "test_program": context.test_program or None,
            "tester_id": context.tester_id or None,
            "site": prr.get("SITE_NUM"),
            "lot_id": context.lot_id or None,
            "wafer_id": wafer_id or None,
            "die_x": _coord(prr.get("X_COORD")),
            "die_y": _coord(prr.get("Y_COORD")),
            "measurements": part.measurements,
            "limits": part.limits or None,
            "label": _label(prr, self.label_from),
            "hard_bin": None if hard == MISSING_BIN else hard,
            "soft_bin": None if soft == MISSING_BIN else soft,
            "failed_tests": list(part.failed) if part.verdicts else None,
            "no_parametric": not part.parametric,
            "retest": retest,
            "part_id": _text(prr.get("PART_ID")) or None,
        }
