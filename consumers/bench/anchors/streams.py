"""The labelled streams of ``stream-al bench anchors`` and its 14 configurations.

Only data shipped inside installed wheels, so the benchmark runs offline: River's bundled
Phishing, Bananas, Shuttle and ImageSegments files, and scikit-learn's bundled copies of
the Wisconsin breast cancer and the UCI digits data (scikit-learn comes with the
``anchors`` extra). Every stream is kept in its file order: that order is the stream
order every arm sees. Each record is built once, with its features, so every arm reads
the very same ``x``.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from consumers.bench.labels.datasets import (
    Dataset,
    builtin_dataset,
    csv_dataset,
    stdf_dataset,
    transaction_record,
)
from stream_al.features import FeatureConfig, Features, extract
from stream_al.models import ModelConfig
from stream_al.records import Record, TransactionRecord

#: The model key stream-al gives these records (no ``product`` field): every arm seeds
#: its model from it, as the learner's registry does, so an ARF starts alike everywhere.
MODEL_KEY: Final = "transaction"
#: The plain River model of each short name (``stream_al.models``, ``river_*``), and
#: stream-al's own ``logistic`` template (imputer | scaler | logistic regression): the
#: floor streams have missing values, which a plain River pipeline cannot take.
TEMPLATES: Final = {"LR": "river_lr", "HT": "river_ht", "GNB": "river_gnb", "ARF": "river_arf",
                    "logistic": "logistic"}


@dataclass(frozen=True)
class Item:
    """One record of a stream, its features and its true class."""

    record: Record
    x: Features
    truth: str


@dataclass(frozen=True)
class Stream:
    name: str
    items: tuple[Item, ...]

    @property
    def size(self) -> int:
        return len(self.items)

    @property
    def binary(self) -> bool:
        return len({item.truth for item in self.items}) == 2


@dataclass(frozen=True)
class FileSource:
    """A labelled file that no wheel ships (the floor streams): how to read it. Carried
    inside the configuration so a worker process can load it by itself."""

    kind: Literal["stdf", "csv"]
    path: str
    target: str = ""  # the CSV's label column
    drop: tuple[str, ...] = ()  # CSV columns that are no features (ids)
    shuffle_seed: int | None = None  # CSV rows with no time order, shuffled once


@dataclass(frozen=True)
class Config:
    """A stream and the River model every arm uses on it."""

    dataset: str
    model: str
    source: FileSource | None = None

    @property
    def name(self) -> str:
        return f"{self.dataset} {self.model}"

    @property
    def model_config(self) -> ModelConfig:
        return ModelConfig.model_validate({"template": TEMPLATES[self.model]})


CONFIGS: Final = (
    Config("phishing", "LR"), Config("phishing", "HT"),
    Config("bananas", "LR"), Config("bananas", "HT"),
    Config("shuttle", "LR"), Config("shuttle", "HT"),
    Config("breast-cancer", "LR"), Config("breast-cancer", "HT"),
    Config("imagesegments", "GNB"), Config("imagesegments", "HT"),
    Config("imagesegments", "ARF"),
    Config("digits", "GNB"), Config("digits", "HT"), Config("digits", "ARF"),
)
#: A smoke test: two small River streams, one binary and one with seven classes.
QUICK: Final = (Config("phishing", "LR"), Config("imagesegments", "GNB"))
QUICK_RECORDS: Final = 600
#: Streams that need scikit-learn (the ``anchors`` extra).
SKLEARN_STREAMS: Final = ("breast-cancer", "digits")


#: The imbalanced floor streams of the acceptance (``--floor-data DIR``), beside
#: Shuttle: the simulated ATE floor, two real STDF lots and a third tester's file with
#: the tester's own pass/fail as truth, and the Ethereum fraud table shuffled with a
#: fixed seed (it has no time order). Paths are relative to the shared datasets folder.
FLOOR_FILES: Final = (
    ("lot2", FileSource("stdf", "stdf/lot2.stdf.gz")),
    ("lot3", FileSource("stdf", "stdf/lot3.stdf.gz")),
    ("a595", FileSource("stdf", "stdf/a595.stdf.gz")),
    ("ethereum", FileSource("csv", "fraud/eth_transaction_dataset.csv", target="FLAG",
                            drop=("Index",), shuffle_seed=0)),
)


def floor_configs(shared: Path) -> tuple[Config, ...]:
    """Shuttle (plain LR, as in the 14) and the floor streams under ``shared`` on
    stream-al's ``logistic`` template; a file that is not there is left out."""
    found = [Config(name, "logistic", FileSource(s.kind, str(shared / s.path), s.target,
                                                 s.drop, s.shuffle_seed))
             for name, s in FLOOR_FILES if (shared / s.path).is_file()]
    return (Config("shuttle", "LR"), Config("ate-floor", "logistic"), *found)


def have_sklearn() -> bool:
    return importlib.util.find_spec("sklearn") is not None


def load(name: str, records: int | None = None, source: FileSource | None = None) -> Stream:
    """The named stream, or the file ``source`` names (its first ``records`` records if
    given)."""
    stream = _load(name, source)
    if records is None or records >= stream.size:
        return stream
    return Stream(stream.name, stream.items[:records])


@functools.cache
def _load(name: str, source: FileSource | None) -> Stream:
    """Built once per process: a run reads the stream many times."""
    if source is not None:
        path = Path(source.path)
        dataset = stdf_dataset(path) if source.kind == "stdf" else csv_dataset(
            path, source.target, shuffle_seed=source.shuffle_seed, drop=source.drop)
        return _from_dataset(Dataset(name, dataset.size, dataset.open))
    if name in SKLEARN_STREAMS:
        return _from_pairs(name, _sklearn_pairs(name))
    return _from_dataset(builtin_dataset(name))


def _from_dataset(dataset: Dataset) -> Stream:
    config = FeatureConfig()
    items = tuple(Item(record, extract(record, config), truth)
                  for record, truth in dataset.open())
    return Stream(dataset.name, items)


def _from_pairs(name: str, pairs: Iterable[tuple[dict[str, float], str]]) -> Stream:
    def labelled() -> Any:
        return (transaction_record(i, name, x, y) for i, (x, y) in enumerate(pairs))
    stream = _from_dataset(Dataset(name, 0, labelled))
    assert all(isinstance(item.record, TransactionRecord) for item in stream.items)
    return stream


def _sklearn_pairs(name: str) -> list[tuple[dict[str, float], str]]:
    from sklearn import datasets  # type: ignore[import-untyped, import-not-found, unused-ignore]

    loaders: dict[str, Callable[[], Any]] = {"breast-cancer": datasets.load_breast_cancer,
                                            "digits": datasets.load_digits}
    bunch = loaders[name]()
    names = [str(n) for n in bunch.feature_names]
    classes = [str(c) for c in bunch.target_names]
    return [({n: float(v) for n, v in zip(names, row, strict=True)}, classes[int(target)])
            for row, target in zip(bunch.data, bunch.target, strict=True)]
