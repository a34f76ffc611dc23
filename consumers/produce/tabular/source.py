"""CSV and JSONL files into DESIGN §2 parametric or transaction records, by a column mapping.

The mapping names the columns that hold the id, time, product and label; measurements
(or a transaction's numeric fields) default to every numeric column not otherwise mapped,
judged on the first rows. A mapped column the file does not have is an error before any
row is read (:class:`MappingError`); a row whose values do not fit is a :class:`Problem`
naming the file, the line and the column, and is not turned into a record.
"""

from __future__ import annotations

import csv
import fnmatch
import itertools
import json
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, Literal

from consumers.produce.items import CountingFile, Item, Parsed, Problem
from consumers.produce.tabular.values import (
    BadValue,
    to_int,
    to_iso_ts,
    to_label,
    to_number,
    to_text,
)

TabularFormat = Literal["csv", "jsonl"]
RecordKind = Literal["parametric", "transaction"]
#: Parametric fields a column may fill besides id, ts, product and label.
FIELD_TYPES = {
    "test_program": to_text,
    "tester_id": to_text,
    "lot_id": to_text,
    "wafer_id": to_text,
    "site": to_int,
    "die_x": to_int,
    "die_y": to_int,
}
#: Rows read ahead to decide which columns are numeric (memory stays bounded).
SAMPLE_ROWS = 200

Row = tuple[int, dict[str, Any]]


class MappingError(Exception):
    """The column mapping does not fit the file: the message names column and file."""


@dataclass(frozen=True)
class ColumnMapping:
    """Which columns fill which record fields (the ``stream-al produce`` options)."""

    kind: RecordKind = "parametric"
    id_column: str | None = None
    ts_column: str | None = None
    product_column: str | None = None
    product: str | None = None
    label_column: str | None = None
    measurement_columns: tuple[str, ...] = ()
    categorical_columns: tuple[str, ...] = ()
    fields: dict[str, str] = field(default_factory=dict)

    def named_columns(self) -> dict[str, str]:
        """Option name → column, for every single column the mapping names."""
        single = {
            "--id-column": self.id_column,
            "--ts-column": self.ts_column,
            "--product-column": self.product_column,
            "--label-column": self.label_column,
        }
        named = {k: v for k, v in single.items() if v}
        named.update({f"--column {f}=": column for f, column in self.fields.items()})
        return named


def product_problem(mapping: ColumnMapping) -> str | None:
    """Why no row can become a valid record whatever the file holds, or None.

    A parametric record needs a product (its default model key); without a product
    column or ``--product`` every row would fail, one error each.
    """
    if mapping.kind != "parametric" or mapping.product_column or mapping.product:
        return None
    return ("parametric records need a product: pass --product-column COLUMN (the column "
            "naming each row's product) or --product NAME (one product for every row)")


@dataclass(frozen=True)
class _Plan:
    """The mapping resolved against one file's columns."""

    numeric: tuple[str, ...]
    categorical: tuple[str, ...]


def sample_rows(sample: Sequence[Row | Problem]) -> list[Row]:
    return [row for row in sample if not isinstance(row, Problem)]


def _is_numeric(column: str, sample: Sequence[Row]) -> bool:
    # Most present values are numbers: a stray text is then a row problem, reported,
    # rather than a reason to drop the whole column without a word.
    values = [to_number(row.get(column)) for _, row in sample]
    present = [v for v in values if v is not None]
    return sum(isinstance(v, BadValue) for v in present) * 2 <= len(present)


def _matching(patterns: Sequence[str], columns: Sequence[str], option: str) -> list[str]:
    chosen: list[str] = []
    for pattern in patterns:
        hits = [c for c in columns if fnmatch.fnmatchcase(c, pattern)]
        if not hits:
            raise MappingError(f"{option} {pattern!r} matches no column")
        chosen += [c for c in hits if c not in chosen]
    return chosen


def resolve(mapping: ColumnMapping, columns: Sequence[str], sample: Sequence[Row]) -> _Plan:
    """Check the mapping against the columns; decide numeric and categorical columns."""
    for option, column in mapping.named_columns().items():
        if column not in columns:
            raise MappingError(f"column {column!r} ({option}) is not in the file")
    taken = set(mapping.named_columns().values())
    free = [c for c in columns if c not in taken]
    if mapping.measurement_columns:
        numeric = _matching(mapping.measurement_columns, free, "--measurement-columns")
    else:
        numeric = [c for c in free if _is_numeric(c, sample)]
    if mapping.kind == "parametric":
        return _Plan(tuple(numeric), ())
    rest = [c for c in free if c not in numeric]
    if mapping.categorical_columns:
        categorical = _matching(mapping.categorical_columns, rest, "--categorical-columns")
    else:
        categorical = rest
    return _Plan(tuple(numeric), tuple(categorical))


class _Undecodable(Exception):
    def __init__(self, exc: UnicodeDecodeError) -> None:
        super().__init__(str(exc))
        self.reason = f"byte {exc.object[exc.start]:#04x} at column {exc.start + 1}"


class _RowError(Exception):
    def __init__(self, column: str, reason: str) -> None:
        super().__init__(reason)
        self.column, self.reason = column, reason


def _convert(value: Any, column: str, convert: Any) -> Any:
    result = convert(value)
    if isinstance(result, BadValue):
        raise _RowError(column, result.reason)
    return result


class TabularSource:
    """Iterate a CSV or JSONL file as :class:`Parsed` records and :class:`Problem` reports.

    ``rows_read`` counts data rows; ``raw_bytes_read`` the on-disk bytes consumed.
    ``fallback_ts`` (seconds) stamps rows when no time column is mapped.
    ``content_sha256`` is the file's hash when the caller has it (else computed if an id
    needs it); ``follow_symlinks=False`` refuses to open a symbolic link.

    Record ids: the id column's value; without one, ``<first 16 hex digits of the file's
    SHA-256>-L<line>``, so a renamed or copied file keeps its ids.
    """

    def __init__(
        self,
        path: Path,
        mapping: ColumnMapping,
        file_format: TabularFormat,
        fallback_ts: float | None = None,
        *,
        content_sha256: str | None = None,
        follow_symlinks: bool = True,
    ) -> None:
        self.path, self.mapping, self.format = path, mapping, file_format
        ts = path.stat().st_mtime if fallback_ts is None else fallback_ts
        self._fallback_ts = datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.rows_read = 0
        self._file: CountingFile | None = None
        self._follow_symlinks = follow_symlinks
        self._sha256 = content_sha256
        self._csv_header: list[str] = []
        self._lines = 0

    @property
    def raw_bytes_read(self) -> int:
        return self._file.raw_bytes_read if self._file else 0

    def _content_tag(self) -> str:
        assert self._file is not None, "ids are only made while the file is read"
        return self._file.content_tag()

    def check(self) -> None:
        """Raise :class:`MappingError` now if the mapping does not fit this file's columns
        (whether the mapping can give a product at all is :func:`product_problem`)."""
        for _ in self._planned():
            break

    def __iter__(self) -> Iterator[Item]:
        try:
            yield from self._planned()
        except MappingError as error:
            yield self._problem("header", "unknown column", str(error))

    def _planned(self) -> Iterator[Item]:
        with CountingFile(
            self.path, follow_symlinks=self._follow_symlinks, sha256=self._sha256
        ) as self._file:
            rows = self._guarded(self._rows(self._decoded_lines(self._file.stream)))
            sample = list(itertools.islice(rows, SAMPLE_ROWS))
            columns = self._columns(sample_rows(sample))
            try:
                plan = resolve(self.mapping, columns, sample_rows(sample))
            except MappingError as error:
                listed = ", ".join(repr(c) for c in columns) or "none"
                raise MappingError(f"{self.path}: {error}; its columns are: {listed}") from None
            if problem := product_problem(self.mapping):  # a file --follow found
                yield self._problem("file", "no product", problem)
                return
            for row in itertools.chain(sample, rows):
                self.rows_read += 1
                yield row if isinstance(row, Problem) else self._item(*row, plan)

    def _columns(self, sample: list[Row]) -> list[str]:
        if self.format == "csv":
            return self._csv_header
        columns: dict[str, None] = {}  # every key of the first rows, in order of appearance
        for _, row in sample:
            columns.update(dict.fromkeys(row))
        return list(columns)

    def _decoded_lines(self, stream: BinaryIO) -> Iterator[str]:
        # Decoded line by line, so a bad byte is pinned to its line and the lines before
        # it are all used (a text wrapper decodes 8 KiB at a time).
        for self._lines, raw in enumerate(stream, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise _Undecodable(exc) from exc
            yield text.removeprefix("\ufeff") if self._lines == 1 else text

    def _guarded(self, rows: Iterator[Row | Problem]) -> Iterator[Row | Problem]:
        try:
            yield from rows
        except _Undecodable as error:
            reason = f"not UTF-8 ({error.reason}); the rest of the file is not read"
            yield self._problem(f"line {self._lines}", "not utf-8", reason)
        except (EOFError, OSError, zlib.error) as error:
            reason = f"the file cannot be read further: {error}"
            yield self._problem(f"after line {self._lines}", "unreadable", reason)

    def _rows(self, text: Iterator[str]) -> Iterator[Row | Problem]:
        if self.format == "csv":
            reader = csv.reader(text)
            header = self._next_cells(reader)
            self._csv_header = [c.strip() for c in header] if isinstance(header, list) else []
            return self._csv_rows(reader, len(self._csv_header))
        return self._jsonl_rows(text)

    def _csv_rows(self, reader: Any, width: int) -> Iterator[Row | Problem]:
        while (cells := self._next_cells(reader)) is not None:
            if isinstance(cells, Problem):
                yield cells
            elif not cells:
                continue  # a blank line
            elif len(cells) != width:
                reason = f"the row has {len(cells)} fields; the header has {width}"
                yield self._problem(f"line {reader.line_num}", "wrong field count", reason)
            else:
                yield reader.line_num, dict(zip(self._csv_header, cells, strict=True))

    def _next_cells(self, reader: Any) -> list[str] | Problem | None:
        try:
            return next(reader, None)
        except csv.Error as exc:  # e.g. a NUL byte: this row is lost, the next may be fine
            return self._problem(f"line {reader.line_num}", "bad csv", str(exc))

    def _jsonl_rows(self, text: Iterator[str]) -> Iterator[Row | Problem]:
        for line, raw in enumerate(text, start=1):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw)
            except json.JSONDecodeError as exc:
                reason = f"not valid JSON ({exc.msg} at column {exc.colno})"
                yield self._problem(f"line {line}", "bad json", reason)
                continue
            if not isinstance(row, dict):
                reason = f"expected a JSON object, got {type(row).__name__}"
                yield self._problem(f"line {line}", "bad json", reason)
                continue
            yield line, row

    def _problem(self, position: str, kind: str, reason: str) -> Problem:
        return Problem(str(self.path), position, kind, reason)

    def _item(self, line: int, row: dict[str, Any], plan: _Plan) -> Item:
        try:
            record = self._record(line, row, plan)
        except _RowError as error:
            position = f"line {line}, column {error.column!r}"
            return self._problem(position, "wrong type", error.reason)
        return Parsed(record, str(self.path), f"line {line}")

    def _record(self, line: int, row: dict[str, Any], plan: _Plan) -> dict[str, Any]:
        m = self.mapping
        record: dict[str, Any] = {
            "schema_version": 1,
            "kind": m.kind,
            "record_id": self._record_id(line, row),
            "ts": self._ts(row),
            "label": _convert(row.get(m.label_column), m.label_column, to_label)
            if m.label_column
            else None,
        }
        product = (
            _convert(row[m.product_column], m.product_column, to_text)
            if m.product_column
            else m.product
        )
        if m.kind == "parametric":
            record["product"] = product
            for name, column in m.fields.items():
                record[name] = _convert(row.get(column), column, FIELD_TYPES[name])
            record["measurements"] = self._numbers(row, plan)
            return record
        if product is not None:
            record["product"] = product
        record["numeric"] = self._numbers(row, plan)
        record["categorical"] = self._categories(row, plan)
        return record

    def _record_id(self, line: int, row: dict[str, Any]) -> str:
        column = self.mapping.id_column
        if column is None:
            # The content, not the file name: a renamed or copied file gives the same ids.
            return f"{self._content_tag()}-L{line:06d}"
        value = _convert(row.get(column), column, to_text)
        if value is None:
            raise _RowError(column, "the record id is empty")
        return str(value)

    def _ts(self, row: dict[str, Any]) -> str:
        column = self.mapping.ts_column
        if column is None:
            return self._fallback_ts
        value = _convert(row.get(column), column, to_iso_ts)
        if value is None:
            raise _RowError(column, "the timestamp is empty")
        return str(value)

    @staticmethod
    def _numbers(row: dict[str, Any], plan: _Plan) -> dict[str, float | None]:
        return {c: _convert(row.get(c), c, to_number) for c in plan.numeric}

    @staticmethod
    def _categories(row: dict[str, Any], plan: _Plan) -> dict[str, str]:
        values = {c: _convert(row.get(c), c, to_text) for c in plan.categorical}
        return {c: v for c, v in values.items() if v is not None}
