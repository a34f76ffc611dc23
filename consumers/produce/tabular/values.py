"""Cell values from CSV (always text) or JSONL (typed) into record field values.

Each converter returns the value, ``None`` for a missing cell, or a :class:`BadValue`
saying why the cell does not fit; the caller turns that into a problem with the file,
line and column.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

#: Cell texts that mean "no value" (compared lower-case, stripped).
MISSING_TEXTS = frozenset({"", "na", "n/a", "nan", "null", "none"})
#: Epoch numbers above this are milliseconds (1e11 s is the year 5138).
EPOCH_MS_ABOVE = 1e11


@dataclass(frozen=True)
class BadValue:
    """Why a cell cannot fill its field."""

    reason: str


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    return isinstance(value, str) and value.strip().lower() in MISSING_TEXTS


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:40] + "…"


def to_number(value: Any) -> float | None | BadValue:
    """A measurement: a finite float, ``None`` when missing.

    >>> to_number("1.5"), to_number("NA"), to_number("abc")
    (1.5, None, BadValue(reason="'abc' is not a number"))
    """
    if _is_missing(value):
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return BadValue(f"{_show(value)} is not a number")
    try:
        number = float(value)
    except ValueError:
        return BadValue(f"{_show(value)} is not a number")
    return number if math.isfinite(number) else BadValue(f"{_show(value)} is not finite")


def to_int(value: Any) -> int | None | BadValue:
    """A site or die coordinate: an integer, ``None`` when missing.

    >>> to_int("12"), to_int(3.0), to_int("1.5")
    (12, 3, BadValue(reason="'1.5' is not an integer"))
    """
    number = to_number(value)
    if number is None:
        return None
    if isinstance(number, BadValue) or not number.is_integer():
        return BadValue(f"{_show(value)} is not an integer")
    return int(number)


def to_text(value: Any) -> str | None | BadValue:
    """A name or id: stripped text, ``None`` when missing; numbers are written out.

    >>> to_text(" T-093 "), to_text(7), to_text(""), to_text([1])
    ('T-093', '7', None, BadValue(reason='[1] is not text'))
    """
    if _is_missing(value):
        return None
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool) or not isinstance(value, int | float):
        return BadValue(f"{_show(value)} is not text")
    return str(int(value)) if float(value).is_integer() else str(value)


def to_label(value: Any) -> str | None | BadValue:
    """A class label: ``1``, ``1.0`` and ``"1.0"`` are all the class ``"1"``.

    >>> to_label("1.0"), to_label(0), to_label(True), to_label("fail")
    ('1', '0', 'true', 'fail')
    """
    if isinstance(value, bool):
        return str(value).lower()
    number = to_number(value)
    if isinstance(number, float) and number.is_integer():
        return str(int(number))
    return to_text(value)


def to_iso_ts(value: Any) -> str | None | BadValue:
    """A timestamp: ISO 8601 (naive means UTC) or epoch seconds/milliseconds → ISO UTC.

    >>> to_iso_ts("2026-11-24 10:15:02"), to_iso_ts(0), to_iso_ts("soon")
    ('2026-11-24T10:15:02Z', '1970-01-01T00:00:00Z', BadValue(reason="'soon' is not a timestamp"))
    """
    number = to_number(value)
    if number is None:
        return None
    try:
        if isinstance(number, float):
            seconds = number / 1000 if abs(number) > EPOCH_MS_ABOVE else number
            moment = datetime.fromtimestamp(seconds, UTC)
        else:
            moment = datetime.fromisoformat(str(value).strip())
    except (ValueError, OverflowError, OSError):
        return BadValue(f"{_show(value)} is not a timestamp")
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
