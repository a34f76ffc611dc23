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

from kafka import KafkaProducer
from kafka.errors import KafkaError, KafkaTimeoutError

from consumers.kafka.clients import BOOTSTRAP_TIMEOUT_MS, make_producer
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

    def __init__(self, producer: KafkaProducer, flush_timeout_s: float = 30.0) -> None:
        self._producer, self.flush_timeout_s = producer, flush_timeout_s
        self._lock = threading.Lock()
        self._pending: dict[int, Tag] = {}
        self._sequence = 0
        self._delivered = 0
        self._failures: list[Undelivered[Tag]] = []

    @classmethod
    def connect(cls, kafka: KafkaSettings, flush_timeout_s: float = 30.0,
                **producer_options: Any) -> KafkaSink[Tag]:
        """A sink on a new producer; :class:`BrokerUnavailable` if no broker answers."""
        try:
            producer = make_producer(kafka, **producer_options)
        except KafkaError as error:  # kafka-python 3 raises KafkaTimeoutError: cannot bootstrap
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
        try:
            future = self._producer.send(message.topic, key=message.key, value=message.value,
                                         headers=list(message.headers) or None)
        except KafkaError as error:
            if error.retriable:
                raise BrokerUnavailable(f"{message.topic}: the broker did not take the "
                                        f"message ({error!r})") from error
            self._failures.append(Undelivered(self._tag(message, tag), f"refused: {error!r}",
                                              retriable=False))
            return
        with self._lock:
            sequence, self._sequence = self._sequence, self._sequence + 1
            self._pending[sequence] = self._tag(message, tag)
        future.add_callback(self._on_delivered, sequence)
        future.add_errback(self._on_failed, sequence)

    def send_and_wait(self, message: Outgoing, timeout_s: float) -> None:
        """Send one message and wait for the broker; :class:`BrokerUnavailable` if it
        was not acknowledged (the caller tells the person to try again)."""
        try:
            self._producer.send(message.topic, key=message.key,
                                value=message.value).get(timeout=timeout_s)
        except KafkaError as error:
            raise BrokerUnavailable(f"not delivered ({error})") from error

    def flush(self, timeout_s: float | None = None) -> None:
        """Wait until every pending message is settled; what is still pending after the
        timeout becomes a failure (it may still arrive: resend it)."""
        timeout = self.flush_timeout_s if timeout_s is None else timeout_s
        try:
            self._producer.flush(timeout=timeout)
        except KafkaTimeoutError:
            with self._lock:
                lost, self._pending = list(self._pending.values()), {}
                reason = f"not acknowledged within {timeout:g} s"
                self._failures += [Undelivered(tag, reason, timed_out=True) for tag in lost]
        except KafkaError as error:
            raise BrokerUnavailable(f"could not deliver produced messages: {error}") from error

    def close(self, timeout_s: float = 5.0) -> None:
        """Close the producer, giving up on what is still pending after ``timeout_s``
        (``flush`` has reported it). Its thread, connections and buffered batches are
        released either way."""
        try:
            self._producer.close(timeout=timeout_s)
        except KafkaError:
            # kafka-python 3.0.12's close flushes first and, if that times out (the broker
            # is away), raises before it stops the sender thread: that thread, its client
            # and every batch it holds lived on, one more set at each broker outage. Abort
            # what is pending, then close for real.
            self._producer._sender.force_close()  # noqa: SLF001 - no public abort exists
            try:
                self._producer.close(timeout=timeout_s)
            except KafkaError:
                pass  # the batches were aborted: their failures are already counted

    def _tag(self, message: Outgoing, tag: Tag | None) -> Tag:
        # Without a tag of its own a message is known by itself.
        return tag if tag is not None else message  # type: ignore[return-value]

    def _on_delivered(self, sequence: int, _metadata: object) -> None:
        with self._lock:
            if self._pending.pop(sequence, None) is not None:
                self._delivered += 1

    def _on_failed(self, sequence: int, error: BaseException) -> None:
        with self._lock:
            tag = self._pending.pop(sequence, None)
            if tag is not None:
                retriable = bool(getattr(error, "retriable", True))
                self._failures.append(Undelivered(tag, f"not delivered: {error!r}",
                                                  retriable=retriable))
