"""Labelled streams for ``stream-al bench labels``: River's bundled and synthetic
datasets, the synthetic ATE floor, and any CSV file.

Every stream yields ``(record, truth)`` pairs of validated core records, so the
benchmark runs the same decode-free path as the daemon's learner.
"""

from __future__ import annotations

import csv
import itertools
import math
import random
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from stream_al.records import ParametricRecord, TransactionRecord
from stream_al.replay import Labelled

_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Dataset:
    """A named, replayable labelled stream of known length."""

    name: str
    size: int
    open: Callable[[], Iterator[Labelled]]


def _transaction(index: int, prefix: str, x: Mapping[str, Any], truth: Any) -> Labelled:
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
        return (_transaction(i, name, x, y) for i, (x, y) in enumerate(rows))
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


def _floor(size: int | None, seed: int) -> Dataset:
    from stream_al.simulate.floor import FloorConfig, FloorSimulator

    n = size or 20_000

    def stream() -> Iterator[Labelled]:
        simulator = FloorSimulator(FloorConfig(run_length=max(n, 100)), seed=seed)
        return ((ParametricRecord.model_validate(s.record), s.truth) for s in simulator.stream(n))
    return Dataset("ate-floor", n, stream)


def _cell(value: str) -> float | str | None:
    text = value.strip()
    if text == "" or text.lower() in {"nan", "na", "null", "?"}:
        return None
    try:
        return float(text)
    except ValueError:
        return text


def _sort_key(value: str) -> tuple[int, float, str]:
    """Numbers in numeric order, then anything else (ISO dates sort as text)."""
    cell = _cell(value)
    return (0, cell, "") if isinstance(cell, float) else (1, 0.0, value)


def csv_dataset(path: Path, target: str, time_column: str | None = None,
                shuffle_seed: int | None = None, size: int | None = None) -> Dataset:
    """A CSV file as a labelled stream: numeric columns become numeric features, the
    rest categorical. Ordered by ``time_column`` when given, shuffled with a fixed seed
    when asked (for data without a time order), else kept in file order."""
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
        for needed in filter(None, (target, time_column)):
            if needed not in columns:
                raise ValueError(f"{path}: no column {needed!r}; columns are {columns}")
        rows = list(reader)
    if time_column:
        rows.sort(key=lambda row: _sort_key(row[time_column]))
    if shuffle_seed is not None:
        random.Random(shuffle_seed).shuffle(rows)
    rows = rows[:size] if size else rows

    def stream() -> Iterator[Labelled]:
        for i, row in enumerate(rows):
            x = {k.strip(): _cell(v) for k, v in row.items() if k and k != target}
            truth = row[target].strip()
            yield _transaction(i, path.stem, x, truth)
    return Dataset(path.stem, len(rows), stream)


BUILTIN = ("shuttle", "phishing", "imagesegments", "bananas", "sea", "hyperplane",
           "agrawal", "ate-floor")


def builtin_dataset(name: str, size: int | None = None, seed: int = 0) -> Dataset:
    """One of ``BUILTIN`` by name."""
    if name in ("shuttle", "phishing", "imagesegments", "bananas"):
        return _bundled(name, size)
    if name in ("sea", "hyperplane", "agrawal"):
        return _synthetic(name, size, seed)
    if name == "ate-floor":
        return _floor(size, seed)
    raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(BUILTIN)} "
                     "or give --data PATH --target COLUMN")
