"""Queries asked and not yet answered, joined with the labels that come back.

Expiry is judged from the label log (the time the broker took the label, against the
request's ``expires_at``), never from a local clock, so every replica reaches the same
verdict for the same label and their models stay identical. Only the count of live
queries, which holds back new queries when engineers fall behind, reads the local time:
it changes what this replica asks, never what any replica learns.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from stream_al.records import OracleRequest

JoinOutcome = Literal["applied", "unknown_query", "expired", "duplicate"]


@dataclass(frozen=True)
class Join:
    outcome: JoinOutcome
    request: OracleRequest | None = None


class PendingQueries:
    """A bounded, insertion-ordered store of open queries plus recently answered ids.

    ``capacity`` bounds memory when the oracle stops answering; the oldest open query is
    dropped first (it is the likeliest to be expired). ``answered_memory`` bounds the set
    used to tell a duplicate label from an unknown one.
    """

    def __init__(self, capacity: int = 100_000, answered_memory: int = 100_000) -> None:
        self.capacity = capacity
        self.answered_memory = answered_memory
        self._open: OrderedDict[str, OracleRequest] = OrderedDict()
        self._answered: OrderedDict[str, None] = OrderedDict()
        self._expiry: list[tuple[float, str]] = []  # (expires_at, query_id), a heap
        # The same, for drop_expired: popped by the label log's time, not the local clock.
        # A label burst calls drop_expired once per label, so it must not scan every open
        # query (thousands behind a slow desk made that quadratic). Entries of queries
        # already closed are skipped when they surface.
        self._drop_order: list[tuple[float, str]] = []
        self._lapsed: set[str] = set()  # open, but past expires_at by the local clock
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._open)

    def __contains__(self, query_id: object) -> bool:
        return query_id in self._open

    def was_answered(self, query_id: str) -> bool:
        return query_id in self._answered

    def add(self, request: OracleRequest) -> bool:
        """Remember a request; False when it is already open or answered (a re-send)."""
        if request.query_id in self._open or request.query_id in self._answered:
            return False
        self._open[request.query_id] = request
        expires = request.expires_at.timestamp()
        heapq.heappush(self._expiry, (expires, request.query_id))
        heapq.heappush(self._drop_order, (expires, request.query_id))
        if len(self._drop_order) > 2 * len(self._open) + 1024:
            self._drop_order = self._order_open()  # closed queries' entries, compacted
        while len(self._open) > self.capacity:
            evicted, _ = self._open.popitem(last=False)
            self._lapsed.discard(evicted)
            self.evicted += 1
        return True

    def live_count(self, now: datetime) -> int:
        """Open queries not yet past their expiry at ``now``: what engineers still owe."""
        t = now.timestamp()
        while self._expiry and self._expiry[0][0] <= t:
            _, query_id = heapq.heappop(self._expiry)
            if query_id in self._open:
                self._lapsed.add(query_id)
        return len(self._open) - len(self._lapsed)

    def join(self, query_id: str, labeled_at: datetime) -> Join:
        """Match a label to its request and close the query."""
        request = self._open.pop(query_id, None)
        self._lapsed.discard(query_id)
        if request is None:
            outcome: JoinOutcome = "duplicate" if query_id in self._answered else "unknown_query"
            return Join(outcome)
        self._remember_answered(query_id)
        if labeled_at > request.expires_at:
            return Join("expired", request)
        return Join("applied", request)

    def drop_expired(self, now: datetime, grace_s: float) -> list[OracleRequest]:
        """Forget queries long past expiry; a label for them later is unknown, not applied."""
        cutoff = now.timestamp() - grace_s
        stale = []
        while self._drop_order and self._drop_order[0][0] < cutoff:
            expires, query_id = heapq.heappop(self._drop_order)
            request = self._open.get(query_id)
            if request is None or request.expires_at.timestamp() != expires:
                continue  # answered or evicted since
            del self._open[query_id]
            self._lapsed.discard(query_id)
            stale.append(request)
        return stale

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if "_drop_order" not in state:  # pickled before the drop heap existed
            self._drop_order = self._order_open()

    def _order_open(self) -> list[tuple[float, str]]:
        order = [(r.expires_at.timestamp(), qid) for qid, r in self._open.items()]
        heapq.heapify(order)
        return order

    def open_requests(self) -> list[OracleRequest]:
        return list(self._open.values())

    def _remember_answered(self, query_id: str) -> None:
        self._answered[query_id] = None
        while len(self._answered) > self.answered_memory:
            self._answered.popitem(last=False)
