"""Bounds on what one message, one model and one key may cost.

Every byte the daemon reads is untrusted: without these a single record can crash a
model (1e200 overflows a variance), stall the loop (a request too large for its topic),
or exhaust memory (a new product on every record, 90,000 measurement names, 5,000
classes). Each bound turns such input into a dead letter with a reason, or a refusal
counted in the metrics, and the daemon goes on.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

from stream_al.records import MAX_ABS_VALUE


class Limits(BaseModel):
    """The defaults suit a floor; each is a setting (``learner.limits.*``).

    >>> Limits().max_abs_value
    1000000000000.0
    >>> Limits(model_key_pattern="[").model_key_pattern
    Traceback (most recent call last):
    ...
    pydantic_core._pydantic_core.ValidationError: 1 validation error for Limits
    model_key_pattern
      Value error, not a regular expression: unterminated character set at position 0 [...]
    ...
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_abs_value: float = Field(
        MAX_ABS_VALUE, gt=0, description="largest |measurement| or |number| accepted at decode")
    max_record_bytes: int = Field(1_000_000, ge=1024, description="largest input message")
    max_request_bytes: int = Field(
        900_000, ge=4096, description="largest oracle request; a record that would not fit is "
        "predicted but never queried (keep below the requests topic's max.message.bytes)")
    max_dead_letter_payload_bytes: int = Field(
        262_144, ge=0, description="original bytes kept in a dead letter; beyond, the start "
        "is kept with the size and sha256 of the whole")
    prediction_top_k: int = Field(
        20, ge=2, description="classes listed in a prediction or request, most probable first")
    max_model_keys: int = Field(
        1000, ge=1, description="models the daemon keeps; records of a new key beyond it "
        "are dead-lettered")
    model_key_pattern: str | None = Field(
        None, description="regular expression a model key must match in full (e.g. "
        "'PMIC-[A-Z0-9]+'); records of other keys are dead-lettered")
    max_features_per_model: int = Field(
        5000, ge=1, description="feature names a model learns; a labelled record that would "
        "take it past the cap is dead-lettered instead of learnt")
    max_classes_per_model: int = Field(
        256, ge=2, description="classes a model learns; a label naming one more is refused")

    @field_validator("model_key_pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as error:
                raise ValueError(f"not a regular expression: {error}") from None
        return value

    def allows_key(self, model_key: str) -> bool:
        return self.model_key_pattern is None or re.fullmatch(
            self.model_key_pattern, model_key) is not None
