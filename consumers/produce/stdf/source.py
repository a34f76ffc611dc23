"""Stream an STDF V4 file (plain or gzip) into DESIGN §2 parametric records, one per part.

A part is everything between a PIR and the PRR of the same (head, site): multi-site
testers interleave the records of several parts. The record carries the PTR results as
measurements, die X/Y, site and bins from the PRR, lot, product, tester and test program
from the MIR, and the wafer from the WIR. Only the open parts and one name per test
number are held in memory, so memory stays flat whatever the file size.

Every part that cannot become a record comes out as a :class:`Problem` with the file, the
part's index and byte offset (of the uncompressed stream), and the reason.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np

from consumers.produce.items import CountingFile, Item, Parsed, Problem
from consumers.produce.stdf.records import BadRecord, StdfReadError, StdfRecord, StdfRecordReader

LabelFrom = Literal["none", "pass_fail", "hard_bin", "soft_bin"]
LABEL_FROM: tuple[LabelFrom, ...] = ("none", "pass_fail", "hard_bin", "soft_bin")

#: PTR TEST_FLG bits meaning there is no usable RESULT: invalid, timeout, not run, aborted.
NO_RESULT_FLAGS = 0x02 | 0x08 | 0x10 | 0x20
PART_FAILED = 0x08  # PRR PART_FLG bit 3
NO_PASS_FAIL = 0x10  # PRR PART_FLG bit 4
MISSING_COORD = -32768
MISSING_BIN = 65535
#: After this many unknown records the stream has most likely lost its framing.
MAX_UNKNOWN_RECORDS = 10


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


def _result(fields: dict[str, Any]) -> float | None:
    value = fields.get("RESULT")
    if (fields.get("TEST_FLG") or 0) & NO_RESULT_FLAGS or value is None:
        return None
    # RESULT is a 4-byte float: print it with float32's shortest digits, not float64 noise.
    return float(str(np.float32(value))) if math.isfinite(value) else None


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
    damaged: str = ""


@dataclass
class _Context:
    """What the MIR and WIRs say about every part that follows."""

    lot_id: str = ""
    product: str = ""
    tester_id: str = ""
    test_program: str = ""
    start_t: int = 0
    wafers: dict[int, tuple[str, int]] = field(default_factory=dict)

    def read_mir(self, mir: dict[str, Any]) -> None:
        self.lot_id, self.product = _text(mir.get("LOT_ID")), _text(mir.get("PART_TYP"))
        station = f"{_text(mir.get('TSTR_TYP'))}-{mir.get('STAT_NUM')}"
        self.tester_id = _text(mir.get("NODE_NAM")) or station
        job, rev = _text(mir.get("JOB_NAM")), _text(mir.get("JOB_REV"))
        self.test_program = f"{job}_v{rev}" if rev else job
        self.start_t = mir.get("START_T") or mir.get("SETUP_T") or 0

    def wafer(self, head: int) -> tuple[str, int]:
        # Some testers write the WIR for head 255 (all heads): fall back to the latest.
        return self.wafers.get(head) or next(reversed(self.wafers.values()), ("", 0))


class _TestNames:
    """TEST_TXT is often written only on a test number's first PTR: remember it."""

    def __init__(self) -> None:
        self._by_number: dict[int, tuple[str, str]] = {}

    def name(self, test_num: int, test_text: Any) -> str:
        text = _text(test_text)
        known = self._by_number.get(test_num)
        if known is not None and (not text or text == known[0]):
            return known[1]
        self._by_number[test_num] = (text, measurement_name(text, test_num))
        return self._by_number[test_num][1]


class StdfSource:
    """Iterate one STDF file as :class:`Parsed` records and :class:`Problem` reports.

    ``parts_read`` counts the PIRs seen; ``raw_bytes_read`` the on-disk bytes consumed.
    ``product`` names the product when the MIR's PART_TYP is empty; ``fallback_ts``
    (seconds, default the file's mtime) stamps parts when the file gives no start time.
    ``content_sha256`` is the file's hash when the caller has it (else computed if an id
    needs it); ``follow_symlinks=False`` refuses to open a symbolic link.

    Record ids: ``LOT-WAFER-P<PART_ID>-<index>``, or ``…-X<x>-Y<y>-S<site>-<index>`` when
    the PRR has no PART_ID; ``index`` is the part's place in the file. All of it comes
    from the file's content; when the MIR has no LOT_ID, a prefix of the file's SHA-256
    stands in for the lot, so a renamed or copied file keeps its ids.
    """

    def __init__(
        self,
        path: Path,
        label_from: LabelFrom = "none",
        product: str | None = None,
        fallback_ts: float | None = None,
        *,
        content_sha256: str | None = None,
        follow_symlinks: bool = True,
    ) -> None:
        self.path, self.label_from, self.parts_read = path, label_from, 0
        self._product = product
        self._fallback_ts = path.stat().st_mtime if fallback_ts is None else fallback_ts
        self._follow_symlinks = follow_symlinks
        self._sha256 = content_sha256
        self._file: CountingFile | None = None
        self._context, self._names = _Context(), _TestNames()
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
            reader = StdfRecordReader(self._file.stream)
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
        if bad.name in ("PIR", "PTR", "PRR"):
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

    def _on_ptr(self, ptr: dict[str, Any], offset: int) -> Iterator[Item]:
        site = (ptr.get("HEAD_NUM") or 0, ptr.get("SITE_NUM") or 0)
        name = self._names.name(ptr.get("TEST_NUM") or 0, ptr.get("TEST_TXT"))
        if (part := self._open.get(site)) is not None:
            part.measurements[name] = _result(ptr)
            return
        reason = f"PTR {name} of head {site[0]} site {site[1]} outside any part; skipped"
        yield self._problem(f"byte {offset}{self._gz}", "result outside a part", reason)

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

    def _record_id(self, part: _Part, prr: dict[str, Any], wafer_id: str) -> str:
        part_id = _id_part(_text(prr.get("PART_ID")))
        die = f"X{prr.get('X_COORD')}-Y{prr.get('Y_COORD')}-S{prr.get('SITE_NUM')}"
        # Not the file name: a renamed or copied file must give the same ids.
        lot = _id_part(self._context.lot_id) or self._content_tag()
        pieces = (lot, _id_part(wafer_id), f"P{part_id}" if part_id else die)
        # The part's index in the file keeps ids unique (PART_ID may repeat) and stable.
        return "-".join(p for p in pieces if p) + f"-{part.index:05d}"

    def _record(self, part: _Part, prr: dict[str, Any]) -> dict[str, Any]:
        context = self._context
        wafer_id, wafer_start = context.wafer(prr.get("HEAD_NUM") or 0)
        hard, soft = prr.get("HARD_BIN"), prr.get("SOFT_BIN")
        return {
            "schema_version": 1,
            "kind": "parametric",
            "record_id": self._record_id(part, prr, wafer_id),
            "ts": _iso(wafer_start or context.start_t or self._fallback_ts),
            "product": context.product or self._product,
            "test_program": context.test_program or None,
            "tester_id": context.tester_id or None,
            "site": prr.get("SITE_NUM"),
            "lot_id": context.lot_id or None,
            "wafer_id": wafer_id or None,
            "die_x": _coord(prr.get("X_COORD")),
            "die_y": _coord(prr.get("Y_COORD")),
            "measurements": part.measurements,
            "label": _label(prr, self.label_from),
            "hard_bin": None if hard == MISSING_BIN else hard,
            "soft_bin": None if soft == MISSING_BIN else soft,
            "part_id": _text(prr.get("PART_ID")) or None,
        }
