"""Why a record was sent to the oracle: the four reasons of the oracle protocol (DESIGN §3).

Gates, the budget manager and the oracle request share this one definition, so a reason
can never be spelt differently in two places.

>>> from typing import get_args
>>> get_args(Reason)
('uncertainty', 'audit', 'novelty', 'warmup')
"""

from __future__ import annotations

from typing import Final, Literal, get_args

Reason = Literal["uncertainty", "audit", "novelty", "warmup"]

#: Every reason, in protocol order (for metric label pre-registration and validation).
REASONS: Final[tuple[Reason, ...]] = get_args(Reason)
