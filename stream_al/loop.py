"""One turn of the daemon's loop, the same on Kafka and on the in-memory bus.

Requests and labels first (so the model is as up to date as the log allows), then the
labels that waited for their request, then one batch of input records. The transport
only differs in how it answers ``requests_read_below``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from stream_al.bus import Outgoing, Sink, Source
from stream_al.pipeline import Pipeline


class LogSource(Source, Protocol):
    """The request and label topics, read in one order by every replica."""

    def requests_read_below(self, waiting: bool) -> int | None:
        """With labels ``waiting`` for their request: the label offset below which every
        label's request, if it was ever written, has been read; else None."""
        ...


@dataclass(frozen=True)
class StepCounts:
    records: int
    labels: int
    #: Messages sent to the prediction and request topics (the daemon's progress line).
    predictions: int = 0
    queries: int = 0


def step(pipeline: Pipeline, logs: LogSource, inputs: Source, sink: Sink, now: datetime,
         max_records: int, max_log_records: int | None = None) -> StepCounts:
    """Poll the logs and one batch of inputs, hand each message to the pipeline and
    send what it returns; the counts say what was read."""
    labels = 0
    sent: Counter[str] = Counter()
    for message in logs.poll(max_log_records or max_records):
        labels += message.topic == pipeline.topics.labels
        _send(sink, pipeline.handle(message, now), sent)
    below = logs.requests_read_below(waiting=bool(pipeline.waiting_labels))
    if below is not None:
        _send(sink, pipeline.drain_labels(requests_caught_up=True, now=now, labels_below=below),
              sent)
    batch = inputs.poll(max_records)
    _send(sink, pipeline.handle_inputs(batch, now), sent)
    topics = pipeline.topics
    return StepCounts(len(batch), labels, sent[topics.predictions], sent[topics.requests])


def _send(sink: Sink, messages: Iterable[Outgoing], sent: Counter[str]) -> None:
    for message in messages:
        sink.send(message)
        sent[message.topic] += 1
