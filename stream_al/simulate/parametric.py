"""Turn a batch of simulated devices into DESIGN §2 parametric records."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from stream_al.simulate.base import BoolArray, IntArray, SimulatedRecord, iso_timestamps
from stream_al.simulate.layout import Placement, WaferMap

RARE_MODE = "rare_failure"
NORMAL_MODE = "normal"


@dataclass(frozen=True, slots=True, eq=False)
class DeviceBatch:
    """Everything known about a batch of consecutive devices, one entry per device."""

    device: IntArray  # sequence numbers, consecutive
    placement: Placement
    product: IntArray  # index into the product names
    hard_bin: IntArray
    rare: BoolArray
    inline: BoolArray  # the record arrives already labelled
    measurements: list[dict[str, float | None]]


@dataclass(frozen=True, slots=True)
class RecordStyle:
    """How records are named and timed on this floor."""

    products: tuple[str, ...]
    programs: tuple[str, ...]
    wafer: WaferMap
    start: datetime
    interval_ms: int
    first_tester_number: int


def to_records(batch: DeviceBatch, style: RecordStyle) -> list[SimulatedRecord]:
    """One ``SimulatedRecord`` per device, in sequence order."""
    where = batch.placement
    columns = zip(
        batch.device.tolist(),
        iso_timestamps(style.start, int(batch.device[0]), len(batch.device), style.interval_ms),
        batch.product.tolist(),
        where.tester.tolist(),
        where.site.tolist(),
        where.lot.tolist(),
        where.wafer_in_lot.tolist(),
        style.wafer.x[where.die].tolist(),
        style.wafer.y[where.die].tolist(),
        batch.hard_bin.tolist(),
        batch.rare.tolist(),
        batch.inline.tolist(),
        batch.measurements,
        strict=True,
    )
    return [_record(style, *row) for row in columns]


def _record(
    style: RecordStyle, seq: int, ts: str, product: int, tester: int, site: int, lot: int,
    wafer: int, x: int, y: int, hard_bin: int, rare: bool, inline: bool,
    measurements: dict[str, float | None],
) -> SimulatedRecord:
    lot_id, wafer_id = f"L{1000 + lot}", f"W{wafer + 1:02d}"
    truth = "pass" if hard_bin == 1 else "fail"
    record: dict[str, Any] = {
        "schema_version": 1,
        "kind": "parametric",
        "record_id": f"{lot_id}-{wafer_id}-X{x:02d}-Y{y:02d}-S{site + 1}-{seq + 1:06d}",
        "ts": ts,
        "product": style.products[product],
        "test_program": style.programs[product],
        "tester_id": f"T-{style.first_tester_number + tester:03d}",
        "site": site + 1,
        "lot_id": lot_id,
        "wafer_id": wafer_id,
        "die_x": x,
        "die_y": y,
        "measurements": measurements,
        "label": truth if inline else None,
    }
    return SimulatedRecord(record, truth, hard_bin, RARE_MODE if rare else NORMAL_MODE)
