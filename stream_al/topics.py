"""Topic names (DESIGN §1, §3): the defaults floor scripts rely on, each configurable."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class TopicNames(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    inputs: tuple[str, ...] = Field(("ate.parametric", "ate.transactions"), min_length=1)
    predictions: str = "stream-al.predictions"
    requests: str = "stream-al.oracle.requests"
    labels: str = "stream-al.oracle.labels"
    dlq: str = "stream-al.dlq"
    #: Desk claims: which engineer holds which card, so two never answer one query.
    claims: str = "stream-al.oracle.claims"
