"""The one producer-side gateway: sends asynchronously and accounts for every message.

Each message is pending from ``send`` until the broker acknowledges or refuses it; a
refused one, or one still pending when ``flush`` gives up, becomes an
:class:`Undelivered` naming what the caller said it was (its ``tag``), and no later
callback counts it again. The daemon, ``produce``, the desk and the oracle all send
through this class, so there is one producer configuration and one way to account.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from consumers.kafka.clients import BOOTSTRAP_TIMEOUT_MS, make_producer
from consumers.kafka.gateway import ClientError, Producer
from consumers.kafka.reach import unreachable
from consumers.settings import KafkaSettings
from stream_al.bus import Outgoing
from stream_al.errors import BrokerUnavailable

Tag = TypeVar("Tag")


@dataclass(frozen=True)
class Undelivered(Generic[Tag]):
    """A message the broker refused, or did not acknowledge in time (``timed_out``).

    ``retriable`` False means sending it again cannot help (e.g. it is too large): it is
    that message's problem, not an outage.
    """

    tag: Tag
    reason: str
    timed_out: bool = False
    retriable: bool = True


class KafkaSink(Generic[Tag]):
    """Meets the core's ``Sink`` protocol (``send`` / ``flush``) with delivery accounting.

    ``flush`` raises nothing for a refused message: callers read ``take_failures()``
    and decide (the daemon backs off, ``produce`` reports the file and position).
    """

    def __init__(self, producer: Producer, flush_timeout_s: float = 30.0) -> None:
        self._producer, self.flush_timeout_s = producer, flush_timeout_s
        self._lock = threading.Lock()
        self._pending: dict[int, Tag] = {}
        self._sequence = 0
        self._delivered = 0
        self._failures: list[Undelivered[Tag]] = []

    @classmethod
    def connect(cls, kafka: KafkaSettings, flush_timeout_s: float = 30.0,
                **producer_options: Any) -> KafkaSink[Tag]:
        """A sink on a new producer (``make_producer``'s options);
        :class:`BrokerUnavailable` if no broker answers."""
        try:
            producer = make_producer(kafka, **producer_options)
        except ClientError as error:  # e.g. kafka-python 3's "Unable to bootstrap"
            waited = producer_options.get("bootstrap_timeout_ms", BOOTSTRAP_TIMEOUT_MS)
            raise unreachable(kafka, waited) from error
        return cls(producer, flush_timeout_s)

    @property
    def delivered(self) -> int:
        """Messages the broker has acknowledged."""
        return self._delivered

    @property
    def failures(self) -> list[Undelivered[Tag]]:
        """Every message not delivered so far (see ``take_failures``)."""
        return self._failures

    def take_failures(self) -> list[Undelivered[Tag]]:
        with self._lock:
            failures, self._failures = self._failures, []
        return failures

    def send(self, message: Outgoing, tag: Tag | None = None) -> None:
        """Queue one message. A retriable error (no metadata, buffer full: the broker is
        away) raises :class:`BrokerUnavailable`; any other refusal (e.g. too large) is
        that message's failure only."""
        # Pending before it is sent: its report may come before ``send`` returns.
        with self._lock:
            sequence, self._sequence = self._sequence, self._sequence + 1
            self._pending[sequence] = self._tag(message, tag)
        try:
            self._producer.send(message.topic, message.key, message.value, message.headers,
                                lambda error: self._settled(sequence, error))
        except ClientError as error:
            with self._lock:
                self._pending.pop(sequence, None)
            if error.retriable:
                raise BrokerUnavailable(f"{message.topic}: the broker did not take the "
                                        f"message ({error!r})") from error
            with self._lock:
                self._failures.append(Undelivered(self._tag(message, tag),
                                                  f"refused: {error!r}", retriable=False))

    def send_and_wait(self, message: Outgoing, timeout_s: float) -> None:
        """Send one message and wait for the broker; :class:`BrokerUnavailable` if it
        was not acknowledged (the caller tells the person to try again)."""
        try:
            self._producer.send_and_wait(message.topic, message.key, message.value, timeout_s)
        except ClientError as error:
            raise BrokerUnavailable(f"not delivered ({error})") from error

    def flush(self, timeout_s: float | None = None) -> None:
        """Wait until every pending message is settled; what is still pending after the
        timeout becomes a failure (it may still arrive: resend it)."""
        timeout = self.flush_timeout_s if timeout_s is None else timeout_s
        try:
            settled = self._producer.flush(timeout)
        except ClientError as error:
            raise BrokerUnavailable(f"could not deliver produced messages: {error}") from error
        if not settled:
            with self._lock:
                lost, self._pending = list(self._pending.values()), {}
                reason = f"not acknowledged within {timeout:g} s"
                self._failures += [Undelivered(tag, reason, timed_out=True) for tag in lost]

    def close(self, timeout_s: float = 5.0) -> None:
        """Close the producer, giving up on what is still pending after ``timeout_s``
        (``flush`` has reported it). Its thread, connections and buffered batches are
        released either way."""
        self._producer.close(timeout_s)

    def _tag(self, message: Outgoing, tag: Tag | None) -> Tag:
        # Without a tag of its own a message is known by itself.
        return tag if tag is not None else message  # type: ignore[return-value]

    def _settled(self, sequence: int, error: ClientError | None) -> None:
        with self._lock:
            tag = self._pending.pop(sequence, None)
            if tag is None:
                return  # already reported undelivered by a flush that gave up
            if error is None:
                self._delivered += 1
            else:
                self._failures.append(Undelivered(tag, f"not delivered: {error!r}",
                                                  retriable=error.retriable))
