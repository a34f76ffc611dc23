"""Labelled streams for ``stream-al bench labels``: River's bundled and synthetic
datasets, the synthetic ATE floor, and any CSV file.

Every stream yields ``(record, truth)`` pairs of validated core records, so the
benchmark runs the same decode-free path as the daemon's learner.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stream_al.records import ParametricRecord, TransactionRecord
from stream_al.replay import Labelled

if TYPE_CHECKING:
    from consumers.produce.stdf.source import LabelFrom

_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Dataset:
    """A named, replayable labelled stream of known length."""

    name: str
    size: int
    open: Callable[[], Iterator[Labelled]]


def transaction_record(index: int, prefix: str, x: Mapping[str, Any], truth: Any) -> Labelled:
    """One labelled record: strings and booleans are categorical, numbers numeric, and
    None or NaN a missing value (None)."""
    numeric: dict[str, float | None] = {}
    categorical: dict[str, str] = {}
    for name, value in x.items():
        if isinstance(value, bool) or isinstance(value, str):
            categorical[str(name)] = str(value)
        elif value is None or (isinstance(value, float) and math.isnan(value)):
            numeric[str(name)] = None
        else:
            numeric[str(name)] = float(value)
    record = TransactionRecord(record_id=f"{prefix}-{index}",
                               ts=_EPOCH + timedelta(seconds=index),
                               numeric=numeric, categorical=categorical)
    return record, str(truth)


def _from_river(name: str, make: Callable[[], Any], size: int) -> Dataset:
    def stream() -> Iterator[Labelled]:
        rows = itertools.islice(make(), size)
        return (transaction_record(i, name, x, y) for i, (x, y) in enumerate(rows))
    return Dataset(name, size, stream)


def _bundled(name: str, size: int | None) -> Dataset:
    from river import datasets

    classes: dict[str, Callable[[], Any]] = {
        "shuttle": datasets.Shuttle, "phishing": datasets.Phishing,
        "imagesegments": datasets.ImageSegments, "bananas": datasets.Bananas}
    dataset_class = classes[name]
    full = int(dataset_class().n_samples)
    return _from_river(name, dataset_class, min(size or full, full))


def _synthetic(name: str, size: int | None, seed: int) -> Dataset:
    from river.datasets import synth

    n = size or 20_000

    def drifting() -> Any:
        if name == "sea":
            return synth.ConceptDriftStream(synth.SEA(variant=0, seed=seed),
                                            synth.SEA(variant=2, seed=seed + 1),
                                            position=n // 2, width=n // 20, seed=seed)
        if name == "hyperplane":
            return synth.Hyperplane(seed=seed, n_features=10, n_drift_features=5,
                                    mag_change=0.001)
        return synth.ConceptDriftStream(synth.Agrawal(classification_function=0, seed=seed),
                                        synth.Agrawal(classification_function=4, seed=seed + 1),
                                        position=n // 2, width=n // 20, seed=seed)
    return _from_river(name, drifting, n)


#: Uninformative equipment sensor columns of ``ate-wide`` beside its 40 tests.
WIDE_SENSOR_COLUMNS = 300


def _floor(size: int | None, seed: int, sensors: int = 0) -> Dataset:
    from stream_al.simulate.floor import FloorConfig, FloorSimulator

    n = size or 20_000

    def stream() -> Iterator[Labelled]:
        config = FloorConfig(run_length=max(n, 100), sensor_columns=sensors)
        simulator = FloorSimulator(config, seed=seed)
        return ((ParametricRecord.model_validate(s.record), s.truth) for s in simulator.stream(n))
    return Dataset("ate-wide" if sensors else "ate-floor", n, stream)


_MISSING = frozenset({"", "nan", "na", "null", "?"})


def _missing(text: str) -> bool:
    return text.strip().lower() in _MISSING


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _sort_key(value: str) -> tuple[int, float, str]:
    """Numbers in numeric order, then anything else (ISO dates sort as text)."""
    number = None if _missing(value) else _number(value.strip())
    return (0, number, "") if number is not None else (1, 0.0, value)


def _numeric_columns(rows: list[dict[str, str]], columns: list[str]) -> set[str]:
    """The columns whose every non-empty cell is a number, decided over all rows: a
    column with a word in one row is categorical in every row, so one column is one
    feature (not a number here and a one-hot there)."""
    return {name for name in columns
            if all(_missing(v) or _number(v.strip()) is not None
                   for v in (row.get(name) or "" for row in rows))}


def _features(row: dict[str, str], columns: list[str], numeric: set[str]) -> dict[str, Any]:
    x: dict[str, Any] = {}
    for name in columns:
        text = (row.get(name) or "").strip()
        if name in numeric:
            x[name.strip()] = None if _missing(text) else float(text)
        elif not _missing(text):
            x[name.strip()] = text  # a categorical cell left empty is no feature at all
    return x


def csv_dataset(path: Path, target: str, time_column: str | None = None,
                shuffle_seed: int | None = None, size: int | None = None,
                drop: Sequence[str] = ()) -> Dataset:
    """A CSV file as a labelled stream: a column whose every non-empty cell is a number
    is a numeric feature, any other a categorical one. Ordered by ``time_column`` when
    given (it orders the stream and is never a feature: a timestamp is unique to every
    record), shuffled with a fixed seed when asked (for data without a time order), else
    kept in file order. ``drop`` names columns that are no features either (record ids).
    A UTF-8 byte-order mark (Excel writes one) is not part of the first column's name."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        columns = list(reader.fieldnames or [])
        for needed in filter(None, (target, time_column, *drop)):
            if needed not in columns:
                raise ValueError(f"{path}: no column {needed!r}; columns are {columns}")
        rows = list(reader)
    features = [c for c in columns if c and c not in {target, time_column, *drop}]
    numeric = _numeric_columns(rows, features)  # over the whole file, before --records
    if time_column:
        rows.sort(key=lambda row: _sort_key(row[time_column]))
    if shuffle_seed is not None:
        random.Random(shuffle_seed).shuffle(rows)
    rows = rows[:size] if size else rows

    def stream() -> Iterator[Labelled]:
        for i, row in enumerate(rows):
            yield transaction_record(i, path.stem, _features(row, features, numeric),
                               row[target].strip())
    return Dataset(path.stem, len(rows), stream)


BUILTIN = ("shuttle", "phishing", "imagesegments", "bananas", "sea", "hyperplane",
           "agrawal", "ate-floor", "ate-wide")


def builtin_dataset(name: str, size: int | None = None, seed: int = 0) -> Dataset:
    """One of ``BUILTIN`` by name."""
    if name in ("shuttle", "phishing", "imagesegments", "bananas"):
        return _bundled(name, size)
    if name in ("sea", "hyperplane", "agrawal"):
        return _synthetic(name, size, seed)
    if name == "ate-floor":
        return _floor(size, seed)
    if name == "ate-wide":  # the same floor, the same parts, plus the sensor columns
        return _floor(size, seed, WIDE_SENSOR_COLUMNS)
    raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(BUILTIN)} "
                     "or give --data PATH --target COLUMN")


def stdf_dataset(path: Path, label_from: LabelFrom = "pass_fail") -> Dataset:
    """An STDF file as a labelled stream, its parts in file order: each part exactly as
    ``stream-al produce --label-from`` would send it (decoded by the daemon's codec), its
    truth the label the tester wrote (the PRR's pass/fail flag or bin). A part without a
    label, or one the codec refuses, is not in the stream: a replay needs the truth.
    Parts without a parametric result stay in (they are real parts)."""
    from consumers.produce.items import Parsed
    from consumers.produce.stdf.source import StdfSource
    from stream_al.codec import decode_record
    from stream_al.errors import DecodeError

    pairs: list[Labelled] = []
    for item in StdfSource(path, label_from=label_from):
        if not isinstance(item, Parsed) or item.record.get("label") is None:
            continue
        truth = str(item.record["label"])
        raw = dict(item.record, label=None)  # the truth is the oracle's, not a feature
        try:
            record = decode_record(json.dumps(raw, separators=(",", ":")).encode())
        except DecodeError:
            continue
        pairs.append((record, truth))
    name = path.name.split(".")[0]
    return Dataset(name, len(pairs), lambda: iter(pairs))
