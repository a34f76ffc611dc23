"""What the project needs from a Kafka client, said once for every client.

The daemon, ``produce``, the desk and the oracle speak to Kafka only through these
protocols; ``consumers.kafka.clients`` makes them with kafka-python
(``consumers.kafka.kafka_python``) or confluent-kafka (``consumers.kafka.confluent``), as
``kafka.client`` says. Partitions are plain ``(topic, partition)`` pairs, offsets plain
ints (the next offset to read, as Kafka commits them), records the core's ``Message``,
and every client error a :class:`ClientError` that says whether retrying can help.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple, Protocol

from stream_al.bus import Message
from stream_al.errors import StreamAlError


class TopicPartition(NamedTuple):
    """One partition of one topic (equal to, and hashed like, the tuple it is)."""

    topic: str
    partition: int


class ClientError(StreamAlError):
    """A Kafka client's error, either client's, in the project's terms.

    ``retriable`` True: the broker is away, busy or moving a leader, so the same call
    may succeed later (the daemon backs off: an outage). False: the broker refused the
    request and will refuse it again (too large, not authorized): that message's or
    that setting's problem. ``fatal``: the client itself can no longer be used.
    """

    def __init__(self, message: str, *, retriable: bool, fatal: bool = False,
                 native: str | None = None) -> None:
        super().__init__(message)
        self.retriable, self.fatal = retriable, fatal
        #: The client's own ``repr`` of the error, kept for messages and dead letters.
        self.native = native

    def __repr__(self) -> str:
        return self.native or super().__repr__()


#: Called once per sent message: None when the broker acknowledged it, else why not.
Delivery = Callable[[ClientError | None], None]


class Producer(Protocol):
    def send(self, topic: str, key: bytes | None, value: bytes,
             headers: Sequence[tuple[str, bytes]], on_delivery: Delivery) -> None:
        """Queue one message; ``on_delivery`` is called once it is settled (from the
        client's thread, or from ``flush``). :class:`ClientError` if the client does not
        take it at all (retriable: buffer full or no metadata; not: e.g. too large)."""

    def send_and_wait(self, topic: str, key: bytes | None, value: bytes,
                      timeout_s: float) -> None:
        """Send one message and wait for the broker; :class:`ClientError` if not
        acknowledged."""

    def flush(self, timeout_s: float) -> bool:
        """Wait for every pending message; False if some are still pending."""

    def close(self, timeout_s: float) -> None:
        """Release the client; what is still pending after ``timeout_s`` is abandoned."""


class RebalanceListener(Protocol):
    """The group consumer's owner, told of rebalances on the thread that polls."""

    def on_revoked(self, partitions: list[TopicPartition]) -> Mapping[TopicPartition, int]:
        """The partitions are about to move: the offsets to commit before they do."""

    def on_assigned(self, partitions: list[TopicPartition]) -> Mapping[TopicPartition, int]:
        """Partitions are ours: where to start each (absent: the group's committed
        offset, else the earliest)."""

    def on_lost(self, partitions: list[TopicPartition]) -> None:
        """Evicted: the partitions may be someone else's already (commit nothing)."""

    def on_commit_failed(self, offsets: Mapping[TopicPartition, int],
                         error: ClientError) -> None:
        """The commit ``on_revoked`` asked for did not go through."""


class Consumer(Protocol):
    def subscribe(self, topics: Sequence[str],
                  listener: RebalanceListener | None = None) -> None:
        """Join the group for ``topics`` (a consumer made with a group)."""

    def assign(self, starts: Mapping[TopicPartition, int | None]) -> None:
        """Read exactly these partitions, each from its offset (None: the beginning)."""

    def assignment(self) -> list[TopicPartition]: ...

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        """The topic's partition numbers; None if the broker does not know it."""

    def poll(self, timeout_ms: int, max_records: int | None = None) -> list[Message]:
        """Records in log order within each partition (partitions may interleave)."""

    def position(self, partition: TopicPartition, timeout_ms: int | None = None) -> int:
        """The offset of the next record this consumer will read from ``partition``."""

    def end_offsets(self, partitions: Sequence[TopicPartition],
                    timeout_ms: int | None = None) -> dict[TopicPartition, int]: ...

    def highwater(self, partition: TopicPartition) -> int | None:
        """The end of an assigned ``partition`` as the last fetch response gave it, asking
        the broker nothing; None until a fetch has answered (or once it is unassigned)."""

    def beginning_offsets(self, partitions: Sequence[TopicPartition],
                          timeout_ms: int | None = None) -> dict[TopicPartition, int]: ...

    def commit(self, offsets: Mapping[TopicPartition, int], *, asynchronous: bool,
               timeout_ms: int | None = None) -> None:
        """Commit ``offsets`` (each the next offset to read) for the group."""

    def close(self, timeout_ms: int | None = None) -> None:
        """Leave the group (committing nothing) and release the client."""


class Admin(Protocol):
    def topic_names(self) -> set[str]: ...

    def create_topic(self, name: str, partitions: int, replication: int,
                     config: Mapping[str, str]) -> bool:
        """Create ``name``; False if it exists already (made meanwhile by someone else)."""

    def topic_config(self, name: str, key: str) -> str | None:
        """The value ``name`` has for ``key`` (its default included); None if unknown."""

    def set_topic_config(self, name: str, key: str, value: str) -> None:
        """Change one setting of ``name``, leaving the others as they are."""

    def delete_topics(self, names: Sequence[str]) -> None: ...

    def close(self) -> None: ...
