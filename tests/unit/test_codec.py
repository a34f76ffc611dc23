"""The codec: every bad payload becomes a DecodeError a person can act on, nothing else."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import UTC, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from stream_al.codec import decode_label, decode_prediction, decode_record, decode_request, encode
from stream_al.errors import DecodeError
from stream_al.records import (
    DeadLetter,
    OracleLabel,
    OracleRequest,
    ParametricRecord,
    Prediction,
    TransactionRecord,
)

TS = "2026-11-24T10:15:02.123Z"
Decoder = Callable[[bytes], BaseModel]
DECODERS: list[Decoder] = [decode_record, decode_label, decode_request, decode_prediction]


def parametric(**changes: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "schema_version": 1,
        "kind": "parametric",
        "record_id": "L123-W07-X12-Y33-S2-0001",
        "ts": TS,
        "product": "PMIC-A7",
        "test_program": "FT_v3.2",
        "tester_id": "T-093",
        "site": 2,
        "lot_id": "L123",
        "wafer_id": "W07",
        "die_x": 12,
        "die_y": 33,
        "measurements": {"vdd_core_v": 0.9012, "idd_static_ma": 1.23, "fmax_mhz": 2034.5},
        "label": None,
    }
    return fields | changes


def request(**changes: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "schema_version": 1,
        "query_id": "q-1",
        "record_id": "L123-W07-X12-Y33-S2-0001",
        "kind": "parametric",
        "model_key": "PMIC-A7",
        "reason": "uncertainty",
        "uncertainty": 0.83,
        "threshold": 0.61,
        "proba": {"pass": 0.52, "fail": 0.48},
        "predicted": "pass",
        "model_version": 1532,
        "created_at": TS,
        "expires_at": TS,
        "record": parametric(),
    }
    return fields | changes


def label(**changes: Any) -> dict[str, Any]:
    fields = {"schema_version": 1, "query_id": "q-1", "label": "fail", "labeler": "eng-42"}
    return fields | {"labeled_at": TS} | changes


def raw(obj: object) -> bytes:
    return json.dumps(obj).encode()


def reason_of(decode: Decoder, data: bytes) -> str:
    with pytest.raises(DecodeError) as caught:
        decode(data)
    assert str(caught.value) == caught.value.reason
    return caught.value.reason


GOOD = raw(parametric())

BAD_RECORDS = [
    (
        raw(parametric(measurements={"idd_static_ma": "abc"})),
        'measurements.idd_static_ma: expected a number, got "abc"',
    ),
    (
        raw({k: v for k, v in parametric().items() if k != "record_id"}),
        "record_id: required field is missing",
    ),
    (
        raw(parametric(kind="foo")),
        'kind: unknown record kind "foo"; expected "parametric" or "transaction"',
    ),
    (
        raw(parametric(kind=7)),
        'kind: unknown record kind 7; expected "parametric" or "transaction"',
    ),
    (
        raw({k: v for k, v in parametric().items() if k != "kind"}),
        'kind: required field is missing; expected "parametric" or "transaction"',
    ),
    (
        GOOD[:57],
        "payload is not valid JSON: unexpected end of input at line 1 column 57"
        " (truncated message?)",
    ),
    (GOOD[:17] + b"\xff" + GOOD[18:], "payload is not valid UTF-8 (invalid byte at position 17)"),
    (
        b"\xef\xbb\xbf" + GOOD,
        "payload starts with a UTF-8 byte order mark; send the JSON without it",
    ),
    (b"", "payload is empty (0 bytes); expected a JSON object"),
    (
        b"  \n",
        "payload is not valid JSON: unexpected end of input at line 2 column 0"
        " (truncated message?)",
    ),
    (b'{"a": 1,}', "payload is not valid JSON: trailing comma at line 1 column 9"),
    (raw(parametric(schema_version=2, record_id=None)), "schema_version: expected 1, got 2"),
    (
        raw({k: v for k, v in parametric().items() if k != "schema_version"}),
        "schema_version: required field is missing",
    ),
    (b"[1, 2]", "payload: expected a JSON object, got an array"),
    (b"42", "payload: expected a JSON object, got 42"),
    (b'"text"', 'payload: expected a JSON object, got "text"'),
    (b"null", "payload: expected a JSON object, got null"),
    (
        raw(parametric(measurements={"leak_ua": 1e308 * 10})),
        "measurements.leak_ua: measurement is Infinity (too large for a double?); send a finite"
        " number, or null or NaN for a skipped test",
    ),
    (
        GOOD.replace(b"1.23", b"-1e999"),
        "measurements.idd_static_ma: measurement is -Infinity (too large for a double?); send a"
        " finite number, or null or NaN for a skipped test",
    ),
    (
        GOOD.replace(b"1.23", b"-Infinity"),
        "measurements.idd_static_ma: measurement is -Infinity (too large for a double?); send a"
        " finite number, or null or NaN for a skipped test",
    ),
    (
        raw(parametric(measurements={"a b.c": True})),
        'measurements["a b.c"]: expected a number, got true',
    ),
    (raw(parametric(measurements=[1.0])), "measurements: expected a JSON object, got an array"),
    (raw(parametric(site=True)), "site: expected an integer, got true"),
    (raw(parametric(site=2.5)), "site: expected an integer, got 2.5"),
    (raw(parametric(site=-1)), "site: must be at least 0, got -1"),
    (
        raw(parametric(die_x=10**30)),
        "die_x: must be at most 9007199254740992, got 1000000000000000000000000000000",
    ),
    (raw(parametric(record_id="")), "record_id: must not be empty"),
    (raw(parametric(record_id="x" * 600)), "record_id: is 600 characters long; the limit is 512"),
    (raw(parametric(record_id=123)), "record_id: expected a string, got 123"),
    (
        raw(parametric(ts="yesterday")),
        'ts: expected an ISO 8601 timestamp such as "2026-11-24T10:15:02Z", got "yesterday"',
    ),
    (raw(parametric(label=True)), "label: expected a string, got true"),
    (raw(parametric(label="")), "label: must not be empty"),
    (
        GOOD.replace(b'"label": null', b'"label": NaN'),
        "label: a label must be a string or a finite number, got NaN",
    ),
    (
        raw(parametric(kind="transaction", categorical={"country": 49})),
        "categorical.country: expected a string, got 49",
    ),
]


@pytest.mark.parametrize(("data", "reason"), BAD_RECORDS)
def test_a_bad_record_is_refused_with_a_reason_naming_field_and_problem(
    data: bytes, reason: str
) -> None:
    assert reason_of(decode_record, data) == reason


def test_several_problems_are_listed_first_few_then_counted() -> None:
    bad = parametric(record_id=1, product=None, site="2", die_x="1", die_y="2", ts=None)
    reason = reason_of(decode_record, raw(bad))
    sentences = reason.split("; ")
    assert sentences[:3] == [
        "record_id: expected a string, got 1",
        'ts: expected an ISO 8601 timestamp such as "2026-11-24T10:15:02Z", got null',
        "product: expected a string, got null",
    ]
    assert sentences[3] == "and 3 more problem(s)"


def test_a_long_offending_value_is_shortened_in_the_reason() -> None:
    reason = reason_of(decode_record, raw(parametric(measurements={"a": "x" * 10_000})))
    assert reason == 'measurements.a: expected a number, got "' + "x" * 40 + '"…'


def test_the_size_limit_is_checked_before_parsing() -> None:
    huge = raw(parametric(padding="x" * 1_048_576))
    assert len(huge) > 1_048_576
    reason = reason_of(decode_record, huge)
    assert reason == f"payload is {len(huge):,} bytes; the limit is 1,000,000 (codec max_bytes)"
    assert reason_of(lambda d: decode_record(d, max_bytes=100), GOOD).endswith(
        "the limit is 100 (codec max_bytes)"
    )


def test_a_payload_of_exactly_the_limit_is_accepted() -> None:
    padding = 1_000_000 - len(raw(parametric(padding="")))
    exact = raw(parametric(padding="x" * padding))
    assert len(exact) == 1_000_000
    assert decode_record(exact).model_extra == {"padding": "x" * padding}


@pytest.mark.parametrize("depth", [300, 100_000])
def test_deeply_nested_json_is_refused_without_recursion_error(depth: int) -> None:
    nested = b"[" * depth + b"]" * depth
    data = GOOD.replace(b'"label": null', b'"deep": ' + nested)
    assert reason_of(decode_record, data).startswith(
        "payload is not valid JSON: nested too deeply at line 1 column"
    )


def test_non_bytes_input_is_a_decode_error() -> None:
    assert reason_of(decode_record, None) == "payload must be bytes, got NoneType"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (raw(label(label=True)), "label: expected a string, got true"),
        (raw(label(label=["fail"])), "label: expected a string, got an array"),
        (raw(label(query_id=5)), "query_id: expected a string, got 5"),
        (
            raw({"schema_version": 1}),
            "query_id: required field is missing; label: required field"
            " is missing; labeled_at: required field is missing",
        ),
        (
            raw(label(labeled_at="soon")),
            'labeled_at: expected an ISO 8601 timestamp such as "2026-11-24T10:15:02Z", got "soon"',
        ),
        (raw([label()]), "payload: expected a JSON object, got an array"),
        (raw(label(schema_version="1")), 'schema_version: expected 1, got "1"'),
    ],
)
def test_a_bad_label_is_refused_with_a_reason(data: bytes, reason: str) -> None:
    assert reason_of(decode_label, data) == reason


def test_a_numeric_label_arrives_as_its_string_form() -> None:
    assert decode_label(raw(label(label=1))).label == "1"
    assert decode_label(raw(label(label=0.0))).label == "0"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (
            raw(request(reason="curiosity")),
            'reason: expected "uncertainty", "audit", "novelty" or "warmup", got "curiosity"',
        ),
        (raw(request(uncertainty=1.5)), "uncertainty: must be at most 1.0, got 1.5"),
        (raw(request(proba={"pass": "high"})), 'proba.pass: expected a number, got "high"'),
        (raw(request(record=[1])), "record: expected a JSON object, got an array"),
        (
            raw(request(record=parametric(measurements={"x": "?"}))),
            'record.measurements.x: expected a number, got "?"',
        ),
        (
            raw(request(record=parametric(kind="foo"))),
            'record.kind: unknown record kind "foo"; expected "parametric" or "transaction"',
        ),
        (
            raw(request(record={k: v for k, v in parametric().items() if k != "schema_version"})),
            "record.schema_version: required field is missing",
        ),
        (
            raw(request(record_id="other")),
            "payload: record_id and kind must be those of the"
            ' embedded record ("L123-W07-X12-Y33-S2-0001", "parametric")',
        ),
        (raw(request(model_version=-1)), "model_version: must be at least 0, got -1"),
    ],
)
def test_a_bad_request_is_refused_with_a_reason(data: bytes, reason: str) -> None:
    assert reason_of(decode_request, data) == reason


def _with_key_twice(payload: bytes, key: str, second: str) -> bytes:
    # JSON text with `key` written a second time right after the first occurrence.
    quoted = json.dumps(key)
    at = payload.index(quoted.encode() + b":")
    return payload[:at] + f"{quoted}:{second},".encode() + payload[at:]


@pytest.mark.parametrize(
    ("decode", "payload", "key", "second"),
    [
        (decode_label, raw(label()), "label", '"pass"'),
        (decode_request, raw(request()), "reason", '"audit"'),
        # Nested: a measurement named twice inside the record a request carries.
        (decode_request, raw(request()), "vdd_core_v", "1.5"),
    ],
)
def test_a_label_or_request_naming_a_key_twice_is_refused(
    decode: Decoder, payload: bytes, key: str, second: str
) -> None:
    decode(payload)  # the payload is fine with each key once
    assert reason_of(decode, _with_key_twice(payload, key, second)) == (
        f'payload names the key "{key}" twice; send each key once'
    )


def test_the_same_key_in_two_objects_is_not_a_duplicate() -> None:
    # "label" names a field of the request and of the record it carries: two objects.
    decoded = decode_request(raw(request(record=parametric(label="fail"))))
    assert decoded.record.label == "fail"


def test_a_bad_prediction_is_refused_with_a_reason() -> None:
    data = raw(
        {
            "schema_version": 1,
            "record_id": "r",
            "model_key": "P",
            "predicted": "a",
            "proba": {"a": 1.0},
            "uncertainty": 0.0,
            "queried": "yes",
            "model_version": 1,
            "ts": TS,
        }
    )
    assert reason_of(decode_prediction, data) == 'queried: expected true or false, got "yes"'


def test_extra_fields_survive_decode_encode_decode() -> None:
    original = parametric(operator="eng-7", chuck={"temp_c": 25.5, "zones": [1, 2]}, note=None)
    first = decode_record(raw(original))
    second = decode_record(encode(first))
    assert second == first
    assert second.model_extra == {
        "operator": "eng-7",
        "chuck": {"temp_c": 25.5, "zones": [1, 2]},
        "note": None,
    }
    assert json.loads(encode(second))["chuck"] == {"temp_c": 25.5, "zones": [1, 2]}


def test_nan_is_encoded_as_null_so_strict_json_parsers_accept_it() -> None:
    record = decode_record(GOOD.replace(b"1.23", b"NaN"))
    assert isinstance(record, ParametricRecord)
    assert math.isnan(record.measurements["idd_static_ma"] or 0.0)

    def refuse(token: str) -> None:
        raise AssertionError(f"non-standard JSON token {token}")

    out = json.loads(encode(record), parse_constant=refuse)
    assert out["measurements"]["idd_static_ma"] is None
    assert decode_record(encode(record)) == record.model_copy(
        update={"measurements": record.measurements | {"idd_static_ma": None}}
    )


def test_encode_is_compact_utf8() -> None:
    record = decode_record(raw(parametric(product="Ünïcode-µ", measurements={})))
    data = encode(record)
    assert "Ünïcode-µ".encode() in data
    assert b", " not in data and b": " not in data


@pytest.mark.parametrize(
    ("decode", "msg"),
    [
        (decode_record, ParametricRecord.model_validate(parametric())),
        (decode_record, TransactionRecord(record_id="t", ts=TS, categorical={"c": "x"})),
        (decode_label, OracleLabel.model_validate(label())),
        (decode_request, OracleRequest.model_validate(request())),
        (
            decode_prediction,
            Prediction(
                record_id="r",
                model_key="P",
                predicted=None,
                proba={},
                uncertainty=1.0,
                queried=False,
                model_version=0,
                ts=TS,
            ),
        ),
    ],
)
def test_every_message_built_in_code_round_trips(decode: Decoder, msg: BaseModel) -> None:
    assert decode(encode(msg)) == msg


def test_a_dead_letter_encodes_to_plain_json() -> None:
    letter = DeadLetter.from_payload(
        b"\xff\x00", "payload is not valid UTF-8", source_topic="t", partition=0, offset=5
    )
    assert DeadLetter.model_validate_json(encode(letter)).payload() == b"\xff\x00"


# -- fuzz: a model or a DecodeError, never anything else -----------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
field_names = st.sampled_from([*parametric(), *request(), *label(), "numeric", "categorical"])


def _only_decode_errors(decode: Decoder, data: bytes) -> None:
    try:
        decode(data)
    except DecodeError as error:
        assert error.reason and "\n" not in error.reason


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=300))
def test_fuzz_arbitrary_bytes(data: bytes) -> None:
    for decode in DECODERS:
        _only_decode_errors(decode, data)


@settings(max_examples=300)
@given(value=json_values)
def test_fuzz_arbitrary_json_values(value: object) -> None:
    data = json.dumps(value).encode()  # NaN/Infinity tokens included, as Python writes them
    for decode in DECODERS:
        _only_decode_errors(decode, data)


@settings(max_examples=200)
@given(
    base=st.sampled_from([parametric(), request(), label()]),
    changes=st.dictionaries(field_names, json_values, max_size=4),
)
def test_fuzz_valid_messages_with_fields_replaced(
    base: dict[str, Any], changes: dict[str, Any]
) -> None:
    data = json.dumps(base | changes).encode()
    for decode in DECODERS:
        _only_decode_errors(decode, data)


@settings(max_examples=300)
@given(cut=st.integers(min_value=0, max_value=len(GOOD)), byte=st.integers(0, 255))
def test_fuzz_truncated_and_corrupted_records(cut: int, byte: int) -> None:
    _only_decode_errors(decode_record, GOOD[:cut])
    _only_decode_errors(decode_record, GOOD[:cut] + bytes([byte]) + GOOD[cut + 1 :])


@settings(max_examples=200)
@given(changes=st.dictionaries(field_names, json_values, max_size=4))
def test_fuzz_requests_whose_record_has_fields_replaced(changes: dict[str, Any]) -> None:
    _only_decode_errors(decode_request, raw(request(record=parametric() | changes)))


_labels = st.text(min_size=1, max_size=12)
_unit = st.floats(0.0, 1.0)
_predictions = st.builds(
    Prediction, record_id=st.text(min_size=1, max_size=40), model_key=_labels,
    predicted=st.none() | _labels, proba=st.dictionaries(_labels, _unit, max_size=4),
    uncertainty=_unit, queried=st.booleans(), query_id=st.none() | _labels,
    model_version=st.integers(0, 2**63 - 1),
    ts=st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5, minutes=-30)),
                                               timezone(timedelta(seconds=30))])))


@given(_predictions)
def test_a_prediction_encodes_to_the_bytes_pydantic_writes(prediction: Prediction) -> None:
    # encode() takes orjson for predictions: the contract is pydantic's bytes, exactly.
    assert encode(prediction) == prediction.__pydantic_serializer__.to_json(prediction)


def test_a_prediction_orjson_cannot_write_falls_back_to_pydantic() -> None:
    with_extra = Prediction(record_id="r", model_key="k", predicted=None, proba={},
                            uncertainty=1.0, queried=False, model_version=0,
                            ts="2026-11-24T10:15:03Z", note="kept")
    assert encode(with_extra).endswith(b'"ts":"2026-11-24T10:15:03Z","note":"kept"}')
    surrogate = with_extra.model_copy(update={"record_id": "\ud800"})
    with pytest.raises(ValueError, match="surrogates not allowed"):
        encode(surrogate)
