"""The desk service shared by the web page and the terminal: state, reader thread, producer.

A label is recorded as answered *before* it is sent (so two quick clicks, or two people,
cannot both get one through) and the send is awaited: the person is told "labelled" only
once the broker has it; if it is not delivered the card comes back.

Every desk and terminal on the same topics shares its claims through ``topics.claims``;
with ``desk.local_claims`` set, claims live in this process only. Claims are made in the
name of the engineer (``holder_for``), not of a tab: three tabs of one person hold one card.

While the reader's probe finds the broker away, answers are refused at once with
``KAFKA_DOWN`` (rather than after the send's 15 s), and no claim is sent.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta

from pydantic import ValidationError

from consumers.kafka.gateway import ClientError
from consumers.kafka.sink import KafkaSink
from consumers.kafka.topics import claims_plan, create_topics
from consumers.oracle.desk.cards import JSON
from consumers.oracle.desk.reader import RECONNECT_MAX_MS, read_topics
from consumers.oracle.desk.state import KAFKA_DOWN, DeskState, holder_for
from consumers.settings import Settings
from stream_al.bus import Outgoing
from stream_al.codec import encode
from stream_al.desk_queue import DeskQueue, LabelRefused
from stream_al.errors import BrokerUnavailable
from stream_al.records import OracleLabel, OracleRequest

log = logging.getLogger("stream_al.desk")
_SEND_TIMEOUT_S = 15.0
#: How long an answer's reply waits for the claim on the next card to be read back.
NEXT_CARD_WAIT_S = 1.0


class DeskService:
    """Start it, use it from any thread, stop it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        desk = settings.desk
        self.claims_topic = None if desk.local_claims else settings.topics.claims
        lease = timedelta(minutes=desk.claim_minutes)
        self.state = DeskState(DeskQueue(lease),
                               self._publish_claim if self.claims_topic else None)
        self._stop = threading.Event()
        self._reader: threading.Thread | None = None
        self._sink: KafkaSink[Outgoing] | None = None

    def start(self) -> None:
        if self.claims_topic:
            self._create_claims_topic(self.claims_topic)
        self._sink = KafkaSink.connect(self.settings.kafka,
                                       reconnect_backoff_max_ms=RECONNECT_MAX_MS)
        self._reader = threading.Thread(
            target=read_topics, name="desk-reader", daemon=True,
            args=(self.settings.kafka, self.settings.topics, self.state, self._stop,
                  self.claims_topic),
            kwargs={"signer": self.settings.security.signer()})
        self._reader.start()

    def stop(self) -> None:
        self._stop.set()
        if self._reader is not None:
            self._reader.join(timeout=10)
        if self._sink is not None:
            self._sink.close()

    @staticmethod
    def holder_for(labeler: str) -> str:
        return holder_for(labeler)

    def view(self, holder: str, labeler: str) -> JSON:
        return self.state.view(holder, labeler, _now())

    def next_view(self, holder: str, labeler: str, wait_s: float = NEXT_CARD_WAIT_S) -> JSON:
        """The view after an answer, skip or take: once the next card's claim is read
        back (or ``wait_s`` passed), so the reply shows the next card itself."""
        self.state.view(holder, labeler, _now())  # sends the claim if none is on its way
        self.state.wait_for_card(holder, labeler, _now(), wait_s)
        return self.state.view(holder, labeler, _now())

    def take(self, query_id: str, holder: str, labeler: str) -> None:
        """Open this card instead of the current one; raises ``LabelRefused``."""
        self.state.take(query_id, holder, labeler, _now())

    def current(self, holder: str, labeler: str) -> OracleRequest | None:
        return self.state.current(holder, labeler, _now())

    def answer(self, query_id: str, label: str, holder: str, labeler: str) -> OracleLabel:
        """Send the label; raises ``LabelRefused`` or ``BrokerUnavailable``."""
        label = label.strip()
        try:
            OracleLabel(query_id=query_id, label=label, labeler=labeler, labeled_at=_now())
        except ValidationError:
            raise LabelRefused("a label must be 1 to 256 characters") from None
        if not self.state.kafka_reachable:
            raise BrokerUnavailable(KAFKA_DOWN)
        message, request = self.state.begin_answer(query_id, label, holder, labeler, _now())
        try:
            self._send(message)
        except BrokerUnavailable as error:
            self.state.undo_answer(request)
            raise BrokerUnavailable(f"the label was {error}; try again") from error
        return message

    def refusal(self, query_id: str, holder: str) -> str | None:
        return self.state.refusal(query_id, holder, _now())

    def skip(self, query_id: str, holder: str) -> None:
        self.state.skip(query_id, holder, _now())

    def release(self, holder: str) -> None:
        self.state.release(holder, _now())

    def _publish_claim(self, payload: bytes) -> None:
        # Not awaited: the claim takes effect when the reader reads it back; one that is
        # lost is simply made again (DeskState.CLAIM_TIMEOUT).
        # Called under the state's lock: with the broker away a send could block for
        # seconds (metadata), so none is tried; the claim is made again once it is back.
        if self._sink is None or not self.state.kafka_reachable:
            return
        assert self.claims_topic is not None
        try:
            self._sink.send(Outgoing(self.claims_topic, None, payload))
        except BrokerUnavailable as error:
            log.warning("claim not sent: %s", error)

    def _create_claims_topic(self, name: str) -> None:
        """Create it if missing; BrokerUnavailable if no broker answers at all (the desk
        then stops at once: bootstrapping the producer next would only wait as long
        again, and the wait announced is one bootstrap)."""
        try:
            create_topics(self.settings.kafka, [claims_plan(name)])
        except ClientError as error:  # refused (ACLs …): the desk can still read and answer
            log.warning("could not create the claim topic %s (%s); waiting for it", name, error)

    def _send(self, message: OracleLabel) -> None:
        if self._sink is None:
            raise BrokerUnavailable("the desk is not started")
        self._sink.send_and_wait(Outgoing(self.settings.topics.labels,
                                          message.query_id.encode(), encode(message)),
                                 _SEND_TIMEOUT_S)


def _now() -> datetime:
    return datetime.now(UTC)
