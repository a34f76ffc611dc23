"""The desk's shared state: the queue plus what the page shows around it, behind one lock.

The Kafka reader thread writes here; web requests and the terminal read and claim. Every
change bumps ``version`` (and wakes waiters), which is how live updates know to re-send;
each view carries the version it was made at, so a page never lets an older view (a slow
reply) replace a newer one (a live update).

A holder is a person (``holder_for``): every tab and terminal of one engineer shows the
same card, and one engineer holds at most one claim.

Claims go out through ``publish`` and take effect when read back (``read_claim``), in
log order, so several processes agree; without a claim topic, ``publish`` hands the
claim straight back and it takes effect at once.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from consumers.oracle.desk.cards import JSON, ClassBook, DieAtlas, Population, card, summary
from consumers.oracle.desk.claims import DeskClaim, decode_claim
from stream_al.codec import decode_label, decode_request, encode
from stream_al.desk_queue import DeskQueue, LabelRefused
from stream_al.errors import DecodeError
from stream_al.records import OracleLabel, OracleRequest

log = logging.getLogger("stream_al.desk")
#: How many waiting queries the page lists beside the card.
QUEUE_SHOWN = 50
#: A claim not read back within this long (lost, or no claim topic yet) is tried again.
CLAIM_TIMEOUT = timedelta(seconds=5)
#: Z-scores kept for this many requests (far more than a queue holds).
_SCORES_KEPT = 50_000
_NAME_IN_HOLDER_MAX = 200
#: What the page and terminal say while the broker does not answer.
KAFKA_DOWN = "Kafka unreachable: answers cannot be sent"


def holder_for(labeler: str) -> str:
    """The holder of everything ``labeler`` does, from any tab or terminal (a name too
    long for a claim's 256 characters is known by its hash).

    >>> holder_for("eng-42"), len(holder_for("x" * 256))
    ('engineer:eng-42', 80)
    """
    if len(labeler) <= _NAME_IN_HOLDER_MAX:
        return f"engineer:{labeler}"
    return f"engineer-sha256:{hashlib.sha256(labeler.encode()).hexdigest()}"


@dataclass
class DeskCounts:
    """The status line: what the desk has read and done since it started."""

    malformed_requests: int = 0
    malformed_labels: int = 0
    malformed_claims: int = 0
    forged_requests: int = 0
    answered_elsewhere: int = 0
    labelled_here: int = 0
    refused: int = 0


class DeskState:
    """Thread-safe: every public method takes the lock."""

    def __init__(self, queue: DeskQueue, publish: Callable[[bytes], None] | None = None
                 ) -> None:
        self.queue = queue
        self._publish = publish or (lambda claim: self.read_claim(claim, "local"))
        self._claiming: dict[str, datetime] = {}  # holder → when its claim was sent
        self.counts = DeskCounts()
        self.classes = ClassBook()
        self.atlas = DieAtlas()
        self.population = Population()
        # query id → its values' z-scores when it arrived (oldest forgotten first)
        self._scores: OrderedDict[str, dict[str, float]] = OrderedDict()
        self.caught_up = False
        self.kafka_reachable = True
        self.problem: str | None = None
        self.version = 0
        self.instance = secrets.token_hex(4)  # versions count from 0 in each process
        self._changed = threading.Condition()

    # --- written by the Kafka reader -------------------------------------------------

    def read_request(self, payload: bytes, where: str, now: datetime) -> None:
        """A message from the request topic; a malformed one is logged and counted."""
        try:
            request = decode_request(payload)
        except DecodeError as error:
            log.warning("skipping a malformed request at %s: %s", where, error.reason)
            with self._changed:
                self.counts.malformed_requests += 1
                self._bump()
            return
        with self._changed:
            if self.queue.add(request, now):
                self.classes.see_request(request)
                self.atlas.see(request.record)
                self._scores[request.query_id] = self.population.scores(request.record)
                if len(self._scores) > _SCORES_KEPT:
                    self._scores.popitem(last=False)
                self.population.see(request.record)
                self._bump()

    def read_label(self, payload: bytes, where: str) -> None:
        """A message from the label topic: whoever sent it, that query is answered."""
        try:
            label = decode_label(payload)
        except DecodeError as error:
            log.warning("ignoring a malformed label at %s: %s", where, error.reason)
            with self._changed:
                self.counts.malformed_labels += 1
                self._bump()
            return
        with self._changed:
            request = self.queue.get(label.query_id)
            if request is not None:
                self.classes.see_label(request.model_key, label.label)
                self.atlas.see_label(request.record, label.label)
            if self.queue.answered(label.query_id, label.labeler, label.labeled_at):
                self.counts.answered_elsewhere += 1
                self._bump()

    def read_forged_request(self, where: str) -> None:
        """A request without the daemon's signature: counted, never shown."""
        log.warning("ignoring a request at %s: not signed with security.request_key", where)
        with self._changed:
            self.counts.forged_requests += 1
            self._bump()

    def read_claim(self, payload: bytes, where: str, received_at: datetime | None = None
                   ) -> None:
        """A message from the claim topic (or this process): apply it in this order.

        ``received_at`` is when the claim topic took it; it replaces the time the claim
        names, so every desk judges the claim by the same clock and none by the sender's.
        """
        try:
            claim = decode_claim(payload)
        except DecodeError as error:
            log.warning("ignoring a malformed claim at %s: %s", where, error.reason)
            with self._changed:
                self.counts.malformed_claims += 1
            return
        with self._changed:
            if claim.until is None:
                self.queue.unclaim(claim.query_id, claim.holder)
            else:
                self.queue.claim(claim.query_id, claim.holder, claim.labeler,
                                 received_at or claim.at, claim.until)
            self._claiming.pop(claim.holder, None)
            self._bump()

    def expire(self, now: datetime) -> None:
        with self._changed:
            if self.queue.expire(now):
                self._bump()

    def set_caught_up(self) -> None:
        with self._changed:
            self.caught_up, self.problem = True, None
            self._bump()

    def set_kafka_reachable(self, reachable: bool) -> None:
        """Whether the broker answered the reader's last probe."""
        with self._changed:
            if reachable != self.kafka_reachable:
                self.kafka_reachable = reachable
                self._bump()

    def set_problem(self, problem: str | None) -> None:
        with self._changed:
            if problem != self.problem:
                self.problem = problem
                self._bump()

    # --- used by the people at the desk ----------------------------------------------

    def view(self, holder: str, labeler: str, now: datetime) -> JSON:
        """What ``holder`` sees now: its card (claimed for it), the queue, the status."""
        with self._changed:
            current = self._current(holder, labeler, now)
            waiting = self.queue.waiting(holder, now)
            return {
                "version": self.version, "instance": self.instance,
                "labeler": labeler,
                "card": None if current is None else card(
                    current, self._classes_for(current), self.atlas, now,
                    self._scores.get(current.query_id)),
                # A claim is on its way: the next card is coming, the queue is not empty.
                "claiming": current is None and self._pending(holder, now),
                "queue": [summary(r, now) for r in waiting[:QUEUE_SHOWN]],
                "queue_size": len(waiting),
                "status": self._status(holder, now),
            }

    def take(self, query_id: str, holder: str, labeler: str, now: datetime) -> None:
        """Claim this card for ``holder`` instead of its current one (a queue row was
        clicked); raises ``LabelRefused`` if it is not free for this holder."""
        with self._changed:
            if not self.caught_up:
                raise LabelRefused("the desk is still reading the topics")
            if self.queue.held(holder, now) is not None and \
                    self.queue.held_by(holder) == query_id:
                return
            if query_id not in {r.query_id for r in self.queue.waiting(holder, now)}:
                raise LabelRefused(f"{query_id} is not open here, or someone else has it")
            self._claiming[holder] = now
            self._publish(encode(DeskClaim(query_id=query_id, holder=holder, labeler=labeler,
                                           at=now, until=now + self.queue.lease)))
            self._bump()

    def wait_for_card(self, holder: str, labeler: str, now: datetime, timeout_s: float
                      ) -> None:
        """Wait (up to ``timeout_s``) until ``holder``'s claim on its next card is read
        back, so an answer's reply can carry the next card rather than an empty one."""
        with self._changed:
            if self._current(holder, labeler, now) is None and self._pending(holder, now):
                self._changed.wait_for(lambda: holder not in self._claiming, timeout=timeout_s)

    def current(self, holder: str, labeler: str, now: datetime) -> OracleRequest | None:
        with self._changed:
            return self._current(holder, labeler, now)

    def begin_answer(self, query_id: str, label: str, holder: str, labeler: str,
                     now: datetime) -> tuple[OracleLabel, OracleRequest]:
        """Check and record an answer before it is sent, so no second one gets through.

        Raises ``LabelRefused``; call ``undo_answer`` if the label is not delivered.
        """
        with self._changed:
            try:
                request = self.queue.check_answerable(query_id, holder, now)
            except LabelRefused:
                self.counts.refused += 1
                raise
            message = OracleLabel(query_id=query_id, label=label, labeler=labeler, labeled_at=now)
            self.queue.answered(query_id, labeler, now)
            self.classes.see_label(request.model_key, message.label)
            self.atlas.see_label(request.record, message.label)
            self.counts.labelled_here += 1
            self._bump()
            return message, request

    def undo_answer(self, request: OracleRequest) -> None:
        with self._changed:
            self.queue.forget_answer(request.query_id, request)
            self.counts.labelled_here -= 1
            self._bump()

    def refusal(self, query_id: str, holder: str, now: datetime) -> str | None:
        """Why ``holder`` could no longer label this query, or None if it still may."""
        with self._changed:
            try:
                self.queue.check_answerable(query_id, holder, now)
            except LabelRefused as refused:
                return refused.reason
            return None

    def skip(self, query_id: str, holder: str, now: datetime) -> None:
        with self._changed:
            self.queue.skip(query_id, holder)
            self._publish(_release(query_id, holder, now))
            self._bump()

    def release(self, holder: str, now: datetime) -> None:
        with self._changed:
            held = self.queue.held_by(holder)
            self.queue.release(holder)
            if held is not None:
                self._publish(_release(held, holder, now))
            self._bump()

    def wait_changed(self, seen_version: int, timeout_s: float) -> int:
        """Block until ``version`` differs from ``seen_version`` or the timeout; the version."""
        with self._changed:
            self._changed.wait_for(lambda: self.version != seen_version, timeout=timeout_s)
            return self.version

    def _current(self, holder: str, labeler: str, now: datetime) -> OracleRequest | None:
        if not self.caught_up:
            return None  # until the label log is read, an open-looking card may be answered
        card = self.queue.held(holder, now)
        sent = self._claiming.get(holder)
        if card is not None or (sent is not None and now - sent < CLAIM_TIMEOUT):
            return card
        chosen = self.queue.candidate(holder, now)
        if chosen is None:
            return None
        self._claiming[holder] = now
        self._publish(encode(DeskClaim(query_id=chosen.query_id, holder=holder,
                                       labeler=labeler, at=now, until=now + self.queue.lease)))
        return self.queue.held(holder, now)  # already ours if the claim came straight back

    def _pending(self, holder: str, now: datetime) -> bool:
        sent = self._claiming.get(holder)
        return sent is not None and now - sent < CLAIM_TIMEOUT

    def _classes_for(self, request: OracleRequest) -> list[str]:
        return self.classes.classes(request.model_key)

    def _status(self, holder: str, now: datetime) -> JSON:
        return {**asdict(self.counts), "open": len(self.queue), "expired": self.queue.expired,
                "claimed_by_others": self.queue.claimed_by_others(holder, now),
                "caught_up": self.caught_up, "problem": self.problem,
                "kafka": "ok" if self.kafka_reachable else "unreachable",
                "kafka_down": None if self.kafka_reachable else KAFKA_DOWN}

    def _bump(self) -> None:
        self.version += 1
        self._changed.notify_all()


def _release(query_id: str, holder: str, now: datetime) -> bytes:
    return encode(DeskClaim(query_id=query_id, holder=holder, labeler="-", at=now))
