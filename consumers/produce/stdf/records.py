"""Read an STDF V4 byte stream one record at a time, with byte offsets.

pystdf decodes each record's fields. The stream is framed here (a 4-byte header per
record) rather than with pystdf's ``Parser.parse()``, because ``parse()`` pushes records
to sinks until the end and, at a truncated record, pads the missing fields with None and
stops without a word. Framing here gives a generator (memory stays flat), the offset of
every record, a clear error when the file ends mid-record, and the chance to skip one
undecodable record and carry on, since its length is known.
"""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

FAR = (0, 10)
MIR = (1, 10)
PMR = (1, 60)
WIR = (2, 10)
PIR = (5, 10)
PRR = (5, 20)
PTR = (15, 10)
MPR = (15, 15)
FTR = (15, 20)
#: The records a parametric record is built from; the others are skipped undecoded.
WANTED = {
    FAR: "FAR", MIR: "MIR", PMR: "PMR", WIR: "WIR", PIR: "PIR", PRR: "PRR",
    PTR: "PTR", MPR: "MPR", FTR: "FTR",
}
#: The last field a parametric record uses, for records decoded only in part.
LAST_FIELD_USED = {PTR: "TEST_TXT", PRR: "PART_ID", MPR: "UNITS", FTR: "TEST_TXT"}
#: A PTR decoded this far also gives the test's limits and units.
PTR_WITH_LIMITS = "UNITS"
#: REC_TYP families STDF V4 (and V4-2007) defines, plus 180/181 reserved for vendors.
#: A record of another type means the stream has lost its framing (corruption).
KNOWN_FAMILIES = {0, 1, 2, 5, 10, 15, 20, 50, 180, 181}


@dataclass(frozen=True)
class StdfRecord:
    """One decoded record: its name (``"PTR"``), byte offset and fields by STDF name."""

    name: str
    offset: int
    fields: dict[str, Any]


class StdfReadError(Exception):
    """The stream cannot be read further (not STDF, truncated): ``offset`` says where."""

    def __init__(self, offset: int, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.offset, self.kind, self.reason = offset, kind, reason


@dataclass(frozen=True)
class BadRecord:
    """A record whose header was sound but whose fields could not be decoded (skipped)."""

    name: str
    offset: int
    reason: str


def _pystdf() -> tuple[Any, Any, Any]:
    # pystdf 1.4 has a "\d" in a plain string: compiling it warns, and the test suite
    # turns warnings into errors. The warning is pystdf's, not ours.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SyntaxWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        from pystdf import V4
        from pystdf.IO import Parser
        from pystdf.Types import RecordHeader
    return V4, Parser, RecordHeader


@dataclass(frozen=True)
class _FieldPrefix:
    """The first fields of a record type: what pystdf's ``createRecordParser`` reads."""

    fieldStdfTypes: list[str]  # the attribute name pystdf looks up


class _FieldDecoder:
    """Decodes one record body with pystdf's per-record-type field parsers.

    Records are decoded only up to the last field a parametric record uses: the limits,
    units and formats after a PTR's TEST_TXT are most of its decoding time, and only the
    first PTR of a test carries limits (``limits=True`` decodes that one as far as UNITS).
    """

    def __init__(self, endian: str) -> None:
        v4, parser_class, self._header_class = _pystdf()
        self._parser = parser_class(inp=io.BytesIO(), endian=endian)
        types = {(t.typ, t.sub): t for t in v4.records if (t.typ, t.sub) in WANTED}
        self._decoders = {
            key: self._prefix_decoder(t.fieldNames, t.fieldStdfTypes, LAST_FIELD_USED.get(key))
            for key, t in types.items()
        }
        ptr = types[PTR]
        self._ptr_with_limits = self._prefix_decoder(
            ptr.fieldNames, ptr.fieldStdfTypes, PTR_WITH_LIMITS
        )

    def _prefix_decoder(
        self, names: list[str], types: list[str], last: str | None
    ) -> tuple[Any, list[str]]:
        count = names.index(last) + 1 if last else len(names)
        parse = self._parser.createRecordParser(_FieldPrefix(types[:count]))
        return parse, names[:count]

    def decode(self, key: tuple[int, int], body: bytes, *, limits: bool = False) -> dict[str, Any]:
        header = self._header_class()
        header.len, (header.typ, header.sub) = len(body), key
        self._parser.inp = io.BytesIO(body)
        parse, names = self._ptr_with_limits if limits and key == PTR else self._decoders[key]
        return dict(zip(names, parse(self._parser, header, []), strict=False))


def _read(stream: BinaryIO, size: int, offset: int) -> bytes:
    try:
        return stream.read(size)
    except EOFError as exc:  # gzip: the compressed stream stops before its end marker
        reason = f"the compressed file is cut short ({exc})"
        raise StdfReadError(offset, "truncated", reason) from exc
    except (OSError, zlib.error) as exc:
        raise StdfReadError(offset, "corrupt", f"the compressed file is damaged ({exc})") from exc


def _read_exactly(stream: BinaryIO, size: int, offset: int, what: str) -> bytes:
    data = _read(stream, size, offset)
    if len(data) < size:
        raise StdfReadError(
            offset, "truncated", f"the file ends inside {what} ({len(data)} of {size} bytes)"
        )
    return data


def _endian(stream: BinaryIO) -> tuple[str, bytes]:
    """Check the FAR opens the stream; return the byte order and the FAR's bytes."""
    head = _read(stream, 5, 0)
    if len(head) < 5 or (head[2], head[3]) != FAR:
        raise StdfReadError(0, "not stdf", "not an STDF file: it does not start with a FAR")
    # CPU_TYPE 2 is little-endian (PC); 0 and 1 are read big-endian, as pystdf does.
    endian = "<" if head[4] == 2 else ">"
    (length,) = struct.unpack(endian + "H", head[:2])
    if length < 2:
        raise StdfReadError(0, "not stdf", f"not an STDF file: its FAR is {length} bytes, not 2")
    return endian, head + _read_exactly(stream, length - 1, 0, "the FAR")


class StdfRecordReader:
    """Iterates the records of an (uncompressed) STDF V4 stream.

    Yields :class:`StdfRecord` for the wanted records and :class:`BadRecord` for
    records it had to skip; raises :class:`StdfReadError` when it cannot go on.
    ``offset`` is the number of bytes consumed so far. ``limits_wanted(test_num)`` says
    whether a PTR of that test should be decoded with its limits and units.
    """

    def __init__(
        self, stream: BinaryIO, limits_wanted: Callable[[int], bool] | None = None
    ) -> None:
        self._stream = stream
        self._limits_wanted = limits_wanted
        self.offset = 0

    def __iter__(self) -> Iterator[StdfRecord | BadRecord]:
        endian, far = _endian(self._stream)
        decoder = _FieldDecoder(endian)
        wanted, test_num_of = self._limits_wanted, struct.Struct(endian + "I").unpack_from
        yield StdfRecord("FAR", 0, decoder.decode(FAR, far[4:]))
        self.offset = len(far)
        while (header := _read(self._stream, 4, self.offset)) != b"":
            start = self.offset
            if len(header) < 4:
                raise StdfReadError(start, "truncated", "the file ends inside a record header")
            (length,) = struct.unpack(endian + "H", header[:2])
            key = (header[2], header[3])
            body = _read_exactly(self._stream, length, start, f"a record of {length} bytes")
            self.offset = start + 4 + length
            if key in WANTED:
                limits = key == PTR and wanted is not None and len(body) >= 4 \
                    and wanted(test_num_of(body)[0])  # TEST_NUM opens a PTR
                yield self._decoded(decoder, key, body, start, limits)
            elif key[0] not in KNOWN_FAMILIES:
                yield BadRecord(f"type {key}", start, f"no STDF record has type {key}")

    @staticmethod
    def _decoded(
        decoder: _FieldDecoder, key: tuple[int, int], body: bytes, offset: int, limits: bool
    ) -> StdfRecord | BadRecord:
        try:
            return StdfRecord(WANTED[key], offset, decoder.decode(key, body, limits=limits))
        except Exception as exc:  # any decoding failure belongs to this one record
            return BadRecord(WANTED[key], offset, f"its fields cannot be decoded ({exc!r})")
