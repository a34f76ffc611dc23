"""The messages stream-al reads and writes (DESIGN §2–§3), as frozen pydantic v2 models.

Every message carries ``schema_version`` (always 1 for now). Fields this version does not
know are kept (``extra="allow"``) and written back out, so a newer producer's fields survive
a trip through the daemon. ``schema_version`` defaults to 1 when a model is built in code;
``stream_al.codec`` insists that decoded input states it.

The containers inside a frozen model (``measurements``, ``proba`` …) are plain dicts for
speed: treat them as read-only.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    Strict,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic_core import PydanticCustomError

__all__ = [
    "DeadLetter",
    "OracleLabel",
    "OracleRequest",
    "ParametricRecord",
    "Prediction",
    "QueryReason",
    "Record",
    "RecordKind",
    "TestLimits",
    "TransactionRecord",
    "query_id_for",
]

RecordKind = Literal["parametric", "transaction"]
QueryReason = Literal["uncertainty", "audit", "novelty", "warmup"]


def _assume_utc(value: datetime) -> datetime:
    # A producer that forgets the offset almost always means UTC; comparing naive with
    # aware datetimes would raise later, deep in the learner.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


#: A point in time, always timezone-aware; a naive value is read as UTC.
Timestamp = Annotated[datetime, AfterValidator(_assume_utc)]
#: Names, keys and ids: non-empty and bounded, since they become model keys and metric labels.
Name = Annotated[str, StringConstraints(min_length=1, max_length=256)]
RecordId = Annotated[str, StringConstraints(min_length=1, max_length=512)]


def _label_from_number(value: object) -> object:
    # CSV-born labels arrive as 1/0 or 1.0/0.0: both must name the class "1", not two classes.
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value  # booleans then fail as "expected a string": true/false is too ambiguous
    if isinstance(value, float) and not math.isfinite(value):
        raise PydanticCustomError("label_not_finite", "a label must be a string or a finite number")
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return str(value)


#: A class label. A JSON number becomes its string form: ``1`` and ``1.0`` both become ``"1"``.
Label = Annotated[
    str, BeforeValidator(_label_from_number), StringConstraints(min_length=1, max_length=256)
]
#: Strict: a string or a boolean in a number's place is an error, not a silent conversion.
Number = Annotated[float, Strict()]
#: Bounded so that arithmetic downstream (float conversion, hypot) can never overflow.
Integer = Annotated[int, Strict(), Field(ge=-(2**53), le=2**53)]
Count = Annotated[int, Strict(), Field(ge=0, le=2**63 - 1)]
Probability = Annotated[float, Strict(), Field(ge=0.0, le=1.0, allow_inf_nan=False)]
FiniteNumber = Annotated[float, Strict(), Field(allow_inf_nan=False)]
#: ``None`` or NaN means "this test was skipped"; ±inf is rejected by the owning model.
#: Keys are unconstrained on purpose: a length check per key costs ~20 % of decoding, and
#: the payload size limit already bounds them.
Values = dict[str, Number | None]


#: Largest magnitude a measurement may have (decode refuses more): far beyond any physical
#: reading, and small enough that its square, a model's variance update, stays finite.
MAX_ABS_VALUE = 1e12


def _reject_out_of_range(values: dict[str, float | None], what: str,
                         info: ValidationInfo) -> dict[str, float | None]:
    limit = (info.context or {}).get("max_abs_value", MAX_ABS_VALUE)
    # The common path in C: a sum of magnitudes within the limit bounds each of them
    # (for non-negative terms every rounded partial sum is at least each term; filter
    # drops None and zeros). A NaN (a skipped test) makes the sum NaN, so such a record
    # takes the exact test below, where None and NaN compare False.
    if sum(map(abs, filter(None, values.values()))) <= limit:
        return values
    if not any(v is not None and abs(v) > limit for v in values.values()):
        return values
    key, value = next((k, v) for k, v in values.items() if v is not None and abs(v) > limit)
    if math.isinf(value):
        raise PydanticCustomError(
            "infinite_value",
            "{what} is {value} (too large for a double?); send a finite number,"
            " or null or NaN for a skipped test",
            {"key": key, "what": what, "value": "Infinity" if value > 0 else "-Infinity"},
        )
    raise PydanticCustomError(
        "value_out_of_range",
        "{what} is {value}, beyond the limit of ±{limit} (learner.limits.max_abs_value); "
        "check the unit, or send null for a reading that failed",
        {"key": key, "what": what, "value": f"{value:.3g}", "limit": f"{limit:.3g}"},
    )


class _Message(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    schema_version: Literal[1] = 1


class _RecordBase(_Message):
    record_id: RecordId
    ts: Timestamp
    label: Label | None = None


#: Most failing tests one record names (a part that fails more lists the first ones).
MAX_FAILED_TESTS = 1000
#: Bins as STDF writes them (U*2); 65535 there means "no bin" and arrives as null.
Bin = Annotated[int, Strict(), Field(ge=0, le=65535)]
Flag = Annotated[bool, Strict()]


def _few_enough_tests(names: list[str]) -> list[str]:
    if len(names) > MAX_FAILED_TESTS:
        raise PydanticCustomError(
            "too_many_failed_tests",
            "names {count} tests; send at most {limit} (the first ones failed)",
            {"count": len(names), "limit": MAX_FAILED_TESTS},
        )
    return names


class TestLimits(BaseModel):
    """A test's limits and units, as the tester's program states them (STDF LO_LIMIT,
    HI_LIMIT, UNITS). ``None``: the test has no such limit, or the file does not say.

    >>> TestLimits(lo=0.8, hi=1.0, units="V").hi
    1.0
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    __test__: ClassVar[bool] = False  # a model, not a pytest test class

    lo: FiniteNumber | None = None
    hi: FiniteNumber | None = None
    units: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None


#: Optional fields a record leaves out of its JSON when they say nothing (None, False),
#: so a record that never had them encodes exactly as before they existed.
_OMITTED_WHEN_ABSENT = ("limits", "retest", "no_parametric", "hard_bin", "soft_bin",
                        "failed_tests")


class ParametricRecord(_RecordBase):
    """One device measured at one test insertion.

    Examples
    --------
    >>> r = ParametricRecord(record_id="L1-0001", ts="2026-11-24T10:15:02Z", product="PMIC-A7",
    ...                      measurements={"vdd_core_v": 0.9012, "leak_ua": None})
    >>> r.kind, r.ts.isoformat(), r.measurements["leak_ua"] is None
    ('parametric', '2026-11-24T10:15:02+00:00', True)
    """

    kind: Literal["parametric"] = "parametric"
    product: Name
    test_program: Name | None = None
    tester_id: Name | None = None
    site: Annotated[Integer, Field(ge=0)] | None = None
    lot_id: Name | None = None
    wafer_id: Name | None = None
    die_x: Integer | None = None
    die_y: Integer | None = None
    measurements: Values
    #: Limits and units per measurement, keyed as in ``measurements``.
    limits: dict[str, TestLimits] | None = None
    #: Not the part's first test at this insertion (its record_id says which retest).
    retest: Flag = False
    #: The part has no parametric result with a value (its flow stopped before any).
    no_parametric: Flag = False
    hard_bin: Bin | None = None
    soft_bin: Bin | None = None
    #: The tests the part failed, by name, in test order (``[]``: it failed none).
    failed_tests: Annotated[list[Name], AfterValidator(_few_enough_tests)] | None = None

    @field_validator("measurements")
    @classmethod
    def _finite_measurements(cls, values: dict[str, float | None],
                             info: ValidationInfo) -> dict[str, float | None]:
        return _reject_out_of_range(values, "measurement", info)

    @field_validator("limits")
    @classmethod
    def _limits_name_measurements(cls, limits: dict[str, TestLimits] | None,
                                  info: ValidationInfo) -> dict[str, TestLimits] | None:
        measured = info.data.get("measurements")  # absent when it was itself invalid
        if limits and measured is not None and not limits.keys() <= measured.keys():
            stray = next(name for name in limits if name not in measured)
            raise PydanticCustomError(
                "limits_without_measurement",
                "names {name}, which is not in measurements; key limits by the "
                "measurement's name",
                {"name": json.dumps(stray)[:80]},
            )
        return limits

    @model_serializer(mode="wrap")
    def _omit_absent(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        for name in _OMITTED_WHEN_ABSENT:
            value = data.get(name, True)
            if value is None or value is False:  # not "== 0": bin 0 is a bin
                del data[name]
        return data


class TransactionRecord(_RecordBase):
    """A business or equipment event with numeric and categorical fields.

    Examples
    --------
    >>> t = TransactionRecord(record_id="txn-1", ts="2026-11-24T10:15:02Z",
    ...                       numeric={"amount": 123.4}, categorical={"country": "DE"}, label=1)
    >>> t.kind, t.label
    ('transaction', '1')
    """

    kind: Literal["transaction"] = "transaction"
    numeric: Values = Field(default_factory=dict)
    categorical: dict[str, Annotated[str, StringConstraints(max_length=256)]] = Field(
        default_factory=dict
    )

    @field_validator("numeric")
    @classmethod
    def _finite_numeric(cls, values: dict[str, float | None],
                        info: ValidationInfo) -> dict[str, float | None]:
        return _reject_out_of_range(values, "number", info)


#: Any input record; ``kind`` says which.
Record = Annotated[ParametricRecord | TransactionRecord, Field(discriminator="kind")]


#: Influences a request lists at most: what a card has room for.
MAX_INFLUENCES = 8


class Influence(BaseModel):
    """How hard one feature pushed the prediction towards the predicted class (a linear
    model's weight × the feature's scaled value; negative: against it); or, with
    ``test``, one test on a tree's decision path: ``weight`` is then the record's value
    of the feature (None: it had none) and ``test`` the branch taken (``≤ 0.93``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    feature: Name
    weight: FiniteNumber | None
    test: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None

    @model_validator(mode="after")
    def _weight_unless_a_test(self) -> Influence:
        if self.weight is None and self.test is None:
            raise PydanticCustomError("influence_weight", "weight is required without a test")
        return self


class OracleRequest(_Message):
    """A question to the oracle: what is the label of ``record``?

    Examples
    --------
    >>> rec = TransactionRecord(record_id="txn-1", ts="2026-11-24T10:15:02Z")
    >>> req = OracleRequest(query_id=query_id_for("txn-1", "fraud"), record_id="txn-1",
    ...     kind="transaction", model_key="fraud", reason="warmup", uncertainty=1.0,
    ...     threshold=0.6, proba={}, predicted=None, model_version=0,
    ...     created_at="2026-11-24T10:15:03Z", expires_at="2026-11-25T10:15:03Z", record=rec)
    >>> req.query_id
    'q-3142562a0bdfa9467ee3'
    """

    query_id: Name
    record_id: RecordId
    kind: RecordKind
    model_key: Name
    reason: QueryReason
    uncertainty: Probability
    threshold: FiniteNumber
    proba: dict[Label, Probability]
    predicted: Label | None = None
    model_version: Count
    created_at: Timestamp
    expires_at: Timestamp
    record: Record
    #: The features that pushed the prediction most, largest first (linear templates),
    #: or the tests of a tree's decision path, root first; absent otherwise.
    influences: Annotated[list[Influence], Field(max_length=MAX_INFLUENCES)] | None = None

    @model_validator(mode="after")
    def _matches_record(self) -> OracleRequest:
        if self.record.record_id != self.record_id or self.record.kind != self.kind:
            raise PydanticCustomError(
                "record_mismatch",
                'record_id and kind must be those of the embedded record ("{record_id}", "{kind}")',
                {"record_id": self.record.record_id, "kind": self.record.kind},
            )
        return self


class OracleLabel(_Message):
    """The oracle's answer to one query.

    Examples
    --------
    >>> OracleLabel(query_id="q-1", label=0, labeler="eng-42",
    ...             labeled_at="2026-11-24T10:20:00Z").label
    '0'
    """

    query_id: Name
    label: Label
    labeler: Name | None = None
    labeled_at: Timestamp


class Prediction(_Message):
    """What the model said about one record (one message per valid input record).

    Examples
    --------
    >>> p = Prediction(record_id="r1", model_key="PMIC-A7", predicted="pass",
    ...     proba={"pass": 0.9, "fail": 0.1}, uncertainty=0.2, queried=False, query_id=None,
    ...     model_version=3, ts="2026-11-24T10:15:02Z")
    >>> p.predicted, p.queried
    ('pass', False)
    """

    record_id: RecordId
    model_key: Name
    predicted: Label | None
    proba: dict[Label, Probability]
    uncertainty: Probability
    queried: Annotated[bool, Strict()]
    query_id: Name | None = None
    model_version: Count
    ts: Timestamp


class DeadLetter(_Message):
    """An input that could not be used: where it came from, why, and its original bytes.

    Examples
    --------
    >>> d = DeadLetter.from_payload(b"not json", "payload is not valid JSON",
    ...     source_topic="ate.parametric", partition=0, offset=7,
    ...     ts=datetime(2026, 11, 24, tzinfo=UTC))
    >>> d.payload_b64, d.payload()
    ('bm90IGpzb24=', b'not json')
    """

    source_topic: Name
    partition: Count
    offset: Count
    error: str
    payload_b64: str
    ts: Timestamp
    #: Size and sha256 of the whole original payload; ``payload_b64`` holds only its start
    #: when ``payload_truncated`` (a dead letter must fit the dead-letter topic).
    payload_bytes: Count | None = None
    payload_sha256: str | None = None
    payload_truncated: bool = False

    @classmethod
    def from_payload(
        cls,
        payload: bytes | None,
        error: str | Exception,
        *,
        source_topic: str,
        partition: int,
        offset: int,
        ts: datetime | None = None,
        keep_bytes: int | None = None,
    ) -> DeadLetter:
        """Wrap the original bytes (at most ``keep_bytes`` of them) and the reason;
        ``error`` may be a ``DecodeError``. ``ts`` defaults to now (UTC).

        >>> d = DeadLetter.from_payload(b"x" * 10, "too big", source_topic="t", partition=0,
        ...                             offset=1, keep_bytes=4)
        >>> d.payload(), d.payload_bytes, d.payload_truncated
        (b'xxxx', 10, True)
        """
        data = payload or b""
        reason = getattr(error, "reason", None) or str(error) or type(error).__name__
        kept = data if keep_bytes is None else data[:keep_bytes]
        return cls(
            source_topic=source_topic,
            partition=partition,
            offset=offset,
            error=reason,
            payload_b64=base64.b64encode(kept).decode("ascii"),
            ts=ts if ts is not None else datetime.now(UTC),
            payload_bytes=len(data),
            payload_sha256=hashlib.sha256(data).hexdigest(),
            payload_truncated=len(kept) < len(data),
        )

    def payload(self) -> bytes:
        """The original bytes, as received."""
        return base64.b64decode(self.payload_b64)


def query_id_for(record_id: str, model_key: str) -> str:
    """The query id for a record scored by a model: the same in every process, forever.

    A re-sent request after a crash is therefore recognisably the same query. The pair is
    encoded as a JSON array before hashing, so ids containing separators cannot collide
    (``("a-b", "c")`` and ``("a", "b-c")`` differ); ``hash()`` is never used since it is
    salted per process.

    Examples
    --------
    >>> query_id_for("L123-W07-X12-Y33-S2-0001", "PMIC-A7")
    'q-cb76eb4719ca0fce0ee8'
    >>> query_id_for("a-b", "c") != query_id_for("a", "b-c")
    True
    """
    canonical = json.dumps([record_id, model_key], ensure_ascii=True, separators=(",", ":"))
    return "q-" + hashlib.sha256(canonical.encode("ascii")).hexdigest()[:20]
