"""River-ready features from a record: a pure function of the record and a ``FeatureConfig``.

Several replicas must compute identical features from the same record, so nothing here
learns or remembers anything that changes the output (the name cache is a memo).

Feature names
-------------
- A measurement (parametric) or numeric field (transaction) keeps its own name:
  ``"vdd_core_v"``. Engineers recognise it in model weights, and the globs match it.
- Derived features live in a namespace of their own, starting with ``@``:
  ``@die_radius``, ``@die_edge``, ``@site=2``, ``@tester=T-093``, and one flag per
  categorical field and value, ``@country=DE``.
- A measurement whose own name starts with ``@`` gets one more ``@`` (``"@x"`` becomes
  ``"@@x"``), so a measurement can never collide with a derived feature.
  (Two categorical fields whose names contain ``=`` could still meet, e.g. ``a`` = ``"b=c"``
  and ``a=b`` = ``"c"``: don't put ``=`` in categorical field names.)

Missing values
--------------
A skipped test (``null`` or NaN) is emitted as ``None`` so an imputer fills it; NaN never
leaves this module, because River's statistics skip only ``None`` and one NaN would
poison a running mean for good. River's ``preprocessing.StatImputer`` fills ``None``
only for the names it was built with, and reads ``x[name]`` for each of them (a KeyError
when a record lacks one). So list the measurements every record must carry in
``expected_measurements`` / ``expected_numeric``: they are then always present, ``None``
when absent, and ``stat_imputer(config, kind)`` builds a matching ``StatImputer``.
A ``None`` for a name the imputer was not built with reaches the next step unimputed
(``StandardScaler`` raises on it): when the test list is not known ahead, use an imputer
that learns names as it goes (``stream_al.models.MeanImputer``).
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Iterable
from typing import Final

from pydantic import BaseModel, ConfigDict, Field
from river import preprocessing, stats

from stream_al.records import ParametricRecord, Record, RecordKind, TransactionRecord

__all__ = ["FeatureConfig", "FeatureExtractor", "Features", "extract", "extractor",
           "stat_imputer"]

Features = dict[str, float | None]
#: Distinct names remembered per extractor; a flood of random names must not grow memory.
_NAME_CACHE_SIZE: Final = 65_536
_DERIVED: Final = "@"


class FeatureConfig(BaseModel):
    """How records become features. Frozen: one value is shared by every replica."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    include: tuple[str, ...] = Field(
        ("*",), description="glob patterns of measurement/numeric names to use"
    )
    exclude: tuple[str, ...] = Field((), description="glob patterns dropped after include")
    spatial: bool = Field(True, description="add @die_radius (and @die_edge) from die_x/die_y")
    wafer_center_x: float = Field(0.0, allow_inf_nan=False)
    wafer_center_y: float = Field(0.0, allow_inf_nan=False)
    wafer_radius: float | None = Field(
        None, gt=0, allow_inf_nan=False, description="in die units; enables @die_edge"
    )
    edge_ring_fraction: float = Field(
        0.9, gt=0, le=1, description="@die_edge is 1.0 beyond this fraction of the radius"
    )
    site_feature: bool = Field(True, description="one-hot @site=<n>")
    tester_feature: bool = Field(True, description="one-hot @tester=<id>")
    one_hot: tuple[str, ...] = Field(
        ("*",), description="glob patterns of transaction categorical fields to one-hot"
    )
    expected_measurements: tuple[str, ...] = Field(
        (), description="measurements always emitted (None when absent), for StatImputer"
    )
    expected_numeric: tuple[str, ...] = Field(
        (), description="transaction numeric fields always emitted (None when absent)"
    )


class FeatureExtractor:
    """``extract`` for one config, with the name decisions compiled and memoised.

    Examples
    --------
    >>> from stream_al.records import TransactionRecord
    >>> to_features = FeatureExtractor(FeatureConfig(exclude=("debug_*",)))
    >>> to_features(TransactionRecord(record_id="t1", ts="2026-11-24T10:15:02Z",
    ...     numeric={"amount": 12.5, "debug_ms": 3.0}, categorical={"country": "DE"}))
    {'amount': 12.5, '@country=DE': 1.0}
    """

    def __init__(self, config: FeatureConfig) -> None:
        self.config = config
        self._wanted = _glob(config.include)
        self._unwanted = _glob(config.exclude)
        self._one_hot = _glob(config.one_hot)
        self._names: dict[str, str | None] = {}
        self._expected = {
            "parametric": tuple(map(_value_name, config.expected_measurements)),
            "transaction": tuple(map(_value_name, config.expected_numeric)),
        }

    def __call__(self, record: Record) -> Features:
        if isinstance(record, ParametricRecord):
            return self._parametric(record)
        return self._transaction(record)

    def _parametric(self, record: ParametricRecord) -> Features:
        x = self._values(record.measurements, self._expected["parametric"])
        x.update(self.derived(record))
        return x

    def derived(self, record: ParametricRecord) -> Features:
        """The features a parametric record has beside its measurements' own."""
        config, x = self.config, Features()
        if config.spatial:
            self._add_spatial(x, record.die_x, record.die_y)
        if config.site_feature and record.site is not None:
            x[f"@site={record.site}"] = 1.0
        if config.tester_feature and record.tester_id is not None:
            x[f"@tester={record.tester_id}"] = 1.0
        return x

    def columns(self, names: Iterable[str]) -> list[str | None]:
        """The feature each measurement name becomes (None: left out), as in
        ``extract``; the names ``expected_measurements`` adds are None-valued, no column."""
        known = self._names
        return [known[name] if name in known else self._decide(name) for name in names]

    def _transaction(self, record: TransactionRecord) -> Features:
        x = self._values(record.numeric, self._expected["transaction"])
        for field, value in record.categorical.items():
            if self._one_hot.match(field):
                x[f"@{field}={value}"] = 1.0
        return x

    def _values(self, values: dict[str, float | None], expected: tuple[str, ...]) -> Features:
        x: Features = {}
        names = self._names
        for name, value in values.items():
            feature = names[name] if name in names else self._decide(name)
            if feature is not None:
                # NaN is the only value unequal to itself; None == None.
                x[feature] = value if value == value else None
        for feature in expected:
            x.setdefault(feature, None)
        return x

    def _decide(self, name: str) -> str | None:
        keep = self._wanted.match(name) and not self._unwanted.match(name)
        feature = _value_name(name) if keep else None
        if len(self._names) >= _NAME_CACHE_SIZE:
            self._names.clear()
        self._names[name] = feature
        return feature

    def _add_spatial(self, x: Features, die_x: int | None, die_y: int | None) -> None:
        config = self.config
        radius = None
        if die_x is not None and die_y is not None:
            radius = math.hypot(die_x - config.wafer_center_x, die_y - config.wafer_center_y)
        x["@die_radius"] = radius
        if config.wafer_radius is not None:
            edge = config.edge_ring_fraction * config.wafer_radius
            x["@die_edge"] = None if radius is None else float(radius >= edge)


_EXTRACTORS: dict[int, FeatureExtractor] = {}


def extract(record: Record, config: FeatureConfig) -> Features:
    """The features of ``record`` under ``config`` (see the module docstring for names).

    Parameters
    ----------
    record
        A validated parametric or transaction record.
    config
        The feature settings; extractors are compiled once per config object.

    Examples
    --------
    >>> from stream_al.records import ParametricRecord
    >>> r = ParametricRecord(record_id="r1", ts="2026-11-24T10:15:02Z", product="PMIC-A7",
    ...     tester_id="T-093", site=2, die_x=3, die_y=-4,
    ...     measurements={"vdd_core_v": 0.9, "leak_ua": float("nan"), "@die_edge": 1.5})
    >>> extract(r, FeatureConfig(wafer_radius=5.0))  # doctest: +NORMALIZE_WHITESPACE
    {'vdd_core_v': 0.9, 'leak_ua': None, '@@die_edge': 1.5, '@die_radius': 5.0,
     '@die_edge': 1.0, '@site=2': 1.0, '@tester=T-093': 1.0}
    """
    return extractor(config)(record)


def extractor(config: FeatureConfig) -> FeatureExtractor:
    """The compiled extractor of ``config``, one per config object."""
    found = _EXTRACTORS.get(id(config))
    if found is None or found.config is not config:
        # The entry keeps its config alive, so the id cannot be reused while cached.
        if len(_EXTRACTORS) >= 64:
            _EXTRACTORS.clear()
        found = _EXTRACTORS[id(config)] = FeatureExtractor(config)
    return found


def stat_imputer(
    config: FeatureConfig, kind: RecordKind, statistic: type[stats.base.Univariate] = stats.Mean
) -> preprocessing.StatImputer:
    """A River ``StatImputer`` for every feature ``config`` always emits for ``kind``.

    Examples
    --------
    >>> from river import linear_model
    >>> config = FeatureConfig(expected_measurements=("vdd", "idd"), site_feature=False)
    >>> model = (stat_imputer(config, "parametric") | preprocessing.StandardScaler()
    ...          | linear_model.LogisticRegression())
    >>> sorted(name for name, _ in model["StatImputer"].imputers)
    ['@die_radius', 'idd', 'vdd']
    """
    values = config.expected_measurements if kind == "parametric" else config.expected_numeric
    names = [_value_name(name) for name in values]
    if kind == "parametric" and config.spatial:
        names.append("@die_radius")
        if config.wafer_radius is not None:
            names.append("@die_edge")
    return preprocessing.StatImputer(*((name, statistic()) for name in dict.fromkeys(names)))


def _value_name(name: str) -> str:
    return _DERIVED + name if name.startswith(_DERIVED) else name


def _glob(patterns: tuple[str, ...]) -> re.Pattern[str]:
    if not patterns:
        return re.compile(r"(?!)")  # matches nothing
    return re.compile("|".join(fnmatch.translate(p) for p in patterns))
