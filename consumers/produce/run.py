"""The body of ``stream-al produce``: files → sources → validated records → a sink.

Shows a progress bar and every problem on stderr as it happens, then a summary: per file
the parts or rows read, records sent and problems, the problems grouped by reason, and
how many parts had no parametric result or were retests.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from consumers.kafka.reach import EXIT_NO_BROKER, announce
from consumers.produce.follow import DEFAULT_SETTLE_S, FileIdentity, FolderWatcher, Ledger
from consumers.produce.items import Item, Parsed, Problem
from consumers.produce.publish import (
    DryRunSink,
    FileOutcome,
    KafkaRecordSink,
    Pacer,
    Sink,
    publish_items,
)
from consumers.produce.stdf.retests import SeenParts
from consumers.produce.stdf.source import FtrMode, LabelFrom, MprMode, StdfSource
from consumers.produce.tabular.source import (
    ColumnMapping,
    MappingError,
    TabularSource,
    product_problem,
)
from consumers.settings import KafkaSettings
from consumers.stopping import StopRequest
from stream_al.errors import BrokerUnavailable

FileFormat = Literal["auto", "stdf", "csv", "jsonl"]
KnownFormat = Literal["stdf", "csv", "jsonl"]
SUFFIXES: dict[KnownFormat, tuple[str, ...]] = {
    "stdf": (".stdf", ".std", ".stdf.gz", ".std.gz"),
    "csv": (".csv", ".csv.gz"),
    "jsonl": (".jsonl", ".ndjson", ".jsonl.gz", ".ndjson.gz"),
}
TABULAR: tuple[KnownFormat, ...] = ("csv", "jsonl")
#: How often (in items) the progress bar is moved: often enough, cheap enough.
PROGRESS_EVERY = 64


def detect_format(path: Path, requested: FileFormat) -> KnownFormat | None:
    """The format ``requested``, or the one the file name says; None if it says none."""
    if requested != "auto":
        return requested
    name = path.name.lower()
    for fmt, endings in SUFFIXES.items():
        if name.endswith(endings):
            return fmt
    return None


@dataclass(frozen=True)
class ProduceOptions:
    """Everything ``stream-al produce`` was asked to do with each file."""

    file_format: FileFormat = "auto"
    label_from: LabelFrom = "none"
    mapping: ColumnMapping = field(default_factory=ColumnMapping)
    key_field: str = "record_id"
    rate: float = 0.0
    mpr: MprMode = "summary"
    ftr: FtrMode = "pass_fail"


@dataclass
class FileReport:
    """One row of the summary; ``no_parametric`` and ``retests`` count records queued."""

    path: str
    file_format: str
    read: int = 0
    sent: int = 0
    problems: int = 0
    note: str = ""
    no_parametric: int = 0
    retests: int = 0


@dataclass
class Totals:
    """Everything the summary shows, across files."""

    files: list[FileReport] = field(default_factory=list)
    reasons: Counter[str] = field(default_factory=Counter)

    @property
    def problems(self) -> int:
        return sum(self.reasons.values())


class Producer:
    """Publishes files one after another into ``sink``, keeping the totals."""

    def __init__(self, sink: Sink, options: ProduceOptions, console: Console,
                 seen_parts: SeenParts | None = None) -> None:
        self.sink, self.options, self.console = sink, options, console
        self.totals = Totals()
        self.stop = StopRequest()
        self._pacer = Pacer(options.rate)
        # Across the files of the run, and of earlier runs when kept in the state dir.
        self._seen_parts = SeenParts() if seen_parts is None else seen_parts
        self._seen_warned = False
        self._current: FileReport | None = None
        self._delivered_before, self._failures_seen = 0, 0

    def source(
        self, path: Path, followed: FileIdentity | None = None
    ) -> StdfSource | TabularSource | None:
        """The reader for ``path``, or None when its format is unknown.

        ``followed``: the file comes from a watched folder, hashed already; the reader
        then reuses that hash for the ids and refuses to open a symbolic link.
        """
        fmt = detect_format(path, self.options.file_format)
        sha256 = followed.sha256 if followed else None
        links = followed is None  # a file named on the command line may be a link
        if fmt == "stdf":
            return StdfSource(
                path,
                self.options.label_from,
                product=self.options.mapping.product,
                mpr=self.options.mpr,
                ftr=self.options.ftr,
                warn=lambda text: say(self.console, f"warning: {path}: {text}"),
                seen=self._seen_parts,
                content_sha256=sha256,
                follow_symlinks=links,
            )
        if fmt is not None:
            return TabularSource(
                path, self.options.mapping, fmt, content_sha256=sha256, follow_symlinks=links
            )
        return None

    def publish(
        self, path: Path, progress: Progress, followed: FileIdentity | None = None
    ) -> FileReport:
        """Publish one file; the report says what became of it.

        Problems are counted as they come and deliveries when the sink settles them, so
        the report is right even when the broker is lost half-way (BrokerUnavailable).
        """
        source = self.source(path, followed)
        report = FileReport(str(path), detect_format(path, self.options.file_format) or "?")
        self.totals.files.append(report)
        if source is None:
            reason = "unknown format: name it .stdf/.std(.gz), .csv or .jsonl, or pass --format"
            self._count(report, Problem(str(path), "file", "unknown format", reason))
            return report
        self._current, self._delivered_before = report, self.sink.delivered
        # Measured once, before reading: the file may be renamed while it is read.
        size = followed.size if followed else path.stat().st_size
        task = progress.add_task(path.name, total=size)
        try:
            outcome = self._publish_items(source, report, progress, task)
        finally:
            report.read = source.parts_read if isinstance(source, StdfSource) else source.rows_read
            # Even for a file cut short: a retry of it is the same file, never a retest.
            self._save_seen_parts()
        self.sink.flush()
        self.settle_deliveries()
        report.note = "interrupted" if outcome.stopped else ""
        progress.update(task, completed=size)
        return report

    def _save_seen_parts(self) -> None:
        try:
            self._seen_parts.save()
        except OSError as error:
            if not self._seen_warned:  # once: the records themselves are not at stake
                say(self.console, f"warning: cannot keep the parts seen in "
                    f"{self._seen_parts.path} ({error.strerror or error}): a retest "
                    "published by a later run will not be known as one")
                self._seen_warned = True

    def _publish_items(
        self,
        source: StdfSource | TabularSource,
        report: FileReport,
        progress: Progress,
        task: TaskID,
    ) -> FileOutcome:
        seen = 0

        def on_item(item: Item) -> None:
            nonlocal seen
            seen += 1
            if isinstance(item, Problem):
                self._count(report, item)
            elif isinstance(item, Parsed):  # queued: a record that failed is a Problem
                report.no_parametric += item.record.get("no_parametric") is True
                report.retests += item.record.get("retest") is True
            if seen % PROGRESS_EVERY == 0:
                progress.update(task, completed=source.raw_bytes_read)

        return publish_items(
            source, self.sink, self.options.key_field, self._pacer, on_item, self.stop.is_set
        )

    def settle_deliveries(self) -> None:
        """Credit the current file with what the sink has settled since the last call."""
        if self._current is None:
            return
        self._current.sent = self.sink.delivered - self._delivered_before
        for failure in self.sink.failures[self._failures_seen :]:
            self._count(self._current, failure)
        self._failures_seen = len(self.sink.failures)

    def _count(self, report: FileReport, problem: Problem) -> None:
        say(self.console, f"problem ({problem.kind}): {problem}")
        report.problems += problem.records
        self.totals.reasons[problem.kind] += problem.records

    def publish_for_ledger(
        self, path: Path, identity: FileIdentity, progress: Progress
    ) -> Mapping[str, object] | None:
        """Follow mode: the ledger summary, or None to retry (interrupted, undelivered)."""
        failures_before = len(self.sink.failures)
        report = self.publish(path, progress, followed=identity)
        if report.note == "interrupted" or len(self.sink.failures) > failures_before:
            return None
        return {"records": report.sent, "problems": report.problems}

    @property
    def current_report(self) -> FileReport | None:
        return self._current

    @property
    def interrupted(self) -> bool:
        return any(r.note == "interrupted" for r in self.totals.files)


def say(console: Console, text: str) -> None:
    """One line, as is: no markup, no colours guessed, never wrapped (logs are grepped)."""
    console.print(text, markup=False, highlight=False, soft_wrap=True)


def say_no_broker(console: Console, error: BrokerUnavailable) -> None:
    """The no-broker line in the form every other command gives it (``fail``)."""
    say(console, f"stream-al produce: {error}; nothing was sent")


def progress_bar(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def summary_tables(totals: Totals) -> list[Table]:
    """The per-file table and, if anything was skipped, the reasons table."""
    files = Table(title="stream-al produce", title_justify="left")
    for name in ("file", "format", "parts/rows read", "records sent", "problems", "note"):
        files.add_column(
            name, justify="left" if name in ("file", "format") else "right", overflow="fold"
        )
    for r in totals.files:
        files.add_row(r.path, r.file_format, str(r.read), str(r.sent), str(r.problems), r.note)
    sent, read = sum(r.sent for r in totals.files), sum(r.read for r in totals.files)
    files.add_row(f"{len(totals.files)} file(s)", "", str(read), str(sent), str(totals.problems))
    if not totals.reasons:
        return [files]
    reasons = Table(title="not sent, by reason", title_justify="left")
    reasons.add_column("reason")
    reasons.add_column("parts/rows", justify="right")
    for reason, count in totals.reasons.most_common():
        reasons.add_row(reason, str(count))
    return [files, reasons]


def summary_notes(totals: Totals) -> list[str]:
    """Lines under the tables: parts sent without parametric results, retests."""
    notes = []
    for r in totals.files:
        if r.no_parametric:
            had = "1 part had" if r.no_parametric == 1 else f"{r.no_parametric} parts had"
            notes.append(f"{r.path}: {had} no parametric results (sent, flagged no_parametric)")
        if r.retests:
            were = "1 part was a retest" if r.retests == 1 else f"{r.retests} parts were retests"
            notes.append(f"{r.path}: {were} (flagged retest; record ids end in -R and the "
                         "file's hash)")
    return notes


@contextmanager
def stop_on_signals(stop: StopRequest) -> Iterator[None]:
    """SIGINT and SIGTERM ask for a clean stop (after the record in hand), nothing more."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set signal handlers
        return
    previous = {s: signal.signal(s, stop.on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def preflight(files: list[Path], producer: Producer) -> list[str]:
    """Every reason not to start: unknown formats, mappings that do not fit a file."""
    errors = []
    tabular = [p for p in files if detect_format(p, producer.options.file_format) in TABULAR]
    if tabular and (problem := product_problem(producer.options.mapping)):
        return [problem]  # one message: no row of any file could become a record
    for path in files:
        if not path.is_file():  # a FIFO given by mistake would block the first read forever
            errors.append(f"{path}: not a regular file")
            continue
        source = producer.source(path)
        if source is None:
            errors.append(
                f"{path}: unknown format: name it .stdf/.std(.gz), .csv or .jsonl, or pass --format"
            )
        elif isinstance(source, TabularSource):
            try:
                source.check()
            except MappingError as error:
                errors.append(str(error))
    return errors


def run_produce(
    files: list[Path],
    options: ProduceOptions,
    *,
    topic: str,
    kafka: KafkaSettings,
    dry_run: bool,
    follow: Path | None,
    state_dir: Path | None,
    poll_interval: float,
    polls: int | None,
    flush_timeout: float,
    settle: float = DEFAULT_SETTLE_S,
) -> int:
    """Publish ``files``, then follow a folder if asked; returns the exit status."""
    console = Console(stderr=True)
    # Kept in the state dir, so that a retest published by a later run is still known
    # as one. A dry run reads it but records nothing: what it prints was not sent.
    seen = _seen_parts(state_dir, console, read_only=dry_run)
    producer = Producer(DryRunSink(sys.stdout), options, console, seen)
    if errors := preflight(files, producer):
        for error in errors:
            say(console, f"error: {error}")
        return EXIT_USAGE
    if not dry_run:
        announce(kafka)
    try:
        producer.sink = (
            DryRunSink(sys.stdout)
            if dry_run
            else KafkaRecordSink.connect(topic, kafka, flush_timeout)
        )
    except BrokerUnavailable as error:
        say_no_broker(console, error)
        return EXIT_NO_BROKER
    watch = (
        Watch(follow, state_dir, poll_interval, polls, settle)
        if follow is not None and state_dir is not None
        else None
    )
    broker_lost = _run(producer, files, watch)
    for table in summary_tables(producer.totals):
        console.print(table)
    for note in summary_notes(producer.totals):
        say(console, note)
    return _exit_status(producer, broker_lost, follow is not None)


def _seen_parts(state_dir: Path | None, console: Console,
                read_only: bool = False) -> SeenParts | None:
    if state_dir is None:
        return None
    try:
        return SeenParts(state_dir=state_dir, read_only=read_only)
    except OSError as error:  # a link planted in its place, unreadable …: not fatal
        say(console, f"warning: cannot read the parts seen in {state_dir} "
            f"({error.strerror or error}): retests are judged within this run only")
        return None


@dataclass(frozen=True)
class Watch:
    """What ``--follow`` was asked to do."""

    folder: Path
    state_dir: Path
    poll_interval: float
    polls: int | None
    settle: float


def _follow(producer: Producer, watch: Watch, progress: Progress) -> None:
    watcher = FolderWatcher(
        watch.folder,
        Ledger(watch.state_dir),
        lambda p: detect_format(p, producer.options.file_format) is not None,
        lambda p, identity: producer.publish_for_ledger(p, identity, progress),
        settle_s=watch.settle,
        say=lambda text: say(producer.console, text),
    )
    watcher.run(producer.stop, watch.poll_interval, watch.polls)


def _run(producer: Producer, files: list[Path], watch: Watch | None) -> bool:
    try:
        with stop_on_signals(producer.stop), progress_bar(producer.console) as progress:
            for path in files:
                if not producer.stop.is_set():
                    producer.publish(path, progress)
            if watch is not None and not producer.stop.is_set():
                _follow(producer, watch, progress)
    except BrokerUnavailable as error:
        say(producer.console, f"error: {error}; stopped")
        if producer.current_report is not None:
            producer.current_report.note = "broker lost"
        return True
    finally:
        producer.sink.close()  # a last flush: whatever it settles is still credited
        producer.settle_deliveries()
    return False


def _exit_status(producer: Producer, broker_lost: bool, following: bool) -> int:
    if broker_lost or producer.totals.problems:
        return EXIT_PROBLEMS
    return EXIT_INTERRUPTED if producer.interrupted and not following else EXIT_OK
