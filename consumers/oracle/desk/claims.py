"""Claims shared between desk processes (web desks and terminals) through a small topic.

Every process reads the claim log in one order and applies each claim with the same rule
(``DeskQueue.claim``), so they agree on who holds which card without talking to each
other. A holder's own claim takes effect when it is read back, tens of milliseconds later.

Message (JSON, key = query_id): ``{"schema_version": 1, "query_id", "holder", "labeler",
"at", "until"}``; ``until`` null releases the holder's claim on that query.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints, ValidationError

from stream_al.errors import DecodeError

#: The default topic; one partition, so there is one order to agree on.
DEFAULT_CLAIMS_TOPIC = "stream-al.oracle.claims"
Name = Annotated[str, StringConstraints(min_length=1, max_length=256)]


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("a claim's times must carry a timezone")
    return value


class DeskClaim(BaseModel):
    """``labeler`` (at ``holder``) takes ``query_id`` at ``at`` until ``until``; or, with
    ``until`` None, lets it go."""

    model_config = ConfigDict(frozen=True, extra="allow")

    schema_version: Literal[1] = 1
    query_id: Name
    holder: Name
    labeler: Name
    at: Annotated[datetime, AfterValidator(_aware)]
    until: Annotated[datetime, AfterValidator(_aware)] | None = None


def decode_claim(payload: bytes) -> DeskClaim:
    """Bytes from the claim topic; raises ``DecodeError``."""
    try:
        return DeskClaim.model_validate_json(payload)
    except ValidationError as error:
        problem = error.errors(include_url=False)[0]
        where = ".".join(str(part) for part in problem["loc"]) or "payload"
        raise DecodeError(f"{where}: {problem['msg']}") from None
