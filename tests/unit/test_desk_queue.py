"""The desk queue: priority order, claims with a lease, skips, answers and expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from stream_al.desk_queue import REASON_ORDER, DeskQueue, LabelRefused
from stream_al.reasons import REASONS, Reason
from stream_al.records import OracleRequest, TransactionRecord

T0 = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
LEASE = timedelta(minutes=5)


def ask(qid: str, reason: Reason = "uncertainty", u: float = 0.5, age_s: float = 0,
        ttl: timedelta = timedelta(hours=1)) -> OracleRequest:
    created = T0 - timedelta(seconds=age_s)
    record = TransactionRecord(record_id=f"r-{qid}", ts=created)
    return OracleRequest(query_id=qid, record_id=f"r-{qid}", kind="transaction", model_key="m",
                         reason=reason, uncertainty=u, threshold=0.5, proba={"a": 0.5},
                         model_version=1, created_at=created, expires_at=created + ttl,
                         record=record)


def queue_of(*requests: OracleRequest) -> DeskQueue:
    queue = DeskQueue(lease=LEASE)
    for request in requests:
        assert queue.add(request, T0)
    return queue


def on(queue: DeskQueue, holder: str, labeler: str, now: datetime) -> str | None:
    """The query id of the card ``holder`` is on (claiming one if needed)."""
    card = queue.current(holder, labeler, now)
    return card.query_id if card else None


def ids(requests: list[OracleRequest]) -> list[str]:
    return [r.query_id for r in requests]


def test_every_reason_has_a_rank() -> None:
    assert sorted(REASON_ORDER) == sorted(REASONS)


def test_order_is_reason_then_uncertainty_then_age() -> None:
    queue = queue_of(ask("audit", "audit", 0.99), ask("u-low", u=0.6),
                     ask("u-high", u=0.9), ask("u-high-old", u=0.9, age_s=60),
                     ask("warm", "warmup", 0.1), ask("new", "novelty", 0.05))
    assert ids(queue.waiting("h", T0)) == ["new", "warm", "u-high-old", "u-high", "u-low",
                                           "audit"]


def test_a_claimed_card_is_hidden_from_other_holders() -> None:
    queue = queue_of(ask("a", u=0.9), ask("b", u=0.8))
    assert on(queue, "tab-1", "ann", T0) == "a"
    assert on(queue, "tab-2", "bob", T0) == "b"
    assert ids(queue.waiting("tab-2", T0)) == []
    assert queue.claimed_by_others("tab-2", T0) == 1
    assert queue.current("tab-3", "cat", T0) is None


def test_a_holder_keeps_its_card_until_it_acts() -> None:
    queue = queue_of(ask("a", u=0.5))
    queue.current("tab-1", "ann", T0)
    queue.add(ask("urgent", "novelty"), T0)
    assert on(queue, "tab-1", "ann", T0) == "a"
    assert ids(queue.waiting("tab-1", T0)) == ["urgent"]


def test_a_lapsed_claim_can_be_taken_by_another_holder() -> None:
    queue = queue_of(ask("a"))
    queue.current("tab-1", "ann", T0)
    later = T0 + LEASE
    assert queue.current("tab-2", "bob", T0 + LEASE / 2) is None
    assert on(queue, "tab-2", "bob", later) == "a"
    assert queue.current("tab-1", "ann", later) is None
    with pytest.raises(LabelRefused, match="being answered by bob"):
        queue.check_answerable("a", "tab-1", later)


def test_a_lapsed_claim_nobody_took_still_belongs_to_its_holder() -> None:
    queue = queue_of(ask("a"))
    queue.current("tab-1", "ann", T0)
    later = T0 + 2 * LEASE
    assert on(queue, "tab-1", "ann", later) == "a"
    assert queue.check_answerable("a", "tab-1", later).query_id == "a"


def test_skip_sends_the_card_to_the_back_for_that_holder_only() -> None:
    queue = queue_of(ask("a", u=0.9), ask("b", u=0.8), ask("c", u=0.7))
    queue.current("tab-1", "ann", T0)
    queue.skip("a", "tab-1")
    assert on(queue, "tab-1", "ann", T0) == "b"
    assert ids(queue.waiting("tab-1", T0)) == ["c", "a"]
    assert ids(queue.waiting("tab-2", T0)) == ["a", "c"]


def test_skipping_the_only_card_offers_it_again() -> None:
    queue = queue_of(ask("a"))
    queue.current("tab-1", "ann", T0)
    queue.skip("a", "tab-1")
    assert on(queue, "tab-1", "ann", T0) == "a"


def test_a_released_holder_returns_its_card() -> None:
    queue = queue_of(ask("a"))
    queue.current("tab-1", "ann", T0)
    queue.release("tab-1")
    assert on(queue, "tab-2", "bob", T0) == "a"


def test_an_answer_from_anyone_removes_the_card_and_refuses_a_second_label() -> None:
    queue = queue_of(ask("a"), ask("b"))
    queue.current("tab-1", "ann", T0)
    assert queue.answered("a", "eng-7", T0)
    assert "a" not in queue
    assert on(queue, "tab-1", "ann", T0) == "b"
    with pytest.raises(LabelRefused, match="already answered by eng-7"):
        queue.check_answerable("a", "tab-1", T0)


def test_an_answer_seen_before_its_request_keeps_the_request_out() -> None:
    queue = DeskQueue()
    assert not queue.answered("a", "eng-7", T0)
    assert not queue.add(ask("a"), T0)
    assert len(queue) == 0


def test_a_resent_request_is_queued_once() -> None:
    queue = queue_of(ask("a"))
    assert not queue.add(ask("a"), T0)
    assert len(queue) == 1


def test_expired_requests_leave_the_queue_and_are_refused() -> None:
    queue = queue_of(ask("short", ttl=timedelta(minutes=1)), ask("long"))
    queue.current("tab-1", "ann", T0)
    later = T0 + timedelta(minutes=1)
    with pytest.raises(LabelRefused, match="expired"):
        queue.check_answerable("short", "tab-1", later)
    assert on(queue, "tab-1", "ann", later) == "long"
    assert queue.expire(later) == ["short"]
    assert queue.expired == 1
    assert not queue.add(ask("old", ttl=timedelta(seconds=1), age_s=5), T0)


def test_an_unknown_query_is_refused_with_a_reason() -> None:
    with pytest.raises(LabelRefused, match="not open here"):
        DeskQueue().check_answerable("q-nope", "tab-1", T0)


def test_forgetting_an_undelivered_answer_reopens_the_card() -> None:
    request = ask("a")
    queue = queue_of(request)
    queue.answered("a", "ann", T0)
    queue.forget_answer("a", request)
    assert queue.current("tab-1", "ann", T0) == request


def test_the_answer_memory_is_bounded() -> None:
    queue = DeskQueue(answered_memory=2)
    for qid in ("a", "b", "c"):
        queue.answered(qid, None, T0)
    assert queue.answer_of("a") is None
    assert queue.answer_of("c") is not None


def test_a_lease_must_be_positive() -> None:
    with pytest.raises(ValueError, match="lease"):
        DeskQueue(lease=timedelta(0))


def test_claims_applied_in_log_order_first_live_claim_wins() -> None:
    queue = queue_of(ask("a"))
    assert queue.claim("a", "tab-1", "ann", T0, T0 + LEASE)
    assert not queue.claim("a", "tab-2", "bob", T0 + LEASE / 2, T0 + 2 * LEASE)
    assert queue.claim("a", "tab-2", "bob", T0 + LEASE, T0 + 2 * LEASE)  # ann's lapsed
    assert on(queue, "tab-1", "ann", T0 + LEASE) is None
    assert on(queue, "tab-2", "bob", T0 + LEASE) == "a"


def test_a_claim_for_an_answered_query_is_refused() -> None:
    queue = queue_of(ask("a"))
    queue.answered("a", "eng-7", T0)
    assert not queue.claim("a", "tab-1", "ann", T0, T0 + LEASE)


def test_unclaim_frees_only_the_holders_own_claim() -> None:
    queue = queue_of(ask("a"))
    queue.claim("a", "tab-1", "ann", T0, T0 + LEASE)
    queue.unclaim("a", "tab-2")
    assert queue.candidate("tab-2", T0) is None
    queue.unclaim("a", "tab-1")
    assert on(queue, "tab-2", "bob", T0) == "a"
