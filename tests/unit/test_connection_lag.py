"""``Connection.lag``: the ends come from what the consumer's fetches already said, and
the broker is asked only for a partition no fetch has answered (an offsets request waits
behind the consumer's long poll, which once idled the confluent daemon 80 % of the time)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from consumers.daemon.connection import Connection
from consumers.kafka.gateway import TopicPartition


class Consumer:
    """The calls ``lag`` makes, answering from fixed offsets and counting requests."""

    def __init__(self, highwater: dict[TopicPartition, int | None],
                 ends: dict[TopicPartition, int], positions: dict[TopicPartition, int]) -> None:
        self._highwater, self._ends, self._positions = highwater, ends, positions
        self.asked: list[list[TopicPartition]] = []

    def assignment(self) -> list[TopicPartition]:
        return list(self._highwater)

    def highwater(self, partition: TopicPartition) -> int | None:
        return self._highwater[partition]

    def end_offsets(self, partitions: Sequence[TopicPartition],
                    timeout_ms: int | None = None) -> dict[TopicPartition, int]:
        self.asked.append(list(partitions))
        return {tp: self._ends[tp] for tp in partitions}

    def position(self, partition: TopicPartition, timeout_ms: int | None = None) -> int:
        return self._positions[partition]


def connection(consumer: Consumer) -> Connection:
    return Connection(cast(Any, consumer), cast(Any, None), cast(Any, None), cast(Any, None))


A, B, C = (TopicPartition("ate.parametric", p) for p in range(3))


def test_fetched_partitions_cost_no_request() -> None:
    consumer = Consumer({A: 120, B: 40}, ends={}, positions={A: 100, B: 40})
    assert connection(consumer).lag() == {A: 20, B: 0}
    assert consumer.asked == []


def test_only_the_partition_no_fetch_has_answered_is_asked() -> None:
    consumer = Consumer({A: 120, B: None, C: 7}, ends={B: 900},
                        positions={A: 100, B: 300, C: 7})
    assert connection(consumer).lag() == {A: 20, B: 600, C: 0}
    assert consumer.asked == [[B]]


def test_no_partitions_no_lag_and_no_request() -> None:
    consumer = Consumer({}, ends={}, positions={})
    assert connection(consumer).lag() == {}
    assert consumer.asked == []
