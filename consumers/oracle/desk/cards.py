"""What a person sees of a query: plain JSON-ready dicts for the web page and the terminal.

No I/O here. Three small memories make a card more useful than its request alone:
``ClassBook`` (the classes a model has been asked about or answered with, so a new defect
class typed by one engineer becomes a button for the next), ``DieAtlas`` (the extent of
each product's die grid, the dies queried on each wafer and the labels they got, for the
wafer map) and ``Population`` (a running mean and spread of each measurement per
product, so a card says how unusual a value is).

Everything read from a record is untrusted: optional fields written by newer producers
(``limits``, ``hard_bin``, ``soft_bin``, ``failed_tests``, ``retest``, ``no_parametric``)
are read defensively, since older records lack them and a producer may send anything,
and every string is cut to a bounded length.
"""

from __future__ import annotations

import math
from collections import OrderedDict, defaultdict
from datetime import datetime
from typing import Any, Final

from pydantic import BaseModel

from stream_al.records import OracleRequest, ParametricRecord, TransactionRecord

JSON = dict[str, Any]
#: Dies remembered per wafer for the map (enough for a visible cluster, bounded memory).
_DIES_PER_WAFER: Final = 400
#: Longest string from a record put on a card, and most rows of a list.
TEXT_MAX: Final = 120
MEASUREMENTS_MAX: Final = 500
FAILED_TESTS_MAX: Final = 20
INFLUENCES_MAX: Final = 8
#: The population: records weighed as if the last ``_WINDOW`` counted (older ones fade),
#: ``_MIN_SEEN`` of them before a z-score is shown, and bounded products and names.
_WINDOW: Final = 500
_MIN_SEEN: Final = 10
_PRODUCTS_MAX: Final = 200
_NAMES_MAX: Final = 2_000
_PARAMETRIC_FIELDS: Final = (
    ("product", "product"), ("lot", "lot_id"), ("wafer", "wafer_id"),
    ("tester", "tester_id"), ("site", "site"), ("program", "test_program"),
)


def bounded(value: object, limit: int = TEXT_MAX) -> str:
    """``str(value)``, cut to ``limit`` characters (an ellipsis says it was)."""
    text = str(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"


class ClassBook:
    """Classes per model key, in name order so a key means the same class on every card
    (and in every desk and terminal)."""

    def __init__(self) -> None:
        self._classes: dict[str, set[str]] = defaultdict(set)

    def see_request(self, request: OracleRequest) -> None:
        self._classes[request.model_key].update(request.proba)
        if request.predicted is not None:
            self._classes[request.model_key].add(request.predicted)

    def see_label(self, model_key: str, label: str) -> None:
        self._classes[model_key].add(label)

    def classes(self, model_key: str) -> list[str]:
        return sorted(self._classes.get(model_key, ()))


WaferKey = tuple[str, str | None, str | None]


class DieAtlas:
    """Die grid extent per product, the queried dies per wafer and their known labels."""

    def __init__(self) -> None:
        self._extent: dict[str, tuple[int, int, int, int]] = {}
        # die → its label once known (None until then), oldest first
        self._dies: dict[WaferKey, dict[tuple[int, int], str | None]] = defaultdict(dict)

    def see(self, record: ParametricRecord | TransactionRecord) -> None:
        if not isinstance(record, ParametricRecord) or record.die_x is None or record.die_y is None:
            return
        x, y = record.die_x, record.die_y
        x0, x1, y0, y1 = self._extent.get(record.product, (x, x, y, y))
        self._extent[record.product] = (min(x0, x), max(x1, x), min(y0, y), max(y1, y))
        dies = self._dies[_wafer_key(record)]
        dies.setdefault((x, y), None)
        if len(dies) > _DIES_PER_WAFER:
            del dies[next(iter(dies))]

    def see_label(self, record: ParametricRecord | TransactionRecord, label: str) -> None:
        """The die of ``record`` was labelled ``label`` (here or elsewhere)."""
        if not isinstance(record, ParametricRecord) or record.die_x is None or record.die_y is None:
            return
        dies = self._dies.get(_wafer_key(record))
        if dies is not None and (record.die_x, record.die_y) in dies:
            dies[(record.die_x, record.die_y)] = bounded(label)

    def wafer_map(self, record: ParametricRecord | TransactionRecord) -> JSON | None:
        """The die, the product's grid extent and the other queried dies of its wafer
        (``[x, y, label or None]``)."""
        if not isinstance(record, ParametricRecord) or record.die_x is None or record.die_y is None:
            return None
        x0, x1, y0, y1 = self._extent.get(record.product, (record.die_x,) * 2 + (record.die_y,) * 2)
        here = (record.die_x, record.die_y)
        others = [[x, y, label] for (x, y), label in self._dies.get(_wafer_key(record), {}).items()
                  if (x, y) != here]
        return {"x": here[0], "y": here[1], "min_x": x0, "max_x": x1, "min_y": y0, "max_y": y1,
                "others": others}


def _wafer_key(record: ParametricRecord) -> WaferKey:
    return record.product, record.lot_id, record.wafer_id


class Population:
    """A running mean and variance of each measurement per product, over roughly the
    last ``_WINDOW`` records the desk was asked about (exponentially weighted, so memory
    stays one pair of numbers per name); the least recently seen product is forgotten
    beyond ``_PRODUCTS_MAX``, and names beyond ``_NAMES_MAX`` per product are not kept.

    >>> population = Population()
    >>> for value in [1.0, 2.0, 3.0] * 10:
    ...     population.see_values("P", {"vdd": value})
    >>> round(population.z("P", "vdd", 4.0), 1), population.z("P", "other", 1.0)
    (2.4, None)
    """

    def __init__(self) -> None:
        # product → name → [count, mean, variance]
        self._stats: OrderedDict[str, dict[str, list[float]]] = OrderedDict()

    def see(self, record: ParametricRecord | TransactionRecord) -> None:
        if isinstance(record, ParametricRecord):
            self.see_values(record.product, record.measurements)

    def see_values(self, product: str, values: dict[str, float | None]) -> None:
        stats = self._stats.get(product)
        if stats is None:
            stats = self._stats[product] = {}
            if len(self._stats) > _PRODUCTS_MAX:
                self._stats.popitem(last=False)
        self._stats.move_to_end(product)
        for name, value in values.items():
            if value is None or not math.isfinite(value):
                continue
            entry = stats.get(name)
            if entry is None:
                if len(stats) >= _NAMES_MAX:
                    continue
                stats[name] = [1.0, value, 0.0]
                continue
            entry[0] += 1
            weight = max(1.0 / entry[0], 1.0 / _WINDOW)
            delta = value - entry[1]
            entry[1] += weight * delta
            entry[2] = (1 - weight) * (entry[2] + weight * delta * delta)

    def scores(self, record: ParametricRecord | TransactionRecord) -> dict[str, float]:
        """The z-score of each of ``record``'s values (those that have one), against the
        population as it stood before this record: a value is not judged against itself."""
        if not isinstance(record, ParametricRecord):
            return {}
        found = {}
        for name, value in record.measurements.items():
            if value is not None and math.isfinite(value):
                z = self.z(record.product, name, value)
                if z is not None:
                    found[name] = round(z, 2)
        return found

    def z(self, product: str, name: str, value: float) -> float | None:
        """How many standard deviations ``value`` is from the population's mean; None
        until enough records were seen, or when they never varied."""
        entry = self._stats.get(product, {}).get(name)
        if entry is None or entry[0] < _MIN_SEEN or entry[2] <= 0:
            return None
        return (value - entry[1]) / math.sqrt(entry[2])


def card(request: OracleRequest, classes: list[str], atlas: DieAtlas, now: datetime,
         scores: dict[str, float] | None = None) -> JSON:
    """Everything the desk shows for one query.

    Examples
    --------
    >>> from datetime import UTC, timedelta
    >>> t = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    >>> rec = ParametricRecord(record_id="r1", ts=t, product="P", die_x=3, die_y=4,
    ...                        measurements={"vdd": 0.9, "leak": None},
    ...                        limits={"vdd": {"lo": 0.95, "hi": 1.05, "units": "V"}})
    >>> req = OracleRequest(query_id="q-1", record_id="r1", kind="parametric",
    ...     model_key="P", reason="uncertainty", uncertainty=0.9, threshold=0.6,
    ...     proba={"pass": 0.55, "fail": 0.45}, predicted="pass", model_version=7,
    ...     created_at=t, expires_at=t + timedelta(hours=1), record=rec)
    >>> view = card(req, ["fail", "pass"], DieAtlas(), t + timedelta(seconds=30))
    >>> [(m["name"], m["value"], m["out"]) for m in view["measurements"]]
    [('vdd', 0.9, 'low'), ('leak', None, None)]
    >>> view["proba"], view["age_s"]
    ([['fail', 0.45], ['pass', 0.55]], 30.0)
    """
    record = request.record
    values = measurements(record, scores)
    return {
        **summary(request, now),
        "record_id": bounded(request.record_id), "kind": request.kind,
        "threshold": request.threshold, "model_version": request.model_version,
        "expires_at": request.expires_at.isoformat(),
        "expires_in_s": round((request.expires_at - now).total_seconds(), 1),
        "fields": key_fields(record),
        "measurements": values[:MEASUREMENTS_MAX],
        "measurements_total": len(values),
        "outcome": outcome(record),
        # A warm-up card has no model behind it: no bars at 0.000 pretending to be one.
        "proba": [[name, request.proba.get(name, 0.0)] for name in classes] if request.proba
        else [],
        "classes": classes,
        "wafer_map": atlas.wafer_map(record),
        "influences": influences(request),
    }


def summary(request: OracleRequest, now: datetime) -> JSON:
    """The short form, for the queue beside the card."""
    return {
        "query_id": request.query_id, "model_key": bounded(request.model_key),
        "reason": request.reason, "uncertainty": request.uncertainty,
        "predicted": None if request.predicted is None else bounded(request.predicted),
        "created_at": request.created_at.isoformat(),
        "age_s": round((now - request.created_at).total_seconds(), 1),
    }


def key_fields(record: ParametricRecord | TransactionRecord) -> list[list[str]]:
    """Name/value pairs identifying the device or event, missing ones left out."""
    rows = [["record", bounded(record.record_id)], ["ts", record.ts.isoformat(" ", "seconds")]]
    if isinstance(record, TransactionRecord):
        return rows + [[bounded(name), bounded(value)]
                       for name, value in sorted(record.categorical.items())]
    named = [[label, bounded(value)] for label, attr in _PARAMETRIC_FIELDS
             if (value := getattr(record, attr)) is not None]
    if record.die_x is not None and record.die_y is not None:
        named.insert(3, ["die x/y", f"{record.die_x}, {record.die_y}"])
    return named + rows


def measurements(record: ParametricRecord | TransactionRecord,
                 scores: dict[str, float] | None = None) -> list[JSON]:
    """Each value with its limits, units, whether it is out of them (``low``/``high``)
    and its z-score (``scores``, from ``Population.scores``); out-of-limit ones first,
    then by name. A skipped test (None or NaN) has value None."""
    if isinstance(record, ParametricRecord):
        values, limits = record.measurements, _limits(record)
    else:
        values, limits = record.numeric, {}
    scores = scores or {}
    rows = []
    for name, raw in values.items():
        value = None if raw is None or math.isnan(raw) else raw
        lo, hi, units = limits.get(name, (None, None, None))
        out = None if value is None else "low" if lo is not None and value < lo else \
            "high" if hi is not None and value > hi else None
        rows.append({"name": bounded(name), "value": value, "lo": lo, "hi": hi,
                     "units": units, "out": out, "z": scores.get(name)})
    rows.sort(key=lambda row: (row["out"] is None, row["name"]))
    return rows


def _limits(record: ParametricRecord) -> dict[str, tuple[float | None, float | None, str | None]]:
    """``record.limits`` as name → (lo, hi, units), whatever shape it arrived in."""
    given = getattr(record, "limits", None)
    if not isinstance(given, dict):
        return {}
    found = {}
    for name, limit in given.items():
        if limit is not None:
            found[str(name)] = (_number(_field(limit, "lo")), _number(_field(limit, "hi")),
                                _text(_field(limit, "units"), 24))
    return found


def _field(value: object, name: str) -> object:
    """A field of a dict or of a model the record's codec built (newer records)."""
    return value.get(name) if isinstance(value, dict) else getattr(value, name, None)


def outcome(record: ParametricRecord | TransactionRecord) -> JSON:
    """Bins, failing tests and flags, where the record carries them."""
    if not isinstance(record, ParametricRecord):
        return {}
    failed = getattr(record, "failed_tests", None)
    names = [bounded(name) for name in failed[:FAILED_TESTS_MAX]] if isinstance(failed, list) \
        else None
    found = {"hard_bin": _integer(getattr(record, "hard_bin", None)),
             "soft_bin": _integer(getattr(record, "soft_bin", None)),
             "failed_tests": names,
             "failed_tests_total": len(failed) if isinstance(failed, list) else None,
             "retest": getattr(record, "retest", None) is True,
             "no_parametric": getattr(record, "no_parametric", None) is True}
    return {key: value for key, value in found.items() if value not in (None, False)}


def influences(request: OracleRequest) -> list[JSON]:
    """The model's most influential features for this prediction, if the request names
    them (``influences``: the daemon sends them for linear templates, and a tree's
    decision path, each step with its ``test`` and the record's value or null)."""
    given = getattr(request, "influences", None)
    if not isinstance(given, list):
        return []
    found = []
    for item in given[:INFLUENCES_MAX]:
        # Typed (Influence) from today's daemon; a plain mapping from an older one.
        fields = item.model_dump() if isinstance(item, BaseModel) else item
        if not isinstance(fields, dict):
            continue
        weight, test = _number(fields.get("weight")), fields.get("test")
        if isinstance(test, str) and test:
            found.append({"feature": bounded(fields.get("feature", "?")), "weight": weight,
                          "test": bounded(test)})
        elif weight is not None:
            found.append({"feature": bounded(fields.get("feature", "?")), "weight": weight})
    return found


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _integer(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _text(value: object, limit: int) -> str | None:
    return bounded(value, limit) if isinstance(value, str) and value else None
