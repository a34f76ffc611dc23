"""The peers of ``stream-al bench throughput``: what a user would write in an afternoon to
put River on Kafka, run in a process of their own as they would be deployed.

Both apps do the same work per record: decode the JSON, take the measurements (a skipped
test is left out, River's convention for a missing value) and the daemon's derived
features, predict with the record's product model, learn at once when the record is one
of the labelled ~10 %, and produce one prediction keyed by record id. The model is the
daemon's ``logistic`` template without its imputer: ``StandardScaler`` | one-vs-rest
``LogisticRegression`` (SGD, learning rate 0.01), one per product.

They do less than the daemon, on purpose: no imputer, gate, budget, checkpoint, metrics,
dead-letter queue or record validation. That is what the daemon's guarantees are
weighed against.

This module imports nothing of stream-al's (a user's app would not): River, the Kafka
client, the standard library. Run as
``python -m consumers.bench.throughput.peer_apps {quix,confluent} CONFIG.json``; the
config names the broker, topics, group, record count, the labels (record id → class)
and where to write the result.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from river import compose, linear_model, multiclass, optim, preprocessing

#: Records per ``consume`` call of the confluent loop: the daemon's poll batch.
BATCH = 500


class PeerModel:
    """One River pipeline per product, learning the labelled records as they pass."""

    def __init__(self, labels: Mapping[str, str]) -> None:
        self.labels = labels
        self.models: dict[str, compose.Pipeline] = {}
        self.learnt = 0
        #: time.time() at the first and the latest record: the bench's steady rate. (Not
        #: the predictions' timestamps: Quix gives an output its input's timestamp.)
        self.first_at = self.last_at = 0.0

    def handle(self, record: dict[str, Any]) -> dict[str, Any]:
        """The prediction for one decoded record (learning from it first if labelled
        would leak the answer: predict, then learn, as the daemon does)."""
        self.last_at = time.time()
        self.first_at = self.first_at or self.last_at
        key = str(record.get("product"))
        model = self.models.get(key)
        if model is None:
            model = self.models[key] = logistic_pipeline()
        x = features(record)
        proba = model.predict_proba_one(x)
        record_id = record["record_id"]
        label = self.labels.get(record_id)
        if label is not None:
            model.learn_one(x, label)
            self.learnt += 1
        predicted = max(proba, key=proba.__getitem__) if proba else None
        return {"record_id": record_id, "model_key": key, "predicted": predicted,
                "proba": proba}


def logistic_pipeline() -> compose.Pipeline:
    """The daemon's ``logistic`` template less its imputer (stream_al.models)."""
    return compose.Pipeline(
        preprocessing.StandardScaler(),
        multiclass.OneVsRestClassifier(linear_model.LogisticRegression(optimizer=optim.SGD(0.01))))


def features(record: Mapping[str, Any]) -> dict[str, float]:
    """The daemon's default features of a parametric record, skipped tests left out.

    >>> features({"measurements": {"vdd": 0.9, "leak": None}, "die_x": 3, "die_y": -4,
    ...           "site": 2, "tester_id": "T-1"})
    {'vdd': 0.9, '@die_radius': 5.0, '@site=2': 1.0, '@tester=T-1': 1.0}
    """
    x: dict[str, float] = {name: value for name, value in record["measurements"].items()
                           if value is not None}
    die_x, die_y = record.get("die_x"), record.get("die_y")
    if die_x is not None and die_y is not None:
        x["@die_radius"] = math.hypot(die_x, die_y)
    if record.get("site") is not None:
        x[f"@site={record['site']}"] = 1.0
    if record.get("tester_id") is not None:
        x[f"@tester={record['tester_id']}"] = 1.0
    return x


def run_confluent(config: Mapping[str, Any], peer: PeerModel) -> int:
    """A plain confluent-kafka consume → predict → produce loop; returns records handled."""
    from confluent_kafka import Consumer, KafkaException, Producer

    consumer = Consumer({"bootstrap.servers": config["bootstrap"], "group.id": config["group"],
                         "auto.offset.reset": "earliest"})
    producer = Producer({"bootstrap.servers": config["bootstrap"], "enable.idempotence": True})
    out, count, done = config["output"], config["count"], 0
    consumer.subscribe([config["input"]])
    try:
        while done < count:
            for message in consumer.consume(num_messages=BATCH, timeout=1.0):
                if message.error():
                    raise KafkaException(message.error())
                prediction = peer.handle(json.loads(message.value()))
                value = json.dumps(prediction).encode()
                key = prediction["record_id"].encode()
                try:
                    producer.produce(out, value, key)
                except BufferError:  # the local queue is full: let deliveries drain it
                    producer.poll(1.0)
                    producer.produce(out, value, key)
                done += 1
            producer.poll(0)  # serve delivery reports so the queue keeps moving
        if producer.flush(30):
            raise RuntimeError("predictions still undelivered after 30 s")
    finally:
        consumer.close()
    return done


def run_quix(config: Mapping[str, Any], peer: PeerModel) -> int:
    """A Quix Streams application: one StreamingDataFrame, apply, to_topic."""
    from quixstreams import Application

    app = Application(broker_address=config["bootstrap"], consumer_group=config["group"],
                      auto_offset_reset="earliest", state_dir=config["state_dir"],
                      loglevel="WARNING", auto_create_topics=False, use_changelog_topics=False)
    source = app.topic(config["input"], value_deserializer="json")
    sink = app.topic(config["output"], key_serializer="str", value_serializer="json")
    sdf = app.dataframe(source).apply(peer.handle)
    sdf.to_topic(sink, key=lambda prediction: prediction["record_id"])
    app.run(count=config["count"], collect=False)  # stops after that many outputs
    return int(config["count"])


def main(argv: list[str]) -> None:
    kind, path = argv
    config = json.loads(Path(path).read_text(encoding="utf-8"))
    peer = PeerModel(config["labels"])
    started = time.time()
    done = {"quix": run_quix, "confluent": run_confluent}[kind](config, peer)
    Path(config["result"]).write_text(json.dumps({
        "kind": kind, "handled": done, "learnt": peer.learnt, "models": len(peer.models),
        "first_at": peer.first_at, "last_at": peer.last_at, "started_at": started}),
        encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1:])
