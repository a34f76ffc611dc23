"""Rolling accuracy windows and the in-memory bus."""

from __future__ import annotations

from stream_al.bus import InMemoryBus, InMemoryConsumer, InMemorySink, Outgoing
from stream_al.evaluation import ModelScores, RollingAccuracy


def test_rolling_accuracy_forgets_what_left_the_window() -> None:
    acc = RollingAccuracy(size=3)
    for hit in (True, True, True, False, False, False):
        acc.update(hit)
    assert acc.rolling == 0.0
    assert acc.cumulative == 0.5
    assert RollingAccuracy().rolling is None


def test_model_scores_keep_windows_apart() -> None:
    scores = ModelScores()
    assert scores.update("audit", "pass", "pass") is True
    assert scores.update("queried", "pass", "fail") is False
    assert scores.rolling() == {"queried": 0.0, "audit": 1.0, "inline": None}


def test_bus_keeps_per_key_order_and_consumer_reads_everything_once() -> None:
    bus = InMemoryBus()
    bus.create_topic("in", partitions=3)
    sink = InMemorySink(bus)
    for i in range(30):
        sink.send(Outgoing("in", f"k{i % 4}".encode(), str(i).encode()))
    consumer = InMemoryConsumer(bus, ["in"])
    got = consumer.poll(7) + consumer.poll(100) + consumer.poll(100)
    assert sorted(int(m.value or b"") for m in got) == list(range(30))
    per_key: dict[bytes | None, list[int]] = {}
    for message in got:
        per_key.setdefault(message.key, []).append(int(message.value or b""))
    assert all(values == sorted(values) for values in per_key.values())
    assert consumer.lag() == 0


def test_consumer_resumes_from_given_positions() -> None:
    bus = InMemoryBus()
    for i in range(5):
        bus.produce(Outgoing("t", None, str(i).encode()))
    consumer = InMemoryConsumer(bus, ["t"], positions={("t", 0): 3})
    assert [m.value for m in consumer.poll(10)] == [b"3", b"4"]
