"""What a person sees of a query: plain JSON-ready dicts for the web page and the terminal.

No I/O here. Two small memories make a card more useful than its request alone:
``ClassBook`` (the classes a model has been asked about or answered with, so a new defect
class typed by one engineer becomes a button for the next) and ``DieAtlas`` (the extent
of each product's die grid, and the dies queried on each wafer, for the wafer map).
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import datetime
from typing import Any, Final

from stream_al.records import OracleRequest, ParametricRecord, TransactionRecord

JSON = dict[str, Any]
#: Dies remembered per wafer for the map (enough for a visible cluster, bounded memory).
_DIES_PER_WAFER: Final = 400
_PARAMETRIC_FIELDS: Final = (
    ("product", "product"), ("lot", "lot_id"), ("wafer", "wafer_id"),
    ("tester", "tester_id"), ("site", "site"), ("program", "test_program"),
)


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


class DieAtlas:
    """Die grid extent per product and the queried dies per wafer."""

    def __init__(self) -> None:
        self._extent: dict[str, tuple[int, int, int, int]] = {}
        self._dies: dict[tuple[str, str | None, str | None], dict[tuple[int, int], None]] = (
            defaultdict(dict))

    def see(self, record: ParametricRecord | TransactionRecord) -> None:
        if not isinstance(record, ParametricRecord) or record.die_x is None or record.die_y is None:
            return
        x, y = record.die_x, record.die_y
        x0, x1, y0, y1 = self._extent.get(record.product, (x, x, y, y))
        self._extent[record.product] = (min(x0, x), max(x1, x), min(y0, y), max(y1, y))
        dies = self._dies[_wafer_key(record)]
        dies[(x, y)] = None
        if len(dies) > _DIES_PER_WAFER:
            del dies[next(iter(dies))]

    def wafer_map(self, record: ParametricRecord | TransactionRecord) -> JSON | None:
        """The die, the product's grid extent and the other queried dies of its wafer."""
        if not isinstance(record, ParametricRecord) or record.die_x is None or record.die_y is None:
            return None
        x0, x1, y0, y1 = self._extent.get(record.product, (record.die_x,) * 2 + (record.die_y,) * 2)
        here = (record.die_x, record.die_y)
        others = [list(die) for die in self._dies.get(_wafer_key(record), {}) if die != here]
        return {"x": here[0], "y": here[1], "min_x": x0, "max_x": x1, "min_y": y0, "max_y": y1,
                "others": others}


def _wafer_key(record: ParametricRecord) -> tuple[str, str | None, str | None]:
    return record.product, record.lot_id, record.wafer_id


def card(request: OracleRequest, classes: list[str], atlas: DieAtlas, now: datetime) -> JSON:
    """Everything the desk shows for one query.

    Examples
    --------
    >>> from datetime import UTC, timedelta
    >>> t = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    >>> rec = ParametricRecord(record_id="r1", ts=t, product="P", die_x=3, die_y=4,
    ...                        measurements={"vdd": 0.9, "leak": None})
    >>> req = OracleRequest(query_id="q-1", record_id="r1", kind="parametric",
    ...     model_key="P", reason="uncertainty", uncertainty=0.9, threshold=0.6,
    ...     proba={"pass": 0.55, "fail": 0.45}, predicted="pass", model_version=7,
    ...     created_at=t, expires_at=t + timedelta(hours=1), record=rec)
    >>> view = card(req, ["fail", "pass"], DieAtlas(), t + timedelta(seconds=30))
    >>> view["measurements"], view["proba"], view["age_s"]
    ([['leak', None], ['vdd', 0.9]], [['fail', 0.45], ['pass', 0.55]], 30.0)
    """
    return {
        **summary(request, now),
        "record_id": request.record_id, "kind": request.kind,
        "threshold": request.threshold, "model_version": request.model_version,
        "expires_at": request.expires_at.isoformat(),
        "expires_in_s": round((request.expires_at - now).total_seconds(), 1),
        "fields": key_fields(request.record),
        "measurements": measurements(request.record),
        "proba": [[name, request.proba.get(name, 0.0)] for name in classes],
        "classes": classes,
        "wafer_map": atlas.wafer_map(request.record),
    }


def summary(request: OracleRequest, now: datetime) -> JSON:
    """The short form, for the queue beside the card."""
    return {
        "query_id": request.query_id, "model_key": request.model_key,
        "reason": request.reason, "uncertainty": request.uncertainty,
        "predicted": request.predicted, "created_at": request.created_at.isoformat(),
        "age_s": round((now - request.created_at).total_seconds(), 1),
    }


def key_fields(record: ParametricRecord | TransactionRecord) -> list[list[str]]:
    """Name/value pairs identifying the device or event, missing ones left out."""
    rows = [["record", record.record_id], ["ts", record.ts.isoformat(" ", "seconds")]]
    if isinstance(record, TransactionRecord):
        return rows + [[name, value] for name, value in sorted(record.categorical.items())]
    named = [[label, str(value)] for label, attr in _PARAMETRIC_FIELDS
             if (value := getattr(record, attr)) is not None]
    if record.die_x is not None and record.die_y is not None:
        named.insert(3, ["die x/y", f"{record.die_x}, {record.die_y}"])
    return named + rows


def measurements(record: ParametricRecord | TransactionRecord) -> list[list[Any]]:
    """Sorted name/value pairs; a skipped test (None or NaN) is ``None``."""
    values = record.measurements if isinstance(record, ParametricRecord) else record.numeric
    return [[name, None if value is None or math.isnan(value) else value]
            for name, value in sorted(values.items())]
