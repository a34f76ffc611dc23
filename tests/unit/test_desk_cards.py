"""What a card shows beyond the request itself: limits and units beside each value, values
out of their limits marked and put first, z-scores against the product's recent
population, bins and failing tests, no bars for a model that has not predicted yet, the
labels of neighbouring dies, and bounded text whatever a record carries."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from consumers.oracle.desk.cards import JSON, TEXT_MAX, DieAtlas, Population, bounded, card
from stream_al.codec import decode_request, encode
from stream_al.errors import DecodeError
from stream_al.records import OracleLabel, OracleRequest, ParametricRecord
from tests.desk_support import RecordingDesk
from tests.desk_support import oracle_request as ask

LIMITS = {"vdd_core_v": {"lo": 0.95, "hi": 1.05, "units": "V"},
          "idd_static_ma": {"lo": None, "hi": 1.0, "units": "mA"},
          "fmax_mhz": {"lo": 2000.0, "hi": None, "units": None}}


def with_fields(request: OracleRequest, **fields: object) -> OracleRequest:
    """``request`` with extra record fields, through the codec as the desk reads it."""
    record = ParametricRecord.model_validate(request.record.model_dump(mode="json") | fields)
    return decode_request(encode(request.model_copy(update={"record": record})))


def rows_of(view: JSON) -> dict[str, JSON]:
    return {row["name"]: row for row in view["measurements"]}


def z_of(population: Population, product: str, name: str, value: float) -> float:
    z = population.z(product, name, value)
    assert z is not None, f"{product}/{name}: no z-score"
    return z


def test_each_value_is_shown_beside_its_limits_and_out_of_limit_ones_come_first() -> None:
    request = with_fields(ask(1), limits=LIMITS)
    view = card(request, ["fail", "pass"], DieAtlas(), datetime.now(UTC))
    rows = rows_of(view)
    assert (rows["vdd_core_v"]["lo"], rows["vdd_core_v"]["hi"], rows["vdd_core_v"]["units"]) \
        == (0.95, 1.05, "V")
    assert rows["vdd_core_v"]["out"] == "low"          # 0.9012 < 0.95
    assert rows["idd_static_ma"]["out"] == "high"      # 1.23 > 1.0
    assert rows["fmax_mhz"]["out"] is None              # 2034.5 ≥ 2000, no upper limit
    assert rows["leak_ua"]["out"] is None and rows["leak_ua"]["lo"] is None
    assert [row["name"] for row in view["measurements"]][:2] == ["idd_static_ma", "vdd_core_v"]


def test_records_without_the_new_fields_or_with_nonsense_in_them_still_make_a_card() -> None:
    plain = card(ask(1), ["fail", "pass"], DieAtlas(), datetime.now(UTC))
    assert plain["outcome"] == {}
    assert all(row["lo"] is None and row["out"] is None for row in plain["measurements"])
    # Built without validation: the shapes a producer of another version might send.
    base = ask(2)
    record = ParametricRecord.model_construct(**(dict(base.record) | {
        "limits": {"vdd_core_v": {"lo": "low", "hi": True, "units": 7}, "fmax_mhz": "3"},
        "hard_bin": "7", "failed_tests": "all", "retest": "yes"}))
    odd = base.model_copy(update={"record": record})
    view = card(odd, ["fail", "pass"], DieAtlas(), datetime.now(UTC))
    assert view["outcome"] == {}
    assert rows_of(view)["vdd_core_v"]["lo"] is None


def test_bins_failing_tests_and_flags_are_shown_and_bounded() -> None:
    failing = [f"t{n}" for n in range(30)]
    request = with_fields(ask(1), hard_bin=7, soft_bin=712, failed_tests=failing, retest=True,
                          no_parametric=False)
    outcome = card(request, ["fail", "pass"], DieAtlas(), datetime.now(UTC))["outcome"]
    assert outcome == {"hard_bin": 7, "soft_bin": 712, "failed_tests": failing[:20],
                       "failed_tests_total": 30, "retest": True}


def test_a_warm_up_card_has_no_prediction_bars() -> None:
    warm = ask(1, reason="warmup").model_copy(update={"proba": {}, "predicted": None})
    assert card(warm, ["fail", "pass"], DieAtlas(), datetime.now(UTC))["proba"] == []
    assert card(ask(2), ["fail", "pass"], DieAtlas(), datetime.now(UTC))["proba"] == [
        ["fail", 0.48], ["pass", 0.52]]


def test_the_z_score_says_how_far_a_value_is_from_the_products_recent_population() -> None:
    population = Population()
    for n in range(200):
        population.see_values("P", {"vdd": 1.0 + 0.01 * (n % 5 - 2)})  # sd ≈ 0.0141
    assert abs(z_of(population, "P", "vdd", 1.0)) < 0.1
    assert 6.5 < z_of(population, "P", "vdd", 1.1) < 7.5
    assert population.z("P", "idd", 1.0) is None and population.z("Q", "vdd", 1.0) is None
    for _ in range(3000):  # the population moves: the old mean is forgotten
        population.see_values("P", {"vdd": 2.0 + 0.01 * (_ % 3 - 1)})
    assert abs(z_of(population, "P", "vdd", 2.0)) < 0.5


def test_the_desk_scores_a_card_against_the_requests_it_has_read() -> None:
    desk = RecordingDesk()
    for n in range(30):
        request = ask(100 + n)
        assert isinstance(request.record, ParametricRecord)
        values = dict(request.record.measurements) | {"vdd_core_v": 0.90 + 0.001 * (n % 3)}
        desk.feed(request.model_copy(update={"record": request.record.model_copy(
            update={"measurements": values})}))
    outlier = ask(1, uncertainty=0.99)
    record = outlier.record.model_copy(update={"measurements": {"vdd_core_v": 0.95}})
    desk.feed(outlier.model_copy(update={"record": record}))
    view = desk.view("h", "ann")["card"]
    assert view["query_id"] == outlier.query_id
    assert rows_of(view)["vdd_core_v"]["z"] > 10


def test_neighbours_known_labels_are_on_the_wafer_map() -> None:
    desk = RecordingDesk()
    here, near, far = ask(1, uncertainty=0.9), ask(2, uncertainty=0.8), ask(3, uncertainty=0.7)
    desk.feed(here, near, far)
    label = OracleLabel(query_id=near.query_id, label="fail", labeler="bob",
                        labeled_at=datetime.now(UTC))
    desk.state.read_label(encode(label), "test")
    wafer = desk.view("h", "ann")["card"]["wafer_map"]
    assert (wafer["x"], wafer["y"]) == (1, 3)
    assert sorted(map(tuple, wafer["others"])) == [(2, 4, "fail"), (3, 5, None)]


def test_strings_from_a_record_are_bounded() -> None:
    long = "x" * 250
    request = with_fields(ask(1), failed_tests=[long])
    record = request.record.model_copy(update={"measurements": {"y" * 5000: 1.0},
                                               "lot_id": long})
    view = card(request.model_copy(update={"record": record}), [], DieAtlas(), datetime.now(UTC))
    assert len(view["measurements"][0]["name"]) == TEXT_MAX
    assert all(len(value) <= TEXT_MAX for _, value in view["fields"])
    assert len(view["outcome"]["failed_tests"][0]) == TEXT_MAX
    assert bounded("abc", 2) == "a…"


def test_influential_features_are_shown_only_when_the_request_carries_them() -> None:
    assert card(ask(1), [], DieAtlas(), datetime.now(UTC))["influences"] == []
    given = ask(1).model_dump(mode="json") | {"influences": [
        {"feature": "vdd_core_v", "weight": -1.5}, {"feature": "leak_ua", "weight": 0.25}]}
    request = decode_request(encode(OracleRequest.model_validate(given)))
    assert card(request, [], DieAtlas(), datetime.now(UTC))["influences"] == [
        {"feature": "vdd_core_v", "weight": -1.5}, {"feature": "leak_ua", "weight": 0.25}]


def test_a_request_with_a_malformed_influence_never_reaches_a_card() -> None:
    forged = ask(1).model_dump(mode="json") | {"influences": [{"feature": "x",
                                                               "weight": "big"}]}
    with pytest.raises(DecodeError, match="influences"):
        decode_request(json.dumps(forged).encode())


def test_a_trees_decision_path_reaches_the_card_with_its_tests() -> None:
    given = ask(1).model_dump(mode="json") | {"influences": [
        {"feature": "vdd_core_v", "weight": 0.91, "test": "≤ 0.93"},
        {"feature": "leak_ua", "weight": None, "test": "> 2.5"}]}
    request = decode_request(encode(OracleRequest.model_validate(given)))
    assert card(request, [], DieAtlas(), datetime.now(UTC))["influences"] == [
        {"feature": "vdd_core_v", "weight": 0.91, "test": "≤ 0.93"},
        {"feature": "leak_ua", "weight": None, "test": "> 2.5"}]


def test_an_influence_needs_a_weight_unless_it_is_a_test() -> None:
    forged = ask(1).model_dump(mode="json") | {"influences": [{"feature": "x",
                                                               "weight": None}]}
    with pytest.raises(DecodeError, match="influences"):
        decode_request(json.dumps(forged).encode())
