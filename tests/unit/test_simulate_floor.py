"""The simulated test floor: reproducible, realistic enough, and a meaningful scenario for
active learning (learnable, drifting, with a rare mode a model trained earlier misses)."""

from __future__ import annotations

import copy
import json
import math
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError
from river import linear_model, preprocessing, stats
from river.compose import Pipeline

from stream_al.codec import decode_record
from stream_al.records import ParametricRecord
from stream_al.simulate import FloorConfig, FloorSimulator, SimulatedRecord

RUN = 4000  # a short scenario: the rare mode starts at record 2000


@pytest.fixture(scope="module")
def run() -> list[SimulatedRecord]:
    return list(FloorSimulator(FloorConfig(run_length=RUN), seed=7).stream(RUN))


def _values(records: list[SimulatedRecord], test: str) -> np.ndarray[Any, np.dtype[np.float64]]:
    """One test's results as floats, NaN where missing."""
    return np.array([_float(r.record["measurements"].get(test)) for r in records])


def _float(value: float | None) -> float:
    return math.nan if value is None else value


def _logistic(tests: tuple[str, ...]) -> Pipeline:
    imputer = preprocessing.StatImputer(*[(t, stats.Mean()) for t in tests])
    return imputer | preprocessing.StandardScaler() | linear_model.LogisticRegression()


def test_a_seed_gives_the_same_stream_and_another_seed_a_different_one() -> None:
    config = FloorConfig(run_length=RUN)
    first = list(FloorSimulator(config, seed=11).stream(1500))
    assert first == list(FloorSimulator(config, seed=11).stream(1500))
    other = list(FloorSimulator(config, seed=12).stream(1500))
    assert [r.record["measurements"] for r in first] != [r.record["measurements"] for r in other]


def test_reading_in_chunks_continues_the_same_stream() -> None:
    whole = list(FloorSimulator(seed=5).stream(2100))
    sim = FloorSimulator(seed=5)
    partly = sim.stream(1000)
    head = [next(partly) for _ in range(300)]  # a consumer that stops early
    rest = list(sim.stream(700)) + list(sim.stream(1100))
    assert head + rest == whole


def test_every_record_is_a_valid_parametric_record_after_a_json_round_trip(
    run: list[SimulatedRecord],
) -> None:
    for sim in run:
        decoded = decode_record(json.dumps(sim.record, allow_nan=False).encode())
        assert isinstance(decoded, ParametricRecord)
        assert decoded.record_id == sim.record["record_id"]
        assert decoded.measurements == sim.record["measurements"]
        assert decoded.label is None


def test_a_config_that_would_leave_a_product_untested_is_refused() -> None:
    with pytest.raises(ValidationError, match="each tester runs one product"):
        FloorConfig(products=("A", "B", "C"), testers=2)
    with pytest.raises(ValidationError, match="distinct"):
        FloorConfig(products=("A", "A"))


def test_any_product_name_gets_a_program() -> None:
    config = FloorConfig(products=("ASIC-X", "ASIC-Y"), testers=2, tests_per_product=10)
    records = list(FloorSimulator(config, seed=1).stream(200))
    assert {r.record["product"] for r in records} == {"ASIC-X", "ASIC-Y"}
    assert all(len(r.record["measurements"]) == 10 for r in records)


def test_identity_fields_are_readable_unique_and_ordered(run: list[SimulatedRecord]) -> None:
    records = [r.record for r in run]
    ids = [r["record_id"] for r in records]
    assert len(set(ids)) == len(ids)
    first = records[0]
    assert ids[0] == (f"{first['lot_id']}-{first['wafer_id']}-X{first['die_x']:02d}"
                      f"-Y{first['die_y']:02d}-S{first['site']}-000001")
    stamps = [r["ts"] for r in records]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    assert {r["tester_id"] for r in records} == {f"T-{n:03d}" for n in range(91, 97)}
    assert {r["site"] for r in records} == {1, 2, 3, 4}
    assert len({(r["lot_id"], r["wafer_id"]) for r in records}) > 6  # wafers change


def test_each_product_runs_its_own_program_of_distinct_tests(run: list[SimulatedRecord]) -> None:
    programs: dict[str, set[str]] = {}
    for sim in run:
        record = sim.record
        programs.setdefault(f"{record['product']}|{record['test_program']}", set()).update(
            record["measurements"]
        )
    assert len(programs) == 3
    assert all(len(tests) == 40 for tests in programs.values())
    assert len(set.union(*programs.values())) > 60  # products share only the common tests


def test_the_whole_scenario_fails_8_to_15_percent() -> None:
    # Drift and the rare mode included; lots differ, so pool a few floors.
    config = FloorConfig(run_length=RUN)
    truths = [r.truth for seed in range(3) for r in FloorSimulator(config, seed).stream(RUN)]
    assert 0.08 <= truths.count("fail") / len(truths) <= 0.15


@pytest.mark.parametrize("target", [0.10, 0.20])
def test_the_run_starts_at_the_configured_fail_rate(target: float) -> None:
    # Lots differ, so pool a few floors; 3000 devices of 20000 are before drift and rare mode.
    config = FloorConfig(fail_rate=target)
    truths = [r.truth for seed in range(1, 5) for r in FloorSimulator(config, seed).stream(3000)]
    assert 0.75 * target <= truths.count("fail") / len(truths) <= 1.25 * target


def test_truth_and_hard_bin_agree(run: list[SimulatedRecord]) -> None:
    assert all((r.truth == "pass") == (r.hard_bin == 1) for r in run)
    assert {r.hard_bin for r in run} <= {1, 2, 3, 4, 5, 6, 9}
    assert len({r.hard_bin for r in run}) >= 6


def test_the_rare_mode_appears_only_after_its_start_with_a_new_bin(
    run: list[SimulatedRecord],
) -> None:
    before, after = run[: RUN // 2], run[RUN // 2 :]
    assert all(r.mode == "normal" for r in before)
    assert all(r.hard_bin != 9 for r in before)
    rare = [r for r in after if r.mode == "rare_failure"]
    assert 0.008 <= len(rare) / len(after) <= 0.025
    assert all(r.truth == "fail" for r in rare)
    assert {r.hard_bin for r in after if r.mode == "normal"}.isdisjoint({9})


def test_rare_devices_are_fast_but_not_leaky_and_inside_the_limits() -> None:
    config = FloorConfig(products=("MCU-B3",), run_length=1000, rare_mode_rate=0.05)
    records = list(FloorSimulator(config, seed=6).stream(3000))
    rare = [r for r in records if r.mode == "rare_failure"]
    normal = [r for r in records[500:] if r.mode == "normal"]
    assert sum(r.hard_bin == 9 for r in rare) / len(rare) > 0.8  # no limit catches them
    leak, fmax = _values(normal, "leak_ua"), _values(normal, "fmax_mhz")
    fast = fmax > np.nanmedian(fmax)
    assert np.nanmedian(_values(rare, "fmax_mhz")) > np.nanmedian(fmax)
    # Normally fast silicon leaks more; rare devices leak less than almost any fast one.
    assert np.nanmedian(_values(rare, "leak_ua")) < np.nanpercentile(leak[fast], 5)


def test_the_rare_mode_start_is_configurable() -> None:
    config = FloorConfig(run_length=2000, rare_mode_start=0.25, rare_mode_rate=0.1)
    sim = FloorSimulator(config, seed=1)
    modes = [r.mode for r in sim.stream(1000)]
    assert sim.rare_mode_begins == 500
    assert "rare_failure" not in modes[:500] and modes[500:].count("rare_failure") > 20


def test_missing_results_are_none_never_nan(run: list[SimulatedRecord]) -> None:
    values = [v for r in run for v in r.record["measurements"].values()]
    assert all(v is None or (isinstance(v, float) and math.isfinite(v)) for v in values)
    missing = sum(v is None for v in values) / len(values)
    assert 0.01 < missing < 0.2


def test_a_failing_part_is_not_measured_after_its_failing_group(
    run: list[SimulatedRecord],
) -> None:
    leakage_fails = [r for r in run if r.hard_bin == 2]  # the first group in the flow
    assert leakage_fails
    for sim in leakage_fails:
        measured = [v is not None for v in sim.record["measurements"].values()]
        assert measured[-1] is False and sum(measured) < 15
    passing = [v for r in run if r.truth == "pass" for v in r.record["measurements"].values()]
    assert 0.0 < sum(v is None for v in passing) / len(passing) < 0.03  # random skips only


def test_tests_that_share_a_process_factor_correlate() -> None:
    config = FloorConfig(products=("MCU-B3",))
    records = list(FloorSimulator(config, seed=2).stream(2000))
    ring, fmax, tpd = (_values(records, t) for t in ("ring_osc_mhz", "fmax_mhz", "tpd_ns"))
    both = ~np.isnan(ring) & ~np.isnan(fmax) & ~np.isnan(tpd)
    assert np.corrcoef(ring[both], fmax[both])[0, 1] > 0.5
    assert np.corrcoef(ring[both], tpd[both])[0, 1] < -0.5  # faster silicon, shorter delay


def test_edge_dies_drift_from_the_centre() -> None:
    config = FloorConfig(products=("MCU-B3",), wafer_diameter_dies=18)
    records = list(FloorSimulator(config, seed=4).stream(3000))
    radius = np.array([math.hypot(r.record["die_x"] - 8.5, r.record["die_y"] - 8.5) / 9
                       for r in records])
    ring = _values(records, "ring_osc_mhz")
    edge, centre = ring[radius > 0.85], ring[radius < 0.5]
    assert np.nanmean(edge) < np.nanmean(centre) - 5.0  # edge dies are slower


def test_the_process_drifts_over_the_run_and_stays_put_without_drift() -> None:
    def shift(config: FloorConfig) -> float:
        ring = _values(list(FloorSimulator(config, seed=3).stream(3000)), "ring_osc_mhz")
        tenth = len(ring) // 10
        return float(np.nanmean(ring[-tenth:]) - np.nanmean(ring[:tenth]))

    drifting = FloorConfig(products=("MCU-B3",), run_length=3000)
    still = drifting.model_copy(update={"drift": (0.0, 0.0, 0.0), "walk_sd": 0.0,
                                        "lot_sd": 0.0, "wafer_sd": 0.0})
    assert shift(drifting) > 8.0  # MHz: speed drifts up by ~0.6 sigma
    assert abs(shift(still)) < 4.0


def test_inline_labels_carry_the_truth_for_the_configured_share() -> None:
    config = FloorConfig(inline_label_fraction=0.3)
    records = list(FloorSimulator(config, seed=9).stream(2000))
    labelled = [r for r in records if r.record["label"] is not None]
    assert 0.25 < len(labelled) / len(records) < 0.35
    assert all(r.record["label"] == r.truth for r in labelled)


def test_a_logistic_model_learns_the_floor_but_misses_the_rare_mode_it_never_saw() -> None:
    sim = FloorSimulator(FloorConfig(run_length=RUN), seed=21)
    models = {product: _logistic(p.tests) for product, p in sim.programs.items()}
    before_mode: dict[str, Pipeline] = {}
    scored: list[tuple[bool, bool]] = []  # (truly fails, predicted right), after warm-up
    frozen_calls: dict[str, list[bool]] = {"normal": [], "rare_failure": []}  # said "fail"?
    for i, sim_record in enumerate(sim.stream(RUN + RUN // 2)):
        x, fails = sim_record.record["measurements"], sim_record.truth == "fail"
        model = models[sim_record.record["product"]]
        if i == sim.rare_mode_begins:
            before_mode = copy.deepcopy(models)
        if i >= RUN // 2:
            scored.append((fails, model.predict_one(x) == fails))
        if i >= sim.rare_mode_begins and fails:
            frozen = before_mode[sim_record.record["product"]]
            frozen_calls[sim_record.mode].append(frozen.predict_one(x))
        model.learn_one(x, fails)
    errors = 1 - np.mean([right for _, right in scored])
    minority = min(np.mean([fails for fails, _ in scored]), 1 - np.mean([f for f, _ in scored]))
    assert errors < 0.8 * minority  # prequential, all labels: clearly beats "always pass"
    rare, normal = frozen_calls["rare_failure"], frozen_calls["normal"]
    assert len(rare) > 30 and np.mean(rare) < 0.2  # the rare mode looks like a pass...
    assert np.mean(normal) > 0.3  # ...to a model that does catch ordinary failures
