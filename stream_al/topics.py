"""Topic names: the defaults floor scripts rely on, each configurable."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


class TopicNames(BaseModel):
    """Every topic stream-al reads or writes. ``inputs`` defaults to the parametric and
    transaction topics, which are also where ``stream-al produce`` writes each kind.

    >>> TopicNames(parametric="floor.a").inputs
    ('floor.a', 'ate.transactions')
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    parametric: str = Field("ate.parametric", min_length=1,
                            description="input topic of parametric records")
    transactions: str = Field("ate.transactions", min_length=1,
                              description="input topic of transaction records")
    inputs: tuple[str, ...] = Field(
        (), description="every topic the daemon scores (default: parametric, transactions)")
    predictions: str = Field("stream-al.predictions", min_length=1)
    requests: str = Field("stream-al.oracle.requests", min_length=1)
    labels: str = Field("stream-al.oracle.labels", min_length=1,
                        description="one partition: the order every replica learns in")
    dlq: str = Field("stream-al.dlq", min_length=1)
    #: Desk claims: which engineer holds which card, so two never answer one query.
    claims: str = Field("stream-al.oracle.claims", min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _inputs_default_to_both_kinds(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("inputs"):
            parametric = data.get("parametric", cls.model_fields["parametric"].default)
            transactions = data.get("transactions", cls.model_fields["transactions"].default)
            return {**data, "inputs": (parametric, transactions)}
        return data

    def for_kind(self, kind: str) -> str:
        """The input topic of records of ``kind`` (parametric or transaction)."""
        return self.transactions if kind == "transaction" else self.parametric
