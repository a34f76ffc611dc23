"""What every simulator yields, and the seeded building blocks they share."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

#: Where simulated time starts unless a config says otherwise (a fixed date keeps runs
#: reproducible and comparable).
DEFAULT_START = datetime(2026, 11, 24, 6, 0, 0, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class SimulatedRecord:
    """One simulated input record plus the ground truth only the simulator knows.

    Parameters
    ----------
    record
        A DESIGN §2 record as a JSON-ready dict (``label`` is usually ``None``).
    truth
        The true class (``"pass"``/``"fail"`` or ``"ok"``/``"fraud"``).
    hard_bin
        The tester's hard bin (1 = pass); 0 where bins do not apply.
    mode
        The regime that produced the record, for evaluation only (e.g. ``"normal"``).

    Examples
    --------
    >>> r = SimulatedRecord({"record_id": "r1", "label": None}, "pass", 1, "normal")
    >>> r.truth, r.record["label"] is None
    ('pass', True)
    """

    record: dict[str, Any]
    truth: str
    hard_bin: int
    mode: str


def substream(seed: int, *keys: int) -> np.random.Generator:
    """A generator that depends only on ``seed`` and ``keys`` (non-negative integers).

    Keying draws by what they describe (a block of devices, a lot, a wafer) makes a
    simulated stream the same whatever batch sizes it is read in.

    Examples
    --------
    >>> a = substream(7, 1, 2).normal()
    >>> a == substream(7, 1, 2).normal() != substream(7, 1, 3).normal()
    True
    >>> bool(substream(7, 1).normal() != substream(7, 1, 0).normal())
    True
    """
    # NumPy's SeedSequence ignores trailing zeros ([7, 1] and [7, 1, 0] give one stream):
    # a final word holding the number of keys keeps every key tuple distinct.
    return np.random.default_rng([seed, *keys, len(keys) + 1])


def iso_timestamps(start: datetime, first: int, count: int, interval_ms: int) -> list[str]:
    """ISO-8601 UTC timestamps (ms, ``Z``) of ``count`` events ``interval_ms`` apart.

    Vectorised, because formatting one ``datetime`` per record would dominate the cost.

    Examples
    --------
    >>> iso_timestamps(DEFAULT_START, 2, 2, 50)
    ['2026-11-24T06:00:00.100Z', '2026-11-24T06:00:00.150Z']
    """
    origin = np.datetime64(start.astimezone(UTC).replace(tzinfo=None), "ms")
    offsets = (np.arange(first, first + count, dtype=np.int64) * interval_ms).astype("m8[ms]")
    text = np.datetime_as_string(origin + offsets, unit="ms")
    return [f"{t}Z" for t in text.tolist()]


def nan_to_none(values: FloatArray) -> list[list[float | None]]:
    """Rows of ``values`` as Python lists with NaN replaced by ``None`` (JSON null).

    Examples
    --------
    >>> nan_to_none(np.array([[1.5, np.nan]]))
    [[1.5, None]]
    """
    cells = values.astype(object)
    cells[np.isnan(values)] = None
    rows: list[list[float | None]] = cells.tolist()
    return rows
