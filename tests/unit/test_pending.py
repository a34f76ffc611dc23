"""The pending-query store: joins, duplicates, unknowns, expiry judged from messages."""

from __future__ import annotations

from datetime import timedelta

from stream_al.pending import PendingQueries
from tests.factories import T0, request


def test_a_label_joins_its_request_once_then_is_a_duplicate() -> None:
    pending = PendingQueries()
    asked = request()
    assert pending.add(asked)
    assert pending.join(asked.query_id, T0 + timedelta(minutes=1)).outcome == "applied"
    assert pending.join(asked.query_id, T0 + timedelta(minutes=2)).outcome == "duplicate"
    assert len(pending) == 0


def test_an_unknown_query_is_reported_as_such() -> None:
    assert PendingQueries().join("q-nope", T0).outcome == "unknown_query"


def test_expiry_is_judged_by_the_label_time_not_a_local_clock() -> None:
    pending = PendingQueries()
    asked = request(ttl_s=60)
    pending.add(asked)
    join = pending.join(asked.query_id, T0 + timedelta(seconds=61))
    assert join.outcome == "expired" and join.request == asked


def test_a_resent_request_is_recognised_and_not_reopened_after_its_answer() -> None:
    pending = PendingQueries()
    asked = request()
    assert pending.add(asked) and not pending.add(asked)
    pending.join(asked.query_id, T0)
    assert not pending.add(asked)
    assert pending.was_answered(asked.query_id)


def test_capacity_drops_the_oldest_open_query() -> None:
    pending = PendingQueries(capacity=2)
    first, second, third = (request(f"r-{i}") for i in range(3))
    for asked in (first, second, third):
        pending.add(asked)
    assert first.query_id not in pending and third.query_id in pending
    assert pending.evicted == 1


def test_long_expired_queries_are_forgotten() -> None:
    pending = PendingQueries()
    pending.add(request("old", ttl_s=10))
    pending.add(request("new", ttl_s=10_000))
    dropped = pending.drop_expired(T0 + timedelta(seconds=100), grace_s=30)
    assert [r.record_id for r in dropped] == ["old"]
    assert [r.record_id for r in pending.open_requests()] == ["new"]


def test_expired_queries_go_in_expiry_order_and_answered_ones_stay_answered() -> None:
    pending = PendingQueries()
    late, early, answered, alive = (request("late", ttl_s=50), request("early", ttl_s=10),
                                    request("answered", ttl_s=20),
                                    request("alive", ttl_s=10_000))
    for asked in (late, early, answered, alive):
        pending.add(asked)
    pending.join(answered.query_id, T0 + timedelta(seconds=5))
    dropped = pending.drop_expired(T0 + timedelta(seconds=100), grace_s=30)
    assert [r.record_id for r in dropped] == ["early", "late"]
    assert [r.record_id for r in pending.open_requests()] == ["alive"]
    assert pending.join(answered.query_id, T0).outcome == "duplicate"
    assert pending.drop_expired(T0 + timedelta(days=1), grace_s=30) == [alive]


def test_queries_answered_before_they_expire_leave_no_growing_trail() -> None:
    # drop_expired is called once per label: it pops an expiry heap instead of scanning
    # every open query. Entries of queries answered in time must not pile up in it.
    pending = PendingQueries()
    for number in range(20_000):
        asked = request(f"r-{number}", ttl_s=3_600)
        pending.add(asked)
        pending.join(asked.query_id, T0)
        pending.drop_expired(T0, grace_s=30)
    assert len(pending) == 0
    assert len(pending._drop_order) <= 1024 + 1


def test_a_store_pickled_before_the_expiry_heap_still_drops_expired_queries() -> None:
    pending = PendingQueries()
    pending.add(request("old", ttl_s=10))
    pending.add(request("new", ttl_s=10_000))
    state = dict(pending.__dict__)
    del state["_drop_order"]  # what a checkpoint of the previous version holds
    restored = PendingQueries.__new__(PendingQueries)
    restored.__setstate__(state)
    dropped = restored.drop_expired(T0 + timedelta(seconds=100), grace_s=30)
    assert [r.record_id for r in dropped] == ["old"]
