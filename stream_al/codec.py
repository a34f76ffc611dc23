"""Bytes ⇄ messages, in one place: untrusted payloads become models here or not at all.

Every ``decode_*`` either returns a validated, frozen model or raises
``stream_al.errors.DecodeError`` whose ``reason`` names the field and the problem in a
sentence a person can act on (it goes to the dead-letter topic). Nothing else escapes.

Decoding is one ``model_validate_json`` call on the bytes (pydantic's Rust parser, no
``json.loads``); the error path alone does extra work to explain what went wrong.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any, Final, TypeVar

import orjson
from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from stream_al.errors import DecodeError
from stream_al.records import MAX_ABS_VALUE, OracleLabel, OracleRequest, Prediction, Record

__all__ = ["decode_label", "decode_prediction", "decode_record", "decode_request", "encode"]

M = TypeVar("M", bound=BaseModel)

#: Default payload limit: a parametric record with hundreds of measurements is ~10 KB.
MAX_BYTES: Final = 1_000_000
#: How many problems one reason lists; the rest are counted.
_MAX_REPORTED: Final = 3
_MAX_SHOWN_CHARS: Final = 40
_KINDS: Final = ("parametric", "transaction")
_EXPECTED_KINDS: Final = '"parametric" or "transaction"'
_RECORD: Final = TypeAdapter[Record](Record)
_UTC_OFFSET: Final = timedelta(0)


def decode_record(data: bytes, *, max_bytes: int = MAX_BYTES,
                  max_abs_value: float = MAX_ABS_VALUE) -> Record:
    """Decode an input record (parametric or transaction) from JSON bytes.

    Parameters
    ----------
    data
        The raw payload, UTF-8 JSON.
    max_bytes
        Larger payloads are refused before parsing.
    max_abs_value
        A measurement or number of larger magnitude is refused.

    Raises
    ------
    DecodeError
        With a reason naming the field and the problem.

    Examples
    --------
    >>> r = decode_record(b'{"schema_version": 1, "kind": "transaction", "record_id": "t1",'
    ...                   b' "ts": "2026-11-24T10:15:02Z", "numeric": {"amount": 12.5}}')
    >>> type(r).__name__, r.numeric
    ('TransactionRecord', {'amount': 12.5})
    >>> try:
    ...     decode_record(b'{"schema_version": 1, "kind": "foo"}')
    ... except DecodeError as error:
    ...     print(error.reason)
    kind: unknown record kind "foo"; expected "parametric" or "transaction"
    """
    record = _decode(_RECORD.validate_json, data, max_bytes,
                     {"max_abs_value": max_abs_value})
    _require_version(record)
    return record


def decode_label(data: bytes, *, max_bytes: int = MAX_BYTES) -> OracleLabel:
    """Decode an oracle label.

    Examples
    --------
    >>> decode_label(b'{"schema_version":1,"query_id":"q-1","label":"fail",'
    ...              b'"labeled_at":"2026-11-24T10:20:00Z"}').label
    'fail'
    >>> decode_label(b'{"schema_version":1,"label":"fail","labeled_at":"2026-11-24T10:20:00Z"}')
    Traceback (most recent call last):
    ...
    stream_al.errors.DecodeError: query_id: required field is missing
    """
    label = _decode(OracleLabel.model_validate_json, data, max_bytes, unique_keys=True)
    _require_version(label)
    return label


def decode_request(data: bytes, *, max_bytes: int = MAX_BYTES,
                   max_abs_value: float = MAX_ABS_VALUE) -> OracleRequest:
    """Decode an oracle request, including the record it carries.

    Examples
    --------
    >>> decode_request(b'[]')
    Traceback (most recent call last):
    ...
    stream_al.errors.DecodeError: payload: expected a JSON object, got an array
    """
    request = _decode(OracleRequest.model_validate_json, data, max_bytes,
                      {"max_abs_value": max_abs_value}, unique_keys=True)
    _require_version(request)
    _require_version(request.record, "record.")
    return request


def decode_prediction(data: bytes, *, max_bytes: int = MAX_BYTES) -> Prediction:
    """Decode a prediction message (for consumers of ``stream-al.predictions``).

    Examples
    --------
    >>> decode_prediction(b'{"schema_version": 2}')
    Traceback (most recent call last):
    ...
    stream_al.errors.DecodeError: schema_version: expected 1, got 2
    """
    prediction = _decode(Prediction.model_validate_json, data, max_bytes)
    _require_version(prediction)
    return prediction


def encode(msg: BaseModel) -> bytes:
    """Compact UTF-8 JSON for any message, extra fields included.

    NaN and ±inf are written as ``null`` (plain JSON has no NaN, and a skipped test is
    ``null`` anyway), so every consumer can parse the output.

    Examples
    --------
    >>> from stream_al.records import ParametricRecord
    >>> r = ParametricRecord(record_id="r1", ts="2026-11-24T10:15:02Z", product="P",
    ...                      measurements={"a": float("nan")}, operator="x")
    >>> encode(r)
    b'{"schema_version":1,"record_id":"r1","ts":"2026-11-24T10:15:02Z","label":null,"kind":"parametric","product":"P","test_program":null,"tester_id":null,"site":null,"lot_id":null,"wafer_id":null,"die_x":null,"die_y":null,"measurements":{"a":null},"operator":"x"}'
    """
    if type(msg) is Prediction:
        fast = _prediction_json(msg)
        if fast is not None:
            return fast
    return msg.__pydantic_serializer__.to_json(msg)


def _prediction_json(prediction: Prediction) -> bytes | None:
    """The prediction's JSON by orjson, one per record and 3× cheaper than pydantic's
    serializer; None where the two could differ (an unknown field, a timestamp not in
    UTC: pydantic truncates a sub-minute offset, orjson rounds it; a string orjson
    refuses), and pydantic's bytes or error stand. Otherwise the bytes are the same:
    the fields in declaration order, the shortest round-trip floats, NaN as null."""
    if prediction.__pydantic_extra__ or prediction.ts.utcoffset() != _UTC_OFFSET:
        return None
    try:
        return orjson.dumps(prediction.__dict__, option=orjson.OPT_UTC_Z)
    except TypeError:  # orjson.JSONEncodeError, e.g. a lone surrogate in a string
        return None


def _decode(validate: Callable[..., M], data: bytes, max_bytes: int,
            context: dict[str, Any] | None = None, unique_keys: bool = False) -> M:
    _check_size(data, max_bytes)
    try:
        message = validate(data, context=context)
    except ValidationError as exc:
        raise DecodeError(_describe(exc, data)) from exc
    except (RecursionError, ValueError, TypeError, UnicodeError) as exc:
        # Defensive: pydantic reports parse problems as ValidationError, but the contract
        # is that nothing but DecodeError ever leaves this module.
        raise DecodeError(f"payload could not be decoded: {type(exc).__name__}: {exc}") from exc
    if unique_keys:
        _require_unique_keys(data)
    return message


def _require_unique_keys(data: bytes) -> None:
    """Refuse an object that names a key twice: parsers disagree on which one counts
    (ours takes the last, a browser's the last, others the first), so such a message
    could mean one thing to the daemon and another to the desk. Requests and labels are
    few (budget-sized), so the second parse is affordable there; records skip it."""
    _UNIQUE_KEYS_PARSER.decode(bytes(data).decode("utf-8"))


def _dict_of_unique_pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
    # Called once per JSON object; the common case costs one dict build and a length test.
    built = dict(items)
    if len(built) != len(items):
        keys = [key for key, _ in items]
        twice = next(key for key in keys if keys.count(key) > 1)
        raise DecodeError(f"payload names the key {json.dumps(twice)} twice; send each "
                          "key once")
    return built


#: Built once: ``json.loads`` with a hook makes a new decoder (and scanner) every call.
_UNIQUE_KEYS_PARSER: Final = json.JSONDecoder(object_pairs_hook=_dict_of_unique_pairs)


def _check_size(data: bytes, max_bytes: int) -> None:
    if not isinstance(data, bytes | bytearray):
        raise DecodeError(f"payload must be bytes, got {type(data).__name__}")
    if len(data) == 0:
        raise DecodeError("payload is empty (0 bytes); expected a JSON object")
    if len(data) > max_bytes:
        raise DecodeError(
            f"payload is {len(data):,} bytes; the limit is {max_bytes:,} (codec max_bytes)"
        )


def _require_version(msg: BaseModel, prefix: str = "") -> None:
    # The field defaults to 1 for messages built in code; input must say which version it is.
    if "schema_version" not in msg.model_fields_set:
        raise DecodeError(f"{prefix}schema_version: required field is missing")


def _describe(exc: ValidationError, data: bytes) -> str:
    errors = exc.errors(include_url=False)
    if errors and errors[0]["type"] == "json_invalid":
        return _describe_bad_json(errors[0], data)
    wrong_version = [e for e in errors if e["loc"][-1:] == ("schema_version",)]
    if wrong_version:
        # Another version has another shape: its other "errors" would only be noise.
        errors = wrong_version
    sentences = [f"{_path(e)}: {_problem(e)}" for e in errors[:_MAX_REPORTED]]
    if len(errors) > _MAX_REPORTED:
        sentences.append(f"and {len(errors) - _MAX_REPORTED} more problem(s)")
    return "; ".join(sentences) or "payload is not a valid message"


def _describe_bad_json(error: ErrorDetails, data: bytes) -> str:
    try:
        bytes(data).decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"payload is not valid UTF-8 (invalid byte at position {exc.start})"
    if data.startswith(b"\xef\xbb\xbf"):
        return "payload starts with a UTF-8 byte order mark; send the JSON without it"
    detail = str((error.get("ctx") or {}).get("error", error["msg"]))
    if detail.startswith("EOF while parsing"):
        where = detail.partition(" at ")[2]
        return f"payload is not valid JSON: unexpected end of input at {where} (truncated message?)"
    if detail.startswith("recursion limit exceeded"):
        where = detail.partition(" at ")[2]
        return f"payload is not valid JSON: nested too deeply at {where}"
    return f"payload is not valid JSON: {detail}"


def _path(error: ErrorDetails) -> str:
    loc = list(error["loc"])
    # A discriminated union puts the tag in the path ("parametric.measurements.x"): drop it.
    for at in (0, 1):
        if len(loc) > at and loc[at] in _KINDS and loc[:at] in ([], ["record"]):
            del loc[at]
            break
    ctx = error.get("ctx") or {}
    if error["type"].startswith("union_tag"):
        loc.append(str(ctx.get("discriminator", "kind")).strip("'"))
    elif "key" in ctx:
        loc.append(ctx["key"])
    return _join(loc) or "payload"


def _join(loc: Sequence[int | str]) -> str:
    parts = ""
    for item in loc:
        if isinstance(item, int):
            parts += f"[{item}]"
        elif re.fullmatch(r"[A-Za-z_][\w-]*", item):
            parts += f".{item}" if parts else item
        else:
            parts += f"[{json.dumps(item)}]"
    return parts


def _problem(error: ErrorDetails) -> str:
    kind, ctx, got = error["type"], error.get("ctx") or {}, _show(error["input"])
    explain = _PROBLEMS.get(kind)
    if explain is not None:
        return explain(error, ctx, got)
    if kind.startswith(("float", "int", "bool", "string", "datetime")):
        what = _EXPECTED_TYPE[kind.partition("_")[0]]
        return f"expected {what}, got {got}"
    message = error["msg"].removeprefix("Value error, ")
    return f"{message[:1].lower()}{message[1:]}, got {got}"


def _union_tag(error: ErrorDetails, ctx: Mapping[str, Any], got: str) -> str:
    source = error["input"]
    tag = source.get("kind") if isinstance(source, dict) else ctx.get("tag")
    return f"unknown record kind {_show(tag)}; expected {_EXPECTED_KINDS}"


def _literal(error: ErrorDetails, ctx: Mapping[str, Any], got: str) -> str:
    expected = str(ctx.get("expected", "")).replace("'", '"')
    return f"expected {expected}, got {got}"


def _too_long(error: ErrorDetails, ctx: Mapping[str, Any], got: str) -> str:
    size = ctx.get("actual_length") or len(error["input"])
    return f"is {size} characters long; the limit is {ctx.get('max_length')}"


_PROBLEMS: Final[dict[str, Callable[[ErrorDetails, Mapping[str, Any], str], str]]] = {
    "missing": lambda e, c, g: "required field is missing",
    "union_tag_not_found": lambda e, c, g: f"required field is missing; expected {_EXPECTED_KINDS}",
    "union_tag_invalid": _union_tag,
    "literal_error": _literal,
    "string_too_short": lambda e, c, g: "must not be empty",
    "too_short": lambda e, c, g: "must not be empty",
    "string_too_long": _too_long,
    "too_long": _too_long,
    "dict_type": lambda e, c, g: f"expected a JSON object, got {g}",
    "model_type": lambda e, c, g: f"expected a JSON object, got {g}",
    "model_attributes_type": lambda e, c, g: f"expected a JSON object, got {g}",
    "greater_than_equal": lambda e, c, g: f"must be at least {c.get('ge')}, got {g}",
    "int_parsing_size": lambda e, c, g: f"expected an integer of at most 19 digits, got {g}",
    "less_than_equal": lambda e, c, g: f"must be at most {c.get('le')}, got {g}",
    "finite_number": lambda e, c, g: f"must be a finite number, got {g}",
    "infinite_value": lambda e, c, g: e["msg"],
    "value_out_of_range": lambda e, c, g: e["msg"],
    "record_mismatch": lambda e, c, g: e["msg"],
    "label_not_finite": lambda e, c, g: f"{e['msg']}, got {g}",
}

_EXPECTED_TYPE: Final = {
    "float": "a number",
    "int": "an integer",
    "bool": "true or false",
    "string": "a string",
    "datetime": 'an ISO 8601 timestamp such as "2026-11-24T10:15:02Z"',
}


def _show(value: object) -> str:
    """A short, JSON-looking rendering of an offending value (never the whole payload)."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, str) and len(value) > _MAX_SHOWN_CHARS:
        return json.dumps(value[:_MAX_SHOWN_CHARS], ensure_ascii=False) + "…"
    try:
        shown = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):  # e.g. an int beyond Python's digit limit
        return f"a {type(value).__name__} too large to show"
    return shown if len(shown) <= _MAX_SHOWN_CHARS else shown[:_MAX_SHOWN_CHARS] + "…"
