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
from typing import Any, Final

from consumers.bench.labels.datasets import Dataset, builtin_dataset, transaction_record
from stream_al.features import FeatureConfig, Features, extract
from stream_al.models import ModelConfig
from stream_al.records import Record, TransactionRecord

#: The model key stream-al gives these records (no ``product`` field): every arm seeds
#: its model from it, as the learner's registry does, so an ARF starts alike everywhere.
MODEL_KEY: Final = "transaction"
#: The plain River model of each short name (``stream_al.models``, ``river_*``).
TEMPLATES: Final = {"LR": "river_lr", "HT": "river_ht", "GNB": "river_gnb", "ARF": "river_arf"}


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
class Config:
    """A stream and the plain River model every arm uses on it."""

    dataset: str
    model: str

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


def have_sklearn() -> bool:
    return importlib.util.find_spec("sklearn") is not None


def load(name: str, records: int | None = None) -> Stream:
    """The named stream (its first ``records`` records if given)."""
    stream = _load(name)
    if records is None or records >= stream.size:
        return stream
    return Stream(stream.name, stream.items[:records])


@functools.cache
def _load(name: str) -> Stream:
    """Built once per process: a run reads the stream many times."""
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
