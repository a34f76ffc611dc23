"""The label budget, enforced whatever a gate says (DESIGN §4).

Per model key, a fraction B of records may be queried: the paper's forgetting estimate
û (Žliobaitė et al. 2014) paces the queries and an exact ring of the last w decisions
caps them, so no w consecutive records hold more than ⌊B·w⌋ queries; and from the first
record on, a model's queries after n records never exceed ⌈B·n⌉ + 1 (as MOA holds
labels/instances under B at every step). Audits have their
own share A inside B; every other reason (uncertainty, novelty, warm-up) may use only
B − A, so audits always find room and the total stays within B. Globally, the oracle is
one team: an optional token bucket caps queries per hour and an optional limit caps
unanswered queries. The caller supplies ``now``; the core never reads a clock.

The learner asks before the gate and records after it, once per record::

    if budget.may_query(key, "uncertainty", now, pending):
        reason = gate.decide(u, novelty)
    budget.record(key, reason, now)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, model_validator

from stream_al.reasons import Reason

#: Audit share when none is configured: 1% of records, at most a tenth of the budget.
DEFAULT_AUDIT_FRACTION: Final = 0.01
_SECONDS_PER_HOUR: Final = 3600.0
#: Burst size of the hourly bucket, in minutes of allowance.
_BURST_MINUTES: Final = 1.0
_EPSILON: Final = 1e-9


def window_cap(fraction: float, window: int) -> int:
    """Most queries any ``window`` consecutive records may hold: ⌊fraction·window⌋.

    >>> window_cap(0.05, 1000), window_cap(0.3 - 0.1, 1000)
    (50, 200)
    """
    # The epsilon absorbs float error, e.g. (0.3 - 0.1)·1000 = 199.99999999999997.
    return math.floor(fraction * window + _EPSILON)


def _default_audit(data: dict[str, Any]) -> float:
    """1% of records, at most a tenth of B, and 0 if the window cannot hold one audit."""
    fraction, window = data.get("fraction"), data.get("window")
    if fraction is None or window is None:
        return 0.0  # those fields failed validation; their own errors say why
    audit = min(DEFAULT_AUDIT_FRACTION, fraction / 10)
    return audit if window_cap(audit, window) >= 1 else 0.0


class BudgetConfig(BaseModel):
    """How many labels the oracle may be asked for.

    >>> BudgetConfig(fraction=0.05).audit_fraction
    0.005
    >>> BudgetConfig(fraction=0.0005)
    Traceback (most recent call last):
    ...
    pydantic_core._pydantic_core.ValidationError: 1 validation error for BudgetConfig
      Value error, fraction × window = 0.5 holds no query: raise window to at least 2000 ...
    ...
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    fraction: float = Field(0.1, gt=0.0, le=1.0,
                            description="B: share of records that may be queried, in (0, 1], "
                            "e.g. 0.1 for 10%")
    window: int = Field(1000, ge=1, description="w: records over which B is measured "
                        "(paper: 1000)")
    audit_fraction: float = Field(
        default_factory=_default_audit, ge=0.0, lt=1.0,
        description="A: share of records for random audits, within B "
        "(default min(0.01, B/10), or 0 if w·A < 1)",
    )
    queries_per_hour: float | None = Field(None, gt=0.0, description="oracle capacity, all "
                                           "models, > 0 (or unset)")
    max_pending: int | None = Field(None, ge=1, description="most unanswered queries, all "
                                    "models, ≥ 1 (or unset)")

    @model_validator(mode="after")
    def _shares_fit_the_window(self) -> BudgetConfig:
        b, a, w = self.fraction, self.audit_fraction, self.window
        if window_cap(b, w) < 1:
            raise ValueError(
                f"fraction × window = {b * w:.3g} holds no query: raise window to at least "
                f"{math.ceil(1 / b - _EPSILON)} or fraction to at least {1 / w:.3g}"
            )
        if a >= b:
            raise ValueError(f"audit_fraction ({a}) must be < fraction ({b}): lower it, or 0")
        if 0.0 < a and window_cap(a, w) < 1:
            raise ValueError(
                f"audit_fraction × window = {a * w:.3g} holds no audit: set audit_fraction "
                f"to 0 or at least {1 / w:.3g}"
            )
        if window_cap(b, w) - window_cap(a, w) < 1:
            raise ValueError("fraction − audit_fraction leaves no room for other queries: lower "
                             "audit_fraction or raise window")  # fmt: skip
        return self


class BudgetWindow:
    """Spending of one share over the last ``window`` records.

    Keeps the paper's estimate û (u ← u·λ + q, λ = (w−1)/w, û = u/w) to pace queries, and
    an exact ring of the last w decisions as a hard cap. O(1) per record.

    Parameters
    ----------
    fraction
        The share of records this window may spend, in [0, 1].
    window
        w, the number of records the share is measured over.

    Examples
    --------
    >>> spend = BudgetWindow(fraction=0.2, window=10)
    >>> for queried in [True, True, False]:
    ...     spend.record(queried)
    >>> spend.recent_queries, spend.allows(), round(spend.spent_ratio, 3)
    (2, False, 0.171)
    """

    def __init__(self, fraction: float, window: int) -> None:
        if not 0.0 <= fraction <= 1.0 or window < 1:
            raise ValueError(f"need 0 ≤ fraction ≤ 1 and window ≥ 1, got {fraction}, {window}")
        self.fraction = fraction
        self.window = window
        self.cap = window_cap(fraction, window)
        self._decay = (window - 1) / window
        self._u = 0.0
        self._ring = bytearray(window)  # 1 where the record was queried
        self._next = 0  # slot of the oldest decision, overwritten by the next one
        self._count = 0

    @property
    def spent_ratio(self) -> float:
        """û: the forgetting estimate of the fraction of recent records queried."""
        return self._u / self.window

    @property
    def recent_queries(self) -> int:
        """Queries among the last w − 1 records: those in every window the next one joins."""
        return self._count - self._ring[self._next]

    def allows(self) -> bool:
        """True if querying the next record keeps both û and the hard cap within the share."""
        return self.spent_ratio < self.fraction and self.recent_queries < self.cap

    def record(self, queried: bool) -> None:
        q = int(queried)
        self._u = self._u * self._decay + q
        self._count += q - self._ring[self._next]
        self._ring[self._next] = q
        self._next = (self._next + 1) % self.window


class TokenBucket:
    """At most ``per_hour`` queries an hour, with a burst of one minute's allowance.

    Holds ``capacity = max(1, per_hour/60)`` tokens, refilled at ``per_hour/3600`` per
    second of the caller's clock; any T seconds admit at most ``allowance(T)`` takes.
    A ``now`` earlier than one already seen refills nothing.

    Examples
    --------
    >>> bucket = TokenBucket(per_hour=60)
    >>> bucket.allows(0.0), bucket.take(0.0), bucket.allows(30.0), bucket.allows(60.0)
    (True, None, False, True)
    """

    def __init__(self, per_hour: float) -> None:
        if not per_hour > 0.0:
            raise ValueError(f"per_hour must be > 0, got {per_hour}")
        self.per_hour = per_hour
        self.capacity = max(1.0, per_hour * _BURST_MINUTES / 60.0)
        self._tokens = self.capacity
        self._last: float | None = None

    def allowance(self, seconds: float) -> float:
        """Most takes any interval of ``seconds`` can hold."""
        return self.capacity + self.per_hour * seconds / _SECONDS_PER_HOUR

    def available(self, now: float) -> float:
        if self._last is None or now <= self._last:
            return self._tokens
        refill = (now - self._last) * self.per_hour / _SECONDS_PER_HOUR
        return min(self.capacity, self._tokens + refill)

    def allows(self, now: float) -> bool:
        return self.available(now) >= 1.0

    def take(self, now: float) -> None:
        """Spend a token; taken without one, it is owed and repaid from the refill."""
        self._tokens = self.available(now) - 1.0
        self._last = now if self._last is None else max(self._last, now)


@dataclass
class _ModelSpend:
    total: BudgetWindow  # every query, share B
    audit: BudgetWindow  # audits only, share A
    records: int = 0  # every record of this model so far
    queries: int = 0  # every query of this model so far, audits included
    audits: int = 0

    def within_running_budget(self, share: float, audit: bool) -> bool:
        """Would one more query of this share (audits: A; the rest: B − A) keep it within
        ⌈share·n⌉ after n records, from the first record on? Then all queries stay within
        ⌈B·n⌉ + 1 at every step. The window alone let a stream shorter than w take up
        to ⌊B·w⌋ queries up front (1.76 × B on a 1,250-record stream)."""
        spent = self.audits if audit else self.queries - self.audits
        return spent + 1 <= math.ceil(share * (self.records + 1) - _EPSILON)


class BudgetManager:
    """Per-model budget windows plus the oracle's global hourly and pending limits.

    Parameters
    ----------
    config
        The budget (re-validated here: ``model_copy(update=…)`` skips validation).

    Examples
    --------
    >>> budget = BudgetManager(BudgetConfig(fraction=0.1, window=20, audit_fraction=0.05))
    >>> queried = 0
    >>> for t in range(200):
    ...     reason = "uncertainty" if budget.may_query("PMIC-A7", "uncertainty", t, 0) else None
    ...     budget.record("PMIC-A7", reason, now=float(t))
    ...     queried += reason is not None
    >>> queried / 200  # uncertainty may use B − A
    0.05
    >>> budget.may_query("PMIC-A7", "audit", 200.0, 0)  # the audit share is untouched
    True
    """

    def __init__(self, config: BudgetConfig) -> None:
        self.config = BudgetConfig.model_validate(config.model_dump())
        b, a, w = self.config.fraction, self.config.audit_fraction, self.config.window
        self._general_share = b - a
        self._general_cap = window_cap(b, w) - window_cap(a, w)
        self._models: dict[str, _ModelSpend] = {}
        self._buckets = self._hourly_buckets()

    def may_query(self, model_key: str, reason: Reason, now: float, pending: int) -> bool:
        """True if a query for ``reason`` fits every limit; changes nothing."""
        limit = self.config.max_pending
        if limit is not None and pending >= limit:
            return False
        bucket = self._buckets.get(reason == "audit")
        if bucket is not None and not bucket.allows(now):
            return False
        spend = self._models.get(model_key) or self._fresh_spend()
        audit = reason == "audit"
        share = self.config.audit_fraction if audit else self._general_share
        if not spend.within_running_budget(share, audit):
            return False
        return spend.audit.allows() if reason == "audit" else self._general_room(spend)

    def record(self, model_key: str, reason: Reason | None, now: float) -> None:
        """Account for one record of ``model_key``: ``reason`` if queried, else None."""
        spend = self._spend(model_key)
        spend.total.record(reason is not None)
        spend.audit.record(reason == "audit")
        spend.records += 1
        spend.queries += reason is not None
        spend.audits += reason == "audit"
        bucket = self._buckets.get(reason == "audit")
        if reason is not None and bucket is not None:
            bucket.take(now)

    def spent_ratio(self, model_key: str) -> float:
        """û of every query of ``model_key``, to compare with B (0.0 for an unseen key)."""
        spend = self._models.get(model_key)
        return 0.0 if spend is None else spend.total.spent_ratio

    def max_queries_in(self, seconds: float) -> float | None:
        """Most queries the hourly limit admits in any ``seconds``; None without a limit."""
        if not self._buckets:
            return None
        return sum(bucket.allowance(seconds) for bucket in self._buckets.values())

    def _general_room(self, spend: _ModelSpend) -> bool:
        # Non-audit spending is total minus audits; û is linear, so subtracting is exact.
        spent = spend.total.spent_ratio - spend.audit.spent_ratio
        recent = spend.total.recent_queries - spend.audit.recent_queries
        return spent < self._general_share and recent < self._general_cap

    def _spend(self, model_key: str) -> _ModelSpend:
        spend = self._models.get(model_key)
        if spend is None:
            spend = self._models[model_key] = self._fresh_spend()
        return spend

    def _fresh_spend(self) -> _ModelSpend:
        w = self.config.window
        return _ModelSpend(BudgetWindow(self.config.fraction, w),
                           BudgetWindow(self.config.audit_fraction, w))

    def _hourly_buckets(self) -> dict[bool, TokenBucket]:
        """Keyed by "is an audit": audits get A/B of the hourly capacity, like the windows."""
        per_hour = self.config.queries_per_hour
        if per_hour is None:
            return {}
        audit_share = self.config.audit_fraction / self.config.fraction
        buckets = {False: TokenBucket(per_hour * (1.0 - audit_share))}
        if audit_share > 0.0:
            buckets[True] = TokenBucket(per_hour * audit_share)
        return buckets
