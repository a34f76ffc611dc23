"""The message models: what they accept, what they refuse, and the stable query id."""

from __future__ import annotations

import base64
import hashlib
import json
import math
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from stream_al.codec import decode_record, encode
from stream_al.errors import DecodeError
from stream_al.records import (
    MAX_FAILED_TESTS,
    DeadLetter,
    OracleLabel,
    OracleRequest,
    ParametricRecord,
    Prediction,
    Record,
    TestLimits,
    TransactionRecord,
    query_id_for,
)

TS = "2026-11-24T10:15:02.123Z"
RECORD = TypeAdapter[Record](Record)


def parametric(**changes: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "schema_version": 1,
        "kind": "parametric",
        "record_id": "L1-W07-X12-Y33-S2-0001",
        "ts": TS,
        "product": "PMIC-A7",
        "test_program": "FT_v3.2",
        "tester_id": "T-093",
        "site": 2,
        "lot_id": "L1",
        "wafer_id": "W07",
        "die_x": 12,
        "die_y": -33,
        "measurements": {"vdd_core_v": 0.9012, "idd_static_ma": 1.23},
        "label": None,
    }
    return fields | changes


def request(**changes: Any) -> dict[str, Any]:
    record = TransactionRecord(record_id="txn-1", ts=TS, numeric={"amount": 1.0})
    fields: dict[str, Any] = {
        "query_id": query_id_for("txn-1", "fraud"),
        "record_id": "txn-1",
        "kind": "transaction",
        "model_key": "fraud",
        "reason": "uncertainty",
        "uncertainty": 0.83,
        "threshold": 0.61,
        "proba": {"pass": 0.52, "fail": 0.48},
        "predicted": "pass",
        "model_version": 3,
        "created_at": TS,
        "expires_at": "2026-11-25T10:15:02Z",
        "record": record,
    }
    return fields | changes


def test_the_design_example_validates_with_every_field_typed() -> None:
    record = RECORD.validate_python(parametric())
    assert isinstance(record, ParametricRecord)
    assert record.ts == datetime(2026, 11, 24, 10, 15, 2, 123000, tzinfo=UTC)
    assert (record.site, record.die_x, record.die_y) == (2, 12, -33)
    assert record.measurements == {"vdd_core_v": 0.9012, "idd_static_ma": 1.23}


def test_kind_selects_the_model() -> None:
    record = RECORD.validate_python(
        {
            "schema_version": 1,
            "kind": "transaction",
            "record_id": "t",
            "ts": TS,
            "categorical": {"c": "x"},
        }
    )
    assert isinstance(record, TransactionRecord)
    assert record.numeric == {} and record.categorical == {"c": "x"}


def test_unknown_fields_are_kept() -> None:
    record = ParametricRecord.model_validate(parametric(operator="eng-7", temp_c=25))
    assert record.model_extra == {"operator": "eng-7", "temp_c": 25}


def test_models_are_frozen() -> None:
    record = ParametricRecord.model_validate(parametric())
    with pytest.raises(ValidationError, match="frozen"):
        record.product = "other"  # type: ignore[misc]


def test_a_naive_timestamp_is_read_as_utc_and_an_offset_is_kept() -> None:
    naive = ParametricRecord.model_validate(parametric(ts="2026-11-24T10:15:02"))
    assert naive.ts == datetime(2026, 11, 24, 10, 15, 2, tzinfo=UTC)
    offset = ParametricRecord.model_validate(parametric(ts="2026-11-24T11:15:02+01:00"))
    assert offset.ts.utcoffset() == timedelta(hours=1)
    assert offset.ts == naive.ts


def test_skipped_tests_may_be_null_or_nan() -> None:
    record = ParametricRecord.model_validate(parametric(measurements={"a": None, "b": math.nan}))
    assert record.measurements["a"] is None
    assert math.isnan(record.measurements["b"] or 0.0)


@pytest.mark.parametrize("value", [math.inf, -math.inf])
def test_an_infinite_measurement_is_refused_with_its_name(value: float) -> None:
    with pytest.raises(ValidationError, match="null or NaN for a skipped test") as caught:
        ParametricRecord.model_validate(parametric(measurements={"ok": 1.0, "leak_ua": value}))
    assert caught.value.errors()[0]["ctx"]["key"] == "leak_ua"


def test_an_infinite_numeric_field_is_refused() -> None:
    with pytest.raises(ValidationError, match="Infinity"):
        TransactionRecord(record_id="t", ts=TS, numeric={"amount": math.inf})


@pytest.mark.parametrize("value", ["1.5", True])
def test_a_measurement_is_a_number_never_a_string_or_boolean(value: object) -> None:
    with pytest.raises(ValidationError, match="valid number"):
        ParametricRecord.model_validate(parametric(measurements={"a": value}))


@pytest.mark.parametrize(
    ("given", "expected"),
    [(1, "1"), (0, "0"), (1.0, "1"), (2.5, "2.5"), ("fail", "fail"), ("1.0", "1.0")],
)
def test_a_numeric_label_becomes_its_string_form(given: object, expected: str) -> None:
    assert ParametricRecord.model_validate(parametric(label=given)).label == expected


@pytest.mark.parametrize("label", [True, False, math.nan, math.inf, "", ["x"]])
def test_a_boolean_empty_or_non_finite_label_is_refused(label: object) -> None:
    with pytest.raises(ValidationError):
        ParametricRecord.model_validate(parametric(label=label))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("record_id", ""),
        ("record_id", "x" * 513),
        ("product", ""),
        ("site", 2.5),
        ("site", True),
        ("die_x", "12"),
        ("schema_version", 2),
        ("kind", "transaction"),
    ],
)
def test_malformed_parametric_fields_are_refused(field: str, value: object) -> None:
    with pytest.raises(ValidationError):
        ParametricRecord.model_validate(parametric(**{field: value}))


def test_product_is_required_and_the_other_context_is_optional() -> None:
    minimal = {"record_id": "r", "ts": TS, "product": "P", "measurements": {}}
    record = ParametricRecord.model_validate(minimal)
    assert (record.tester_id, record.site, record.die_x, record.label) == (None,) * 4
    with pytest.raises(ValidationError, match="product"):
        ParametricRecord.model_validate(minimal | {"product": None})


def test_a_record_without_the_tester_fields_encodes_as_before_they_existed() -> None:
    record = ParametricRecord.model_validate(parametric())
    assert (record.limits, record.retest, record.no_parametric) == (None, False, False)
    assert (record.hard_bin, record.soft_bin, record.failed_tests) == (None, None, None)
    written = json.loads(encode(record))
    for name in ("limits", "retest", "no_parametric", "hard_bin", "soft_bin", "failed_tests"):
        assert name not in written


def test_the_tester_fields_are_typed_and_written_back() -> None:
    given = parametric(
        limits={"vdd_core_v": {"lo": 0.8, "hi": 1, "units": "V"},
                "idd_static_ma": {"hi": 2.0}},
        retest=True, no_parametric=False, hard_bin=0, soft_bin=65535,
        failed_tests=["idd_static_ma", "scan_t600"],
    )
    record = ParametricRecord.model_validate(given)
    assert record.limits == {"vdd_core_v": TestLimits(lo=0.8, hi=1.0, units="V"),
                             "idd_static_ma": TestLimits(lo=None, hi=2.0, units=None)}
    written = json.loads(encode(record))
    assert written["limits"]["idd_static_ma"] == {"lo": None, "hi": 2.0, "units": None}
    assert (written["retest"], written["hard_bin"], written["soft_bin"]) == (True, 0, 65535)
    assert "no_parametric" not in written and written["failed_tests"] == given["failed_tests"]
    assert decode_record(encode(record)) == record


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"limits": {"fmax_mhz": {"lo": 1.0}}},
         'limits: names "fmax_mhz", which is not in measurements'),
        ({"limits": {"vdd_core_v": {"lo": 1.0, "min": 0.5}}},
         "limits.vdd_core_v.min: extra inputs are not permitted"),
        ({"limits": {"vdd_core_v": {"hi": math.inf}}}, "limits.vdd_core_v.hi: must be a finite"),
        ({"limits": {"vdd_core_v": {"lo": "0.8"}}}, "limits.vdd_core_v.lo: expected a number"),
        ({"limits": {"vdd_core_v": {"units": ""}}}, "limits.vdd_core_v.units"),
        ({"limits": {"vdd_core_v": {"units": "V" * 65}}}, "limits.vdd_core_v.units"),
        ({"hard_bin": -1}, "hard_bin: must be at least 0"),
        ({"soft_bin": 65536}, "soft_bin"),
        ({"hard_bin": "5"}, "hard_bin: expected an integer"),
        ({"retest": "yes"}, "retest: expected true or false"),
        ({"no_parametric": 1}, "no_parametric: expected true or false"),
        ({"failed_tests": ["t"] * (MAX_FAILED_TESTS + 1)}, "failed_tests: names 1001 tests"),
        ({"failed_tests": [""]}, "failed_tests[0]"),
    ],
)
def test_malformed_tester_fields_are_refused_naming_the_field(
    changes: dict[str, Any], reason: str
) -> None:
    payload = json.dumps(parametric(**changes)).encode()
    with pytest.raises(DecodeError) as refused:
        decode_record(payload)
    assert refused.value.reason.startswith(reason), refused.value.reason


def test_a_request_carries_its_record_and_must_agree_with_it() -> None:
    built = OracleRequest.model_validate(request())
    assert isinstance(built.record, TransactionRecord) and built.record.record_id == "txn-1"
    with pytest.raises(ValidationError, match="must be those of the embedded record"):
        OracleRequest.model_validate(request(record_id="txn-2"))
    with pytest.raises(ValidationError, match="must be those of the embedded record"):
        OracleRequest.model_validate(request(kind="parametric"))


@pytest.mark.parametrize(
    "changes",
    [
        {"reason": "curiosity"},
        {"uncertainty": 1.5},
        {"uncertainty": math.nan},
        {"proba": {"pass": -0.1}},
        {"proba": {"pass": "high"}},
        {"model_version": -1},
        {"threshold": math.inf},
        {"created_at": "soon"},
    ],
)
def test_a_malformed_request_is_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        OracleRequest.model_validate(request(**changes))


@pytest.mark.parametrize("reason", ["uncertainty", "audit", "novelty", "warmup"])
def test_every_design_reason_is_accepted(reason: str) -> None:
    assert OracleRequest.model_validate(request(reason=reason)).reason == reason


def test_a_label_names_its_query_and_may_omit_the_labeler() -> None:
    label = OracleLabel(query_id="q-1", label="new_defect", labeled_at="2026-11-24T10:20:00")
    assert label.labeler is None
    assert label.labeled_at.tzinfo is not None
    with pytest.raises(ValidationError, match="query_id"):
        OracleLabel.model_validate({"label": "fail", "labeled_at": TS})


def test_a_prediction_may_carry_no_prediction_from_a_cold_model() -> None:
    cold = Prediction(
        record_id="r",
        model_key="P",
        predicted=None,
        proba={},
        uncertainty=1.0,
        queried=True,
        query_id="q-1",
        model_version=0,
        ts=TS,
    )
    assert cold.predicted is None and cold.queried


def test_a_dead_letter_keeps_the_exact_bytes_and_the_decode_reason() -> None:
    payload = bytes(range(256))
    letter = DeadLetter.from_payload(
        payload,
        DecodeError("record_id: required field is missing"),
        source_topic="ate.parametric",
        partition=3,
        offset=99,
    )
    assert letter.payload() == payload
    assert base64.b64decode(letter.payload_b64) == payload
    assert letter.error == "record_id: required field is missing"
    assert (letter.source_topic, letter.partition, letter.offset) == ("ate.parametric", 3, 99)
    assert abs(letter.ts - datetime.now(UTC)) < timedelta(minutes=1)


def test_a_dead_letter_from_a_plain_exception_says_what_it_was() -> None:
    ts = datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=2)))
    letter = DeadLetter.from_payload(
        b"", KeyError(), source_topic="t", partition=0, offset=0, ts=ts
    )
    assert letter.error == "KeyError"
    assert letter.ts == ts


def test_query_id_matches_an_independent_sha256_of_the_json_pair() -> None:
    expected = hashlib.sha256(b'["L123-W07-X12-Y33-S2-0001","PMIC-A7"]').hexdigest()[:20]
    assert query_id_for("L123-W07-X12-Y33-S2-0001", "PMIC-A7") == "q-" + expected


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (("a-b", "c"), ("a", "b-c")),
        (("a|b", "c"), ("a", "b|c")),
        (('a","b', "c"), ("a", 'b","c')),
        (("", "ab"), ("ab", "")),
        (("x", "y"), ("y", "x")),
    ],
)
def test_query_ids_of_different_pairs_differ(a: tuple[str, str], b: tuple[str, str]) -> None:
    assert query_id_for(*a) != query_id_for(*b)


def test_query_id_is_the_same_in_another_process_and_handles_any_text() -> None:
    pairs = [("r1", "P"), ("dié-ü-\U0001f600", "模型"), ("lone\ud800surrogate", "k")]
    code = (
        "import sys, json; from stream_al.records import query_id_for; "
        "print(json.dumps([query_id_for(a, b) for a, b in json.loads(sys.stdin.read())]))"
    )
    env = {"PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps(pairs),
        text=True,
        capture_output=True,
        check=True,
        env=env,
    ).stdout
    assert json.loads(out) == [query_id_for(a, b) for a, b in pairs]
    assert all(len(q) == 22 and q.startswith("q-") for q in json.loads(out))
