"""Whether the topics still hold what a restored checkpoint needs.

A checkpoint resumes every topic it covers (inputs, requests, labels) at the offset it
had read up to. When retention has deleted messages past that offset meanwhile (a
replica down longer than the topics keep, docs/guarantees.md "Retention"), Kafka starts
the read at the earliest offset it still holds, silently: the records deleted are never
scored, the labels deleted never learnt. This says so, once per gap.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from stream_al.state import Offsets


@dataclass(frozen=True)
class RestoreGap:
    topic: str
    partition: int
    offset: int  # where the checkpoint resumes
    earliest: int  # the first offset the topic still holds

    @property
    def deleted(self) -> int:
        return self.earliest - self.offset

    def describe(self, what: str) -> str:
        return (f"restore: the checkpoint resumes {self.topic}[{self.partition}] at offset "
                f"{self.offset:,}, but the topic now starts at offset {self.earliest:,}: "
                f"{self.deleted:,} messages were deleted by retention before this replica "
                f"read them ({what}); keep the topic longer (the retention.* settings) or "
                "this replica's downtime shorter")


def restore_gaps(restored: Offsets, earliest: Mapping[tuple[str, int], int]
                 ) -> list[RestoreGap]:
    """The partitions where the checkpoint resumes below the earliest offset kept.

    >>> restore_gaps({("labels", 0): 40, ("ate", 1): 7}, {("labels", 0): 100, ("ate", 1): 0})
    [RestoreGap(topic='labels', partition=0, offset=40, earliest=100)]
    """
    return [RestoreGap(topic, partition, offset, earliest[topic, partition])
            for (topic, partition), offset in sorted(restored.items())
            if (topic, partition) in earliest and offset < earliest[topic, partition]]
