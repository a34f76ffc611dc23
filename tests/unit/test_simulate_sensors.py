"""Equipment sensor columns: uninformative by construction, and added without changing
anything else the floor simulator writes."""

from __future__ import annotations

import numpy as np

from stream_al.simulate.base import SimulatedRecord
from stream_al.simulate.floor import FloorConfig, FloorSimulator
from stream_al.simulate.sensors import CONSTANT, NOISE, SPARSE, EquipmentSensors


def _records(sensors: int, n: int = 600) -> list[SimulatedRecord]:
    return list(FloorSimulator(FloorConfig(run_length=n, sensor_columns=sensors), seed=4)
                .stream(n))


def test_sensor_columns_change_nothing_else_about_the_parts() -> None:
    plain, wide = _records(0), _records(120)
    for a, b in zip(plain, wide, strict=True):
        sensors = {k: v for k, v in b.record["measurements"].items() if k.startswith("eq_")}
        assert len(sensors) == 120
        tests = {k: v for k, v in b.record["measurements"].items() if k not in sensors}
        assert tests == a.record["measurements"]
        assert (a.truth, a.hard_bin, a.mode) == (b.truth, b.hard_bin, b.mode)
        assert {k: v for k, v in a.record.items() if k != "measurements"} == \
            {k: v for k, v in b.record.items() if k != "measurements"}


def test_constant_columns_never_move_sparse_ones_are_mostly_missing_noise_moves() -> None:
    sensors = EquipmentSensors.draw(200, np.random.default_rng(3))
    out: list[dict[str, float | None]] = [{} for _ in range(2_000)]
    sensors.read(np.arange(2_000), out, np.random.default_rng(5))
    kinds = dict(zip(sensors.names, sensors.kind.tolist(), strict=True))
    assert {CONSTANT, SPARSE, NOISE} == set(kinds.values())
    for name, kind in kinds.items():
        values = [row[name] for row in out]
        written = [v for v in values if v is not None]
        if kind == CONSTANT:
            assert len(written) == len(values) and len(set(written)) == 1
        elif kind == SPARSE:
            assert 0 < len(written) < 0.3 * len(values)
        else:
            assert len(written) == len(values) and len(set(written)) > 100


def test_the_sensors_say_nothing_about_the_truth() -> None:
    records = _records(60, n=4_000)
    fails = np.array([r.truth == "fail" for r in records])
    assert 0.02 < fails.mean() < 0.3
    for name in (f"eq_{i:03d}" for i in range(60)):
        values = np.array([r.record["measurements"][name] for r in records], dtype=float)
        known = ~np.isnan(values)
        if known.sum() < 200 or np.std(values[known]) == 0:
            continue
        correlation = np.corrcoef(values[known], fails[known])[0, 1]
        assert abs(correlation) < 0.1, name
