"""The labelling desk's queue: open oracle requests, who is looking at which, in what order.

Pure (the caller passes ``now``), so the web desk and the terminal labeller share it and
the tests need no clock.

Priority, highest first:

1. ``novelty`` — an input unlike anything seen: maybe a new failure mode, which costs
   wafers every minute it goes unnoticed.
2. ``warmup`` — a model without enough labels cannot gate at all; any of these labels
   makes it usable sooner.
3. ``uncertainty`` — the labels that move a working model's decision boundary most.
4. ``audit`` — random picks for an unbiased accuracy estimate: valuable in aggregate,
   no single one is urgent. (The price: audits answered mostly in quiet hours. Their
   choice is random, so the estimate stays unbiased in content, not in time.)

Then higher uncertainty first, then older first, then query id (a total order).

A *holder* is one place a person labels from (a browser session, a terminal); it holds
at most one claim at a time. A claim lasts ``lease``: after that, another holder may take
the card, but until someone does, the first holder may still answer it. Skipping sends
a card to the back of that holder's queue only.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from stream_al.errors import StreamAlError
from stream_al.reasons import Reason
from stream_al.records import OracleRequest

__all__ = ["DEFAULT_LEASE", "REASON_ORDER", "Answer", "Claim", "DeskQueue", "LabelRefused",
           "priority"]

#: Reasons, most urgent first (see the module docstring for why).
REASON_ORDER: Final[tuple[Reason, ...]] = ("novelty", "warmup", "uncertainty", "audit")
DEFAULT_LEASE: Final = timedelta(minutes=5)
_RANK: Final = {reason: rank for rank, reason in enumerate(REASON_ORDER)}


class LabelRefused(StreamAlError):
    """A label cannot be accepted for this query; ``reason`` says why in plain words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Claim:
    """``labeler`` (from ``holder``) is answering this query; others may take it after
    ``until``."""

    holder: str
    labeler: str
    until: datetime


@dataclass(frozen=True)
class Answer:
    """Who answered a query, and when (from the label message)."""

    labeler: str | None
    at: datetime


def priority(request: OracleRequest) -> tuple[int, float, datetime, str]:
    """The sort key of a request: smaller is asked first.

    Examples
    --------
    >>> from stream_al.records import TransactionRecord
    >>> def ask(qid, reason, u):
    ...     rec = TransactionRecord(record_id=qid, ts="2026-11-24T10:00:00Z")
    ...     return OracleRequest(query_id=qid, record_id=qid, kind="transaction",
    ...         model_key="m", reason=reason, uncertainty=u, threshold=0.5, proba={},
    ...         model_version=1, created_at="2026-11-24T10:00:00Z",
    ...         expires_at="2026-11-24T11:00:00Z", record=rec)
    >>> asks = [ask("a", "audit", 0.9), ask("b", "uncertainty", 0.7),
    ...         ask("c", "uncertainty", 0.8), ask("d", "novelty", 0.1)]
    >>> [r.query_id for r in sorted(asks, key=priority)]
    ['d', 'c', 'b', 'a']
    """
    return _RANK[request.reason], -request.uncertainty, request.created_at, request.query_id


class DeskQueue:
    """Open requests with claims, skips, answers and expiry.

    Examples
    --------
    >>> from datetime import UTC
    >>> from stream_al.records import TransactionRecord
    >>> now = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    >>> rec = TransactionRecord(record_id="r1", ts=now)
    >>> req = OracleRequest(query_id="q-1", record_id="r1", kind="transaction",
    ...     model_key="m", reason="uncertainty", uncertainty=0.8, threshold=0.5, proba={},
    ...     model_version=1, created_at=now, expires_at=now + timedelta(hours=1), record=rec)
    >>> queue = DeskQueue()
    >>> queue.add(req, now)
    True
    >>> queue.current("tab-1", "ann", now).query_id   # ann's tab claims the card
    'q-1'
    >>> queue.current("tab-2", "bob", now) is None    # bob never sees it
    True
    >>> queue.answered("q-1", "ann", now)
    True
    >>> len(queue)
    0
    """

    def __init__(self, lease: timedelta = DEFAULT_LEASE, answered_memory: int = 200_000) -> None:
        if lease <= timedelta(0):
            raise ValueError(f"lease must be positive, got {lease}")
        self.lease = lease
        self.answered_memory = answered_memory
        self._open: dict[str, OracleRequest] = {}
        self._answers: OrderedDict[str, Answer] = OrderedDict()
        self._claims: dict[str, Claim] = {}
        self._held: dict[str, str] = {}  # holder → the query id it claimed last
        self._skips: dict[str, dict[str, int]] = {}  # holder → query id → skip sequence
        self._skip_sequence = 0
        self.expired = 0

    def __len__(self) -> int:
        return len(self._open)

    def __contains__(self, query_id: object) -> bool:
        return query_id in self._open

    def get(self, query_id: str) -> OracleRequest | None:
        """The open request with this id, if any."""
        return self._open.get(query_id)

    def add(self, request: OracleRequest, now: datetime) -> bool:
        """Queue a request; False if it is a re-send, already answered or already expired."""
        query_id = request.query_id
        if query_id in self._open or query_id in self._answers:
            return False
        if request.expires_at <= now:
            self.expired += 1
            return False
        self._open[query_id] = request
        return True

    def answered(self, query_id: str, labeler: str | None, at: datetime) -> bool:
        """A label for this query was seen (from anyone); True if it was open here."""
        self._answers.setdefault(query_id, Answer(labeler, at))
        while len(self._answers) > self.answered_memory:
            self._answers.popitem(last=False)
        return self._remove(query_id)

    def answer_of(self, query_id: str) -> Answer | None:
        """Who answered this query, if a label for it was seen."""
        return self._answers.get(query_id)

    def forget_answer(self, query_id: str, request: OracleRequest | None) -> None:
        """Undo :meth:`answered` (a label that could not be delivered), reopening ``request``."""
        self._answers.pop(query_id, None)
        if request is not None:
            self._open[query_id] = request

    def expire(self, now: datetime) -> list[str]:
        """Drop every request whose ``expires_at`` has passed; their ids."""
        gone = [qid for qid, request in self._open.items() if request.expires_at <= now]
        for query_id in gone:
            self._remove(query_id)
        self.expired += len(gone)
        return gone

    def current(self, holder: str, labeler: str, now: datetime) -> OracleRequest | None:
        """The card ``holder`` is on: the one it holds, else the next one, claimed now.

        For a single process; several processes share claims through a log instead, with
        :meth:`candidate` to choose and :meth:`claim` to apply each claim in log order.
        """
        card = self.held(holder, now)
        if card is None and (chosen := self.candidate(holder, now)) is not None:
            self.claim(chosen.query_id, holder, labeler, now, now + self.lease)
            card = self.held(holder, now)
        return card

    def held(self, holder: str, now: datetime) -> OracleRequest | None:
        """The open card ``holder`` holds, if any (a lapsed claim counts until taken)."""
        query_id = self._held.get(holder)
        if query_id is None or not self._holds(holder, query_id, now):
            return None
        return self._open[query_id]

    def candidate(self, holder: str, now: datetime) -> OracleRequest | None:
        """The card ``holder`` should claim next, if any."""
        ordered = self._ordered(holder, now)
        return ordered[0] if ordered else None

    def claim(self, query_id: str, holder: str, labeler: str, at: datetime,
              until: datetime) -> bool:
        """Apply a claim made at ``at``; granted unless the query is answered or another
        holder's claim is live at ``at``. Applied in one order everywhere, claims from
        several processes reach the same verdicts. A holder keeps one claim: its
        previous one is released. A claim never lasts longer than the lease, whatever
        ``until`` it names: a forged claim "until 9999" would empty every desk's queue.
        """
        until = min(until, at + self.lease)
        other = self._claims.get(query_id)
        if query_id in self._answers or (other is not None and other.holder != holder
                                         and other.until > at):
            return False
        self._release(holder)
        self._claims[query_id] = Claim(holder, labeler, until)
        self._held[holder] = query_id
        return True

    def unclaim(self, query_id: str, holder: str) -> None:
        """Apply a release of ``holder``'s claim on ``query_id`` (no-op if it has none)."""
        if self._held.get(holder) == query_id:
            self._release(holder)
        elif (claim := self._claims.get(query_id)) is not None and claim.holder == holder:
            del self._claims[query_id]

    def waiting(self, holder: str, now: datetime) -> list[OracleRequest]:
        """What ``holder`` would see next, in order: neither its current card nor any card
        another holder has a live claim on."""
        held = self._held.get(holder)
        return [r for r in self._ordered(holder, now) if r.query_id != held]

    def claimed_by_others(self, holder: str, now: datetime) -> int:
        """How many open cards other holders are working on."""
        return sum(1 for qid in self._open if not self._free_for(qid, holder, now))

    def claim_of(self, query_id: str) -> Claim | None:
        """The claim on this query, live or lapsed, if any."""
        return self._claims.get(query_id)

    def held_by(self, holder: str) -> str | None:
        """The query ``holder`` claimed last (it may since have been taken or answered)."""
        return self._held.get(holder)

    def skip(self, query_id: str, holder: str) -> None:
        """Release ``holder``'s claim and send the card to the back of its queue."""
        self._release(holder)
        if query_id in self._open:
            self._skip_sequence += 1
            self._skips.setdefault(holder, {})[query_id] = self._skip_sequence

    def release(self, holder: str) -> None:
        """``holder`` is gone (tab closed, terminal quit): its card returns to the queue."""
        self._release(holder)
        self._skips.pop(holder, None)

    def check_answerable(self, query_id: str, holder: str, now: datetime) -> OracleRequest:
        """The request ``holder`` may label now.

        Raises
        ------
        LabelRefused
            If the query was answered, has expired, is unknown here, or another holder
            has a live claim on it.
        """
        answer = self._answers.get(query_id)
        if answer is not None:
            by = answer.labeler or "someone"
            raise LabelRefused(f"query {query_id} was already answered by {by} at "
                               f"{_clock(answer.at)}")
        request = self._open.get(query_id)
        if request is None:
            raise LabelRefused(f"query {query_id} is not open here: it expired or was never "
                               "seen on the request topic")
        if request.expires_at <= now:
            raise LabelRefused(f"query {query_id} expired at {_clock(request.expires_at)}")
        claim = self._claims.get(query_id)
        if claim is not None and claim.holder != holder and claim.until > now:
            raise LabelRefused(f"query {query_id} is being answered by {claim.labeler} "
                               f"(claimed until {_clock(claim.until)})")
        return request

    def _ordered(self, holder: str, now: datetime) -> list[OracleRequest]:
        skips = self._skips.get(holder, {})
        candidates = [r for qid, r in self._open.items()
                      if r.expires_at > now and self._free_for(qid, holder, now)]
        return sorted(candidates, key=lambda r: (skips.get(r.query_id, 0), priority(r)))

    def _free_for(self, query_id: str, holder: str, now: datetime) -> bool:
        claim = self._claims.get(query_id)
        return claim is None or claim.holder == holder or claim.until <= now

    def _holds(self, holder: str, query_id: str, now: datetime) -> bool:
        # A lapsed claim still counts while nobody else has taken the card.
        claim = self._claims.get(query_id)
        request = self._open.get(query_id)
        return (claim is not None and claim.holder == holder and request is not None
                and request.expires_at > now)

    def _release(self, holder: str) -> None:
        held = self._held.pop(holder, None)
        if held is not None and (claim := self._claims.get(held)) and claim.holder == holder:
            del self._claims[held]

    def _remove(self, query_id: str) -> bool:
        self._claims.pop(query_id, None)
        for skips in self._skips.values():
            skips.pop(query_id, None)
        return self._open.pop(query_id, None) is not None


def _clock(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S %Z").strip()
