"""Features: a pure function of record and config, River-ready, with names that never collide."""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from river import linear_model, preprocessing

from stream_al import features
from stream_al.features import FeatureConfig, FeatureExtractor, extract, stat_imputer
from stream_al.records import MAX_ABS_VALUE, ParametricRecord, TransactionRecord

TS = "2026-11-24T10:15:02Z"
DEFAULT = FeatureConfig()


def device(measurements: Mapping[str, float | None], **fields: Any) -> ParametricRecord:
    return ParametricRecord(
        record_id="r", ts=TS, product="PMIC-A7", measurements=measurements, **fields
    )


def event(numeric: Mapping[str, float | None], categorical: dict[str, str]) -> TransactionRecord:
    return TransactionRecord(record_id="t", ts=TS, numeric=numeric, categorical=categorical)


def test_measurements_pass_through_and_skipped_tests_become_none() -> None:
    x = extract(device({"vdd": 0.9, "idd": None, "leak": math.nan}), DEFAULT)
    assert x == {"vdd": 0.9, "idd": None, "leak": None, "@die_radius": None}


def test_die_radius_is_the_distance_from_the_configured_centre() -> None:
    config = FeatureConfig(wafer_center_x=10.0, wafer_center_y=-2.0)
    x = extract(device({}, die_x=13, die_y=2), config)
    assert x["@die_radius"] == 5.0
    assert "@die_edge" not in x  # no wafer radius: the edge ring is unknown


@pytest.mark.parametrize(("die_x", "edge"), [(0, 0.0), (8, 0.0), (9, 1.0), (10, 1.0), (12, 1.0)])
def test_die_edge_flags_the_outer_ring(die_x: int, edge: float) -> None:
    config = FeatureConfig(wafer_radius=10.0, edge_ring_fraction=0.9)
    assert extract(device({}, die_x=die_x, die_y=0), config)["@die_edge"] == edge


def test_spatial_features_are_none_without_coordinates_and_absent_when_disabled() -> None:
    config = FeatureConfig(wafer_radius=10.0)
    x = extract(device({}, die_x=3), config)
    assert x["@die_radius"] is None and x["@die_edge"] is None
    off = extract(device({}, die_x=3, die_y=4), FeatureConfig(spatial=False, wafer_radius=10.0))
    assert not any(name.startswith("@die") for name in off)


def test_site_and_tester_are_one_hot_flags_that_can_be_turned_off() -> None:
    record = device({"a": 1.0}, site=2, tester_id="T-093")
    assert {"@site=2": 1.0, "@tester=T-093": 1.0}.items() <= extract(record, DEFAULT).items()
    off = extract(record, FeatureConfig(site_feature=False, tester_feature=False))
    assert off == {"a": 1.0, "@die_radius": None}


def test_a_measurement_named_like_a_derived_feature_does_not_collide() -> None:
    record = device(
        {"@die_radius": 7.0, "@site=2": 3.0, "die_radius": 1.0}, site=2, die_x=3, die_y=4
    )
    x = extract(record, DEFAULT)
    assert x["@@die_radius"] == 7.0 and x["@@site=2"] == 3.0 and x["die_radius"] == 1.0
    assert x["@die_radius"] == 5.0 and x["@site=2"] == 1.0


@settings(max_examples=200)
@given(names=st.lists(st.text(alphabet="@ds=i_e", max_size=12), unique=True, max_size=12))
def test_every_measurement_and_derived_feature_gets_its_own_name(names: list[str]) -> None:
    record = device(dict.fromkeys(names, 1.0), site=2, tester_id="T", die_x=1, die_y=1)
    x = extract(record, FeatureConfig(wafer_radius=5.0))
    assert len(x) == len(names) + 4  # @die_radius, @die_edge, @site=2, @tester=T


def test_globs_select_measurements_case_sensitively_and_exclude_wins() -> None:
    config = FeatureConfig(include=("vdd_*", "fmax"), exclude=("*_debug",))
    record = device({"vdd_core": 1.0, "vdd_debug": 2.0, "VDD_io": 3.0, "fmax": 4.0, "idd": 5.0})
    assert extract(record, config) == {"vdd_core": 1.0, "fmax": 4.0, "@die_radius": None}


def test_transactions_give_numeric_values_and_categorical_one_hot_flags() -> None:
    x = extract(
        event({"amount": 12.5, "v1": math.nan}, {"channel": "online", "country": "DE"}), DEFAULT
    )
    assert x == {"amount": 12.5, "v1": None, "@channel=online": 1.0, "@country=DE": 1.0}


def test_transaction_globs_apply_to_numeric_names_and_one_hot_fields() -> None:
    config = FeatureConfig(exclude=("v*",), one_hot=("country",))
    x = extract(event({"amount": 1.0, "v1": 2.0}, {"channel": "web", "country": "DE"}), config)
    assert x == {"amount": 1.0, "@country=DE": 1.0}


def test_a_numeric_field_named_like_a_one_hot_flag_does_not_collide() -> None:
    x = extract(event({"@country=DE": 5.0}, {"country": "DE"}), DEFAULT)
    assert x == {"@@country=DE": 5.0, "@country=DE": 1.0}


def test_expected_names_are_always_present_for_a_stat_imputer() -> None:
    config = FeatureConfig(expected_measurements=("vdd", "@odd"), expected_numeric=("amount",))
    assert extract(device({"idd": 1.0}), config) == {
        "idd": 1.0,
        "vdd": None,
        "@@odd": None,
        "@die_radius": None,
    }
    assert extract(event({}, {}), config) == {"amount": None}


def test_stat_imputer_covers_exactly_what_extract_may_leave_none() -> None:
    config = FeatureConfig(expected_measurements=("vdd", "@odd"), wafer_radius=9.0)
    imputer = stat_imputer(config, "parametric")
    assert [name for name, _ in imputer.imputers] == ["vdd", "@@odd", "@die_radius", "@die_edge"]
    assert [name for name, _ in stat_imputer(config, "transaction").imputers] == []


def test_extract_is_pure_and_equal_configs_give_equal_features() -> None:
    record = device({"a": 1.0, "b": math.nan}, site=1, tester_id="T", die_x=2, die_y=3)
    before = record.model_dump()
    twins = [FeatureConfig(exclude=("b",)), FeatureConfig(exclude=("b",))]
    results = [extract(record, config) for config in twins * 2]
    results.append(FeatureExtractor(twins[0])(record))
    assert all(result == results[0] for result in results)
    assert extract(record, DEFAULT) != results[0]  # the cache keeps configs apart
    assert record.model_dump().keys() == before.keys() and record.measurements.keys() == {"a", "b"}
    assert math.isnan(record.measurements["b"] or 0.0)  # the record itself is untouched


def test_the_name_cache_is_bounded_and_stays_correct_when_cleared(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(features, "_NAME_CACHE_SIZE", 3)
    extractor = FeatureExtractor(FeatureConfig(exclude=("skip*",)))
    for round_ in range(3):
        names = {f"m{round_}_{i}": float(i) for i in range(5)} | {"skip_me": 1.0}
        x = extractor(device(names))
        assert x == {name: value for name, value in names.items() if name != "skip_me"} | {
            "@die_radius": None
        }
        assert len(extractor._names) <= 3


@settings(max_examples=200)
@given(
    values=st.dictionaries(
        st.text(max_size=8),
        st.none() | st.just(math.nan)
        | st.floats(min_value=-MAX_ABS_VALUE, max_value=MAX_ABS_VALUE),
        max_size=10,
    )
)
def test_no_nan_ever_leaves_extract(values: dict[str, float | None]) -> None:
    for record in (device(values, die_x=1, die_y=2), event(values, {"c": "v"})):
        x = extract(record, FeatureConfig(wafer_radius=3.0))
        assert all(v is None or (isinstance(v, float) and not math.isnan(v)) for v in x.values())


@pytest.mark.parametrize(
    "bad",
    [
        {"edge_ring_fraction": 0.0},
        {"edge_ring_fraction": 1.5},
        {"wafer_radius": 0.0},
        {"wafer_radius": math.inf},
        {"wafer_center_x": math.nan},
        {"includes": ("*",)},
    ],
)
def test_a_bad_feature_config_is_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        FeatureConfig.model_validate(bad)


def floor(n: int, seed: int = 3) -> list[tuple[ParametricRecord, bool]]:
    """Devices fail when leakage is high; a fifth of each test is skipped at random."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        leak, vdd = rng.gauss(0.5, 0.2), rng.gauss(0.9, 0.02)
        measurements: dict[str, float | None] = {"leak_ua": leak, "vdd_core_v": vdd}
        for name in measurements:
            if rng.random() < 0.2:
                measurements[name] = rng.choice([None, math.nan])
        if rng.random() < 0.1:
            del measurements["vdd_core_v"]  # a test the program left out entirely
        record = device(measurements, die_x=rng.randint(-10, 10), die_y=rng.randint(-10, 10))
        rows.append((record.model_copy(update={"record_id": f"d{i}"}), leak > 0.55))
    return rows


def test_a_river_pipeline_with_stat_imputer_learns_from_records_with_skipped_tests() -> None:
    config = FeatureConfig(expected_measurements=("leak_ua", "vdd_core_v"), wafer_radius=10.0)
    model = (
        stat_imputer(config, "parametric")
        | preprocessing.StandardScaler()
        | linear_model.LogisticRegression()
    )
    rows = floor(3000)
    hits = []
    for record, failed in rows:
        x = extract(record, config)
        hits.append(model.predict_one(x) == failed)
        model.learn_one(x, failed)
    weights = model["LogisticRegression"].weights
    assert all(math.isfinite(w) for w in weights.values())
    late_accuracy = sum(hits[-1000:]) / 1000
    assert (
        late_accuracy > 0.75
    )  # leakage is seen in ~80 % of devices: well above the ~60 % base rate
