"""Claims shared through a log: two desk processes that read the same claim log in the
same order agree on who holds which card, whoever asked first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import cast

import pytest

from consumers.kafka.gateway import Consumer as GatewayConsumer
from consumers.oracle.desk.claims import decode_claim
from consumers.oracle.desk.state import DeskState
from stream_al.bus import Message
from stream_al.codec import encode
from stream_al.desk_queue import DeskQueue
from stream_al.errors import DecodeError
from tests.desk_support import oracle_request


class Process:
    """One desk process: its own state, publishing claims to a shared log."""

    def __init__(self, log: list[bytes]) -> None:
        self.state = DeskState(DeskQueue(), log.append)
        self.read = 0
        self.log = log

    def catch_up(self) -> None:
        while self.read < len(self.log):
            self.state.read_claim(self.log[self.read], f"claims@{self.read}")
            self.read += 1


def held(process: Process, holder: str, now: datetime) -> str | None:
    card = process.state.queue.held(holder, now)
    return card.query_id if card else None


def two_processes(*serials: int) -> tuple[Process, Process, list[str]]:
    log: list[bytes] = []
    processes = Process(log), Process(log)
    requests = [oracle_request(serial, uncertainty=1 - serial / 10) for serial in serials]
    for process in processes:
        for request in requests:
            process.state.read_request(encode(request), "test", request.created_at)
        process.state.set_caught_up()
    return *processes, [r.query_id for r in requests]


def test_a_claim_takes_effect_only_when_read_back() -> None:
    web, _, ids = two_processes(1)
    assert web.state.current("tab", "ann", datetime.now(UTC)) is None  # sent, not yet back
    web.catch_up()
    assert held(web, "tab", datetime.now(UTC)) == ids[0]


def test_two_processes_racing_for_one_card_agree_on_the_winner() -> None:
    web, term, ids = two_processes(1, 2)
    now = datetime.now(UTC)
    web.state.current("tab", "ann", now)
    term.state.current("tty", "bob", now)  # both asked for ids[0] before either read back
    for process in (term, web):
        process.catch_up()
    assert held(web, "tab", now) == ids[0]
    assert held(term, "tab", now) == ids[0]
    assert held(term, "tty", now) is None  # the loser asks again, for the next
    term.state.current("tty", "bob", now + timedelta(seconds=6))
    for process in (web, term):
        process.catch_up()
        assert held(process, "tty", now) == ids[1]


def test_a_released_card_is_free_in_every_process() -> None:
    web, term, ids = two_processes(1)
    now = datetime.now(UTC)
    web.state.current("tab", "ann", now)
    web.catch_up()
    web.state.release("tab", now)
    term.catch_up()
    term.state.current("tty", "bob", now)
    for process in (web, term):
        process.catch_up()
    assert held(term, "tty", now) == ids[0]
    claim = web.state.queue.claim_of(ids[0])
    assert claim is not None and claim.labeler == "bob"


def test_without_a_claim_log_claims_take_effect_at_once() -> None:
    state = DeskState(DeskQueue())
    request = oracle_request(1)
    state.read_request(encode(request), "test", request.created_at)
    state.set_caught_up()
    assert state.current("tab", "ann", datetime.now(UTC)) == request


def test_a_malformed_claim_is_counted_not_applied() -> None:
    web, _, _ = two_processes(1)
    web.state.read_claim(b'{"schema_version": 1, "query_id": "q"}', "claims@0")
    assert web.state.counts.malformed_claims == 1
    with pytest.raises(DecodeError, match="at: Input should be a valid datetime"):
        decode_claim(b'{"query_id": "q", "holder": "h", "labeler": "l", "at": "x"}')
    with pytest.raises(DecodeError, match="timezone"):
        decode_claim(b'{"query_id": "q", "holder": "h", "labeler": "l",'
                     b' "at": "2026-01-01T00:00:00"}')


def forged_claim(query_id: str, at: datetime, until: datetime) -> bytes:
    return (f'{{"schema_version": 1, "query_id": "{query_id}", "holder": "intruder", '
            f'"labeler": "x", "at": "{at.isoformat()}", "until": "{until.isoformat()}"}}'
            ).encode()


def test_a_forged_claim_until_9999_lasts_one_lease_from_the_logs_time() -> None:
    state = DeskState(DeskQueue(lease=timedelta(minutes=5)))
    request = oracle_request(1)
    state.read_request(encode(request), "requests@0", datetime.now(UTC))
    took = datetime.now(UTC)
    far = datetime(9999, 1, 1, tzinfo=UTC)
    state.read_claim(forged_claim(request.query_id, far, far), "claims@0", received_at=took)
    claim = state.queue.claim_of(request.query_id)
    assert claim is not None and claim.until == took + timedelta(minutes=5)
    later = took + timedelta(minutes=6)
    assert state.queue.claim(request.query_id, "ann", "ann", later, later + timedelta(minutes=5))


def test_the_reader_never_shows_a_request_without_the_daemons_signature() -> None:
    from consumers.oracle.desk.reader import _poll_once
    from stream_al.auth import HEADER, RequestSigner
    from stream_al.topics import TopicNames

    signer, topics = RequestSigner(b"k" * 32), TopicNames()
    signed, forged = oracle_request(1), oracle_request(2)

    class Consumer:
        def poll(self, timeout_ms: int) -> list[Message]:
            good, bad = encode(signed), encode(forged)
            return [Message(topics.requests, 0, 0, None, good,
                            headers=((HEADER, signer.sign(good)),)),
                    Message(topics.requests, 0, 1, None, bad, headers=((HEADER, b"0" * 64),))]

    state = DeskState(DeskQueue())
    _poll_once(cast(GatewayConsumer, Consumer()), topics, state, 0, signer)
    assert state.queue.get(signed.query_id) is not None
    assert state.queue.get(forged.query_id) is None
    assert state.counts.forged_requests == 1
